"""Settling a freeze against the database: `consume` (its actual cost) and `unfreeze`.

State is set up through the real services; the clock is moved with their `now=` arguments.
"""

import datetime as dt
from decimal import Decimal

import pytest

from credits_project.errors import (
    FreezeRecordsAlreadyConsumed,
    IdempotencyConflict,
    InsufficientBalance,
    NoConsumableFreezeRecords,
    NoUnfreezableRecords,
)
from customers.models import Project
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerEntry, Transaction
from ledger.services import consume, deduct, expire_due, unfreeze
from tests.ledger.support import ACTOR, DAY, T0, counters, entries, grant, hold, item, wire

T1 = T0 + dt.timedelta(minutes=5)

pytestmark = pytest.mark.django_db


def settle_consume(project: Project, transaction_id: str, actual=None, **kwargs) -> dict:
    """Consume through the real service as ACTOR at T1; the answer as the API renders it."""
    result = consume(
        project=project,
        transaction_id=transaction_id,
        actor=kwargs.pop("actor", ACTOR),
        actual_amount=None if actual is None else Decimal(actual),
        now=kwargs.pop("now", T1),
        **kwargs,
    )
    return render(result)


def settle_unfreeze(project: Project, transaction_id: str, **kwargs) -> dict:
    """Unfreeze through the real service as ACTOR at T1; the answer as the API renders it."""
    result = unfreeze(
        project=project,
        transaction_id=transaction_id,
        actor=kwargs.pop("actor", ACTOR),
        now=kwargs.pop("now", T1),
        **kwargs,
    )
    return render(result)


# --- consume -------------------------------------------------------------------------------


def test_consume_without_actual_amount_charges_the_whole_freeze(project):
    first = grant(project, 10, wallet="promo", expires_at=T0 + DAY)
    second = grant(project, 100)
    hold(project, "job", 25)

    result = settle_consume(project, "job")

    assert result == {
        "transaction_id": "job",
        "consumed_amount": Decimal(25),
        "consume_details": [item(first, 10, "promo"), item(second, 15)],
        "consumed_at": T1,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (10, 10, 0)
    assert counters(second) == (100, 15, 0)


def test_partial_consume_charges_in_freeze_order_and_returns_the_rest(project):
    first = grant(project, 10, expires_at=T0 + DAY)
    second = grant(project, 10, wallet="gold", expires_at=T0 + 2 * DAY)
    third = grant(project, 10)
    hold(project, "job", 25, business_type="TASK", description="render")

    result = settle_consume(project, "job", "12.5")

    assert result == {
        "transaction_id": "job",
        "consumed_amount": Decimal("12.5"),
        "returned_amount": Decimal("12.5"),
        "consume_details": [item(first, 10), item(second, "2.5", "gold")],
        "consumed_at": T1,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (10, 10, 0)
    assert counters(second) == (10, Decimal("2.5"), 0)
    assert counters(third) == (10, 0, 0)
    assert entries("CONSUME", "UNFREEZE") == [
        (int(first), "CONSUME", Decimal(10), "job", "TASK", "render", ACTOR, T1),
        (int(second), "CONSUME", Decimal("2.5"), "job", "TASK", "render", ACTOR, T1),
        (int(second), "UNFREEZE", Decimal("7.5"), "job", "TASK", "render", ACTOR, T1),
        (int(third), "UNFREEZE", Decimal(5), "job", "TASK", "render", ACTOR, T1),
    ]


def test_consume_of_zero_returns_everything_and_writes_no_consume_entry(project):
    first = grant(project, 10, expires_at=T0 + DAY)
    second = grant(project, 10)
    hold(project, "job", 15)

    result = settle_consume(project, "job", 0)

    assert result == {
        "transaction_id": "job",
        "consumed_amount": Decimal(0),
        "returned_amount": Decimal(15),
        "consume_details": [],
        "consumed_at": T1,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (10, 0, 0)
    assert counters(second) == (10, 0, 0)
    assert entries("CONSUME") == []
    assert [e[:3] for e in entries("UNFREEZE")] == [
        (int(first), "UNFREEZE", Decimal(10)),
        (int(second), "UNFREEZE", Decimal(5)),
    ]
    assert Transaction.objects.get(transaction_id="job").state == "CONSUMED"


def test_overage_is_drawn_from_the_freezes_wallets_and_merged_per_account(project):
    grant(project, 100, expires_at=T0 + DAY)  # sooner, but not in the freeze's wallet
    held_only = grant(project, 10, wallet="a", expires_at=T0 + 2 * DAY)
    held_and_extra = grant(project, 10, wallet="a", now=T0 - 3 * DAY)
    extra = grant(project, 20, wallet="a", now=T0 - 2 * DAY)
    hold(project, "job", 15, wallets=["a"])

    result = settle_consume(project, "job", 30)

    assert result == {
        "transaction_id": "job",
        "consumed_amount": Decimal(30),
        "overage_amount": Decimal(15),
        "consume_details": [
            item(held_only, 10, "a"),
            item(held_and_extra, 10, "a"),
            item(extra, 10, "a"),
        ],
        "consumed_at": T1,
        "is_idempotent_replay": False,
    }
    assert counters(held_only) == (10, 10, 0)
    assert counters(held_and_extra) == (10, 10, 0)
    assert counters(extra) == (20, 10, 0)
    assert [e[:3] for e in entries("CONSUME", "UNFREEZE")] == [
        (int(held_only), "CONSUME", Decimal(10)),
        (int(held_and_extra), "CONSUME", Decimal(10)),
        (int(extra), "CONSUME", Decimal(10)),
    ]


def test_overage_lists_held_accounts_before_sooner_expiring_overage_accounts(project):
    held = grant(project, 10)
    hold(project, "job", 5, wallets=["default"], now=T0 - dt.timedelta(hours=1))
    # `sooner` was deposited after the freeze, so the freeze held only `held`.
    sooner = grant(project, 10, expires_at=T0 + DAY, now=T0)

    result = settle_consume(project, "job", 8)

    assert result["consume_details"] == [item(held, 5), item(sooner, 3)]


def test_overage_the_eligible_wallets_cannot_cover_fails_and_the_freeze_stays_frozen(project):
    account = grant(project, 10)
    hold(project, "job", 8)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="other",
        amount=Decimal(1),
        actor=ACTOR,
        now=T0,
    )
    before = LedgerEntry.objects.count()

    with pytest.raises(InsufficientBalance) as raised:
        settle_consume(project, "job", 12)

    assert type(raised.value) is InsufficientBalance
    assert raised.value.code == "insufficient_balance"
    assert raised.value.details == {
        "requested": Decimal(4),
        "available": Decimal(1),
        "wallet": None,
    }
    assert counters(account) == (10, 1, 8)
    assert LedgerEntry.objects.count() == before
    charge = Transaction.objects.get(transaction_id="job")
    assert (charge.state, charge.settled_at, charge.consumed_amount) == ("FROZEN", None, None)

    result = settle_consume(project, "job", 9)  # still consumable, and not a replay
    assert result["overage_amount"] == 1
    assert result["is_idempotent_replay"] is False
    assert counters(account) == (10, 10, 0)


def test_restricted_overage_never_takes_from_other_wallets(project):
    promo = grant(project, 10, wallet="promo")
    default = grant(project, 100)
    hold(project, "job", 10, wallets=["promo"])

    with pytest.raises(InsufficientBalance) as raised:
        settle_consume(project, "job", 11)

    assert raised.value.details["wallet"] == "promo"
    assert raised.value.details["available"] == 0
    assert counters(promo) == (10, 0, 10)
    assert counters(default) == (100, 0, 0)


def test_overage_never_uses_inactive_accounts(project):
    held = grant(project, 10, expires_at=T0 + DAY)
    live = grant(project, 2)
    hold(project, "job", 10)
    expiring = grant(project, 10, expires_at=T1, now=T0)
    pending = grant(project, 10, starts_at=T1 + dt.timedelta(seconds=1), now=T0)

    result = settle_consume(project, "job", 12)

    assert result["consume_details"] == [item(held, 10), item(live, 2)]
    assert counters(expiring) == (10, 0, 0)
    assert counters(pending) == (10, 0, 0)


def test_credits_frozen_before_expiry_can_still_be_consumed_after_it(project):
    account = grant(project, 10, expires_at=T0 + dt.timedelta(hours=1))
    hold(project, "job", 6)
    expire_due(now=T0 + DAY)

    result = settle_consume(project, "job", now=T0 + DAY)

    assert result["consume_details"] == [item(account, 6)]
    assert counters(account) == (10, 6, 0)


def test_consume_writes_consume_entries_with_the_freezes_labels_and_the_callers_actor(project):
    account = grant(project, 10)
    hold(project, "job", 4, business_type="TOKEN_USAGE", description="chat")

    settle_consume(project, "job", actor="api_key:other1")

    assert entries("CONSUME") == [
        (int(account), "CONSUME", Decimal(4), "job", "TOKEN_USAGE", "chat", "api_key:other1", T1),
    ]


# --- returning credits to expired accounts -------------------------------------------------


def test_unfreeze_into_an_account_whose_expiry_was_recorded_expires_the_credits_at_once(project):
    expired = grant(project, 10, expires_at=T0 + dt.timedelta(hours=1))
    live = grant(project, 10)
    hold(project, "job", 15)
    assert expire_due(now=T0 + DAY) == 1
    assert entries("EXPIRE") == []  # nothing was available on it

    result = settle_unfreeze(project, "job", now=T0 + 2 * DAY)

    assert result["unfreeze_details"] == [item(expired, 10), item(live, 5)]
    assert [e[:4] + e[6:] for e in entries("UNFREEZE", "EXPIRE")] == [
        (int(expired), "UNFREEZE", Decimal(10), "job", ACTOR, T0 + 2 * DAY),
        (int(expired), "EXPIRE", Decimal(10), None, ACTOR, T0 + 2 * DAY),
        (int(live), "UNFREEZE", Decimal(5), "job", ACTOR, T0 + 2 * DAY),
    ]
    assert counters(expired) == (10, 0, 0)


def test_partial_consume_returning_credits_to_an_expired_account_expires_them(project):
    expired = grant(project, 10, expires_at=T0 + dt.timedelta(hours=1), business_type="FREE_TRIAL")
    hold(project, "job", 8)
    expire_due(now=T0 + DAY)  # EXPIRE 2, the part not frozen
    assert [e[:3] for e in entries("EXPIRE")] == [(int(expired), "EXPIRE", Decimal(2))]

    settle_consume(project, "job", 3, now=T0 + 2 * DAY)

    assert [e[:6] for e in entries("CONSUME", "UNFREEZE", "EXPIRE")] == [
        (int(expired), "EXPIRE", Decimal(2), None, "FREE_TRIAL", "expired"),
        (int(expired), "CONSUME", Decimal(3), "job", "UNDEFINED", ""),
        (int(expired), "UNFREEZE", Decimal(5), "job", "UNDEFINED", ""),
        (int(expired), "EXPIRE", Decimal(5), None, "FREE_TRIAL", "expired"),
    ]
    assert counters(expired) == (10, 3, 0)


def test_credits_returned_before_the_scheduler_ran_expire_at_once_and_only_once(project):
    expired = grant(project, 10, expires_at=T0 + dt.timedelta(hours=1))
    hold(project, "job", 8)

    settle_unfreeze(project, "job", now=T0 + DAY)  # expired, but not yet recorded
    # The return does the scheduler's work: all 10 left on the account expire now.
    assert [e[:3] for e in entries("EXPIRE")] == [(int(expired), "EXPIRE", Decimal(10))]
    assert CreditAccount.objects.get(pk=expired).expiry_recorded_at == T0 + DAY
    assert expire_due(now=T0 + DAY) == 0

    assert [e[:3] for e in entries("EXPIRE")] == [(int(expired), "EXPIRE", Decimal(10))]


# --- unfreeze ------------------------------------------------------------------------------


def test_unfreeze_returns_every_frozen_credit_and_writes_one_entry_per_account(project):
    first = grant(project, 10, wallet="gold", source="membership", expires_at=T0 + DAY)
    second = grant(project, 10)
    hold(project, "job", 12, business_type="TASK", description="render")

    result = settle_unfreeze(project, "job")

    assert result == {
        "transaction_id": "job",
        "unfrozen_amount": Decimal(12),
        "unfreeze_details": [item(first, 10, "gold", "membership"), item(second, 2)],
        "unfrozen_at": T1,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (10, 0, 0)
    assert counters(second) == (10, 0, 0)
    assert entries("UNFREEZE") == [
        (int(first), "UNFREEZE", Decimal(10), "job", "TASK", "render", ACTOR, T1),
        (int(second), "UNFREEZE", Decimal(2), "job", "TASK", "render", ACTOR, T1),
    ]
    charge = Transaction.objects.get(transaction_id="job")
    assert (charge.state, charge.settled_by, charge.settled_at) == ("UNFROZEN", "client", T1)


def test_unfrozen_credits_can_be_charged_again(project):
    account = grant(project, 10)
    hold(project, "job", 10)
    settle_unfreeze(project, "job")

    result = hold(project, "job-2", 10, now=T1)

    assert result["freeze_details"] == [item(account, 10)]


# --- state machine -------------------------------------------------------------------------


def test_consume_of_an_unknown_transaction_is_no_consumable_freeze_records(project):
    with pytest.raises(NoConsumableFreezeRecords) as raised:
        settle_consume(project, "nope")

    assert raised.value.status == 400
    assert raised.value.details == {"transaction_id": "nope"}


def test_consume_of_another_projects_freeze_is_no_consumable_freeze_records(project):
    other = Project.objects.create(name="other")
    grant(other, 10)
    hold(other, "job", 5)

    with pytest.raises(NoConsumableFreezeRecords):
        settle_consume(project, "job")
    with pytest.raises(NoUnfreezableRecords):
        settle_unfreeze(project, "job")
    assert Transaction.objects.get(transaction_id="job").state == "FROZEN"


def test_consume_after_a_client_unfreeze_is_no_consumable_freeze_records(project):
    grant(project, 10)
    hold(project, "job", 5)
    settle_unfreeze(project, "job")

    with pytest.raises(NoConsumableFreezeRecords):
        settle_consume(project, "job")


def test_consume_of_a_deducts_id_is_no_consumable_freeze_records(project):
    grant(project, 10)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="order",
        amount=Decimal(5),
        actor=ACTOR,
        now=T0,
    )

    with pytest.raises(NoConsumableFreezeRecords):
        settle_consume(project, "order")


def test_unfreeze_of_an_unknown_transaction_is_no_unfreezable_records(project):
    with pytest.raises(NoUnfreezableRecords) as raised:
        settle_unfreeze(project, "nope")

    assert raised.value.status == 400
    assert raised.value.details == {"transaction_id": "nope"}


def test_unfreeze_of_a_deducts_id_is_no_unfreezable_records(project):
    account = grant(project, 10)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="order",
        amount=Decimal(5),
        actor=ACTOR,
        now=T0,
    )

    with pytest.raises(NoUnfreezableRecords):
        settle_unfreeze(project, "order")
    assert counters(account) == (10, 5, 0)


def test_unfreeze_after_consume_is_freeze_records_already_consumed(project):
    account = grant(project, 10)
    hold(project, "job", 5)
    settle_consume(project, "job", 2)

    with pytest.raises(FreezeRecordsAlreadyConsumed) as raised:
        settle_unfreeze(project, "job")

    assert raised.value.status == 400
    assert raised.value.details == {"transaction_id": "job"}
    assert counters(account) == (10, 2, 0)


def test_unfreeze_after_unfreeze_replays_the_original_response(project):
    account = grant(project, 10)
    hold(project, "job", 5)
    original = settle_unfreeze(project, "job")
    before = LedgerEntry.objects.count()

    again = settle_unfreeze(project, "job", now=T1 + DAY, actor="api_key:later")

    assert wire(again) == {**wire(original), "is_idempotent_replay": True}
    assert LedgerEntry.objects.count() == before
    assert counters(account) == (10, 0, 0)


def test_consume_after_consume_replays_the_original_response_and_changes_nothing(project):
    account = grant(project, 10)
    hold(project, "job", 5)
    original = settle_consume(project, "job", 3)
    before = LedgerEntry.objects.count()

    again = settle_consume(project, "job", now=T1 + DAY)

    assert wire(again) == {**wire(original), "is_idempotent_replay": True}
    assert wire(again)["consumed_at"] == "2026-04-07T12:05:00.000Z"
    assert LedgerEntry.objects.count() == before
    assert counters(account) == (10, 3, 0)


@pytest.mark.parametrize(
    ("first", "repeat"),
    [(3, 3), (None, 5), (None, None), (3, None), (0, 0), (7, 7)],
    ids=[
        "same-explicit",
        "explicit-equals-default",
        "both-default",
        "repeat-without-amount",
        "zero",
        "overage",
    ],
)
def test_consume_repeat_with_the_amount_it_used_or_without_one_replays(project, first, repeat):
    grant(project, 10)
    hold(project, "job", 5)
    original = settle_consume(project, "job", first)

    again = settle_consume(project, "job", repeat)

    assert wire(again) == {**wire(original), "is_idempotent_replay": True}


@pytest.mark.parametrize(
    ("first", "repeat"),
    [(3, 4), (None, 4), (3, 5), (0, 3), (7, 8)],
    ids=[
        "other-explicit",
        "other-than-default",
        "frozen-amount-after-explicit",
        "after-zero",
        "other-overage",
    ],
)
def test_consume_repeat_with_another_actual_amount_is_an_idempotency_conflict(
    project, first, repeat
):
    account = grant(project, 10)
    hold(project, "job", 5)
    settle_consume(project, "job", first)
    used = counters(account)[1]

    with pytest.raises(IdempotencyConflict) as raised:
        settle_consume(project, "job", repeat)

    assert raised.value.status == 409
    assert raised.value.details == {"field": "actual_amount"}
    assert counters(account)[1] == used


def test_settled_freeze_records_state_amounts_and_who_settled_it(project):
    grant(project, 10)
    hold(project, "job", 5)

    settle_consume(project, "job", 7)

    charge = Transaction.objects.get(transaction_id="job")
    assert (
        charge.state,
        charge.settled_by,
        charge.settled_at,
        charge.consumed_amount,
        charge.returned_amount,
        charge.overage_amount,
    ) == ("CONSUMED", "client", T1, 7, 0, 2)
