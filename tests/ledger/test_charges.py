"""Charges against the database: `freeze` (reserve now, settle later) and `deduct` (charge now).

State is set up through the real services; the clock is moved with their `now=` arguments.
"""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from credits_project.errors import (
    CustomerNotFound,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientBalanceInSelectedCreditTypes,
    TransactionConflict,
)
from customers.models import Project
from ledger.api.shapes import render
from ledger.models import LedgerEntry, Transaction
from ledger.selectors.consistency import find_inconsistencies
from ledger.services import consume, deduct, deposit, freeze
from tests.ledger.support import ACTOR, DAY, T0, counters, entries, grant, item, wire

pytestmark = pytest.mark.django_db

# (service, key of its detail array, counter the charge moves credits into)
CHARGES = [
    pytest.param(freeze, "freeze_details", "frozen", id="freeze"),
    pytest.param(deduct, "deduct_details", "used", id="deduct"),
]


def moved(counter: str, amount: int | str) -> tuple[Decimal, Decimal]:
    """The expected (used, frozen) of an account a charge took `amount` from."""
    return (Decimal(amount), Decimal(0)) if counter == "used" else (Decimal(0), Decimal(amount))


def charge(service, project: Project, transaction_id: str, amount: int | str, **kwargs):
    kwargs.setdefault("customer_id", "c1")
    kwargs.setdefault("actor", ACTOR)
    kwargs.setdefault("now", T0)
    return service(project=project, transaction_id=transaction_id, amount=Decimal(amount), **kwargs)


# --- consumption order ---------------------------------------------------------------------


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_takes_soonest_expiry_first_never_expiring_last_then_oldest_then_lowest_id(
    project, service, details_key, counter
):
    never_newer = grant(project, 10, wallet="a", now=T0 - DAY)
    later_expiry = grant(project, 10, wallet="b", expires_at=T0 + 10 * DAY, now=T0 - 3 * DAY)
    soon_newer = grant(project, 10, wallet="c", expires_at=T0 + 5 * DAY, now=T0 - DAY)
    soon_older = grant(project, 10, wallet="a", expires_at=T0 + 5 * DAY, now=T0 - 2 * DAY)
    never_older = grant(project, 10, wallet="b", now=T0 - 2 * DAY)
    soon_older_twin = grant(project, 10, expires_at=T0 + 5 * DAY, now=T0 - 2 * DAY)
    never_newer_twin = grant(project, 10, wallet="c", now=T0 - DAY)

    result = render(charge(service, project, "t1", 65))

    assert result[details_key] == [
        item(soon_older, 10, "a"),
        item(soon_older_twin, 10),
        item(soon_newer, 10, "c"),
        item(later_expiry, 10, "b"),
        item(never_older, 10, "b"),
        item(never_newer, 10, "a"),
        item(never_newer_twin, 5, "c"),
    ]
    assert counters(never_newer_twin) == (10, *moved(counter, 5))
    assert counters(soon_older) == (10, *moved(counter, 10))


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_skips_exhausted_and_fully_frozen_accounts(project, service, details_key, counter):
    spent = grant(project, 10, expires_at=T0 + DAY)
    held = grant(project, 10, expires_at=T0 + 2 * DAY)
    partly = grant(project, 10, expires_at=T0 + 3 * DAY)
    rest = grant(project, 10)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="d0",
        amount=Decimal(10),
        actor=ACTOR,
        now=T0,
    )
    freeze(
        project=project,
        customer_id="c1",
        transaction_id="f0",
        amount=Decimal(14),
        actor=ACTOR,
        now=T0,
    )
    assert [counters(a) for a in (spent, held, partly)] == [(10, 10, 0), (10, 0, 10), (10, 0, 4)]

    result = render(charge(service, project, "t1", 8))

    assert result[details_key] == [item(partly, 6), item(rest, 2)]


def test_freeze_response_lists_each_account_once_and_moves_credits_to_frozen(project):
    first = grant(project, "2.5", wallet="promo", source="campaign", expires_at=T0 + DAY)
    second = grant(project, 100, source="stripe_checkout")

    result = render(
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="job-1",
            amount=Decimal("3.000001"),
            actor=ACTOR,
            business_type="TASK",
            description="render video",
            now=T0,
        )
    )

    assert result == {
        "transaction_id": "job-1",
        "frozen_amount": Decimal("3.000001"),
        "freeze_details": [
            item(first, "2.5", "promo", "campaign"),
            item(second, "0.500001", source="stripe_checkout"),
        ],
        "unfreeze_after": None,
        "consume_after": None,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (Decimal("2.5"), 0, Decimal("2.5"))
    assert counters(second) == (100, 0, Decimal("0.500001"))


def test_deduct_response_lists_each_account_once_and_moves_credits_to_used(project):
    first = grant(project, 30, wallet="promo", expires_at=T0 + DAY)
    second = grant(project, 100)

    result = render(
        deduct(
            project=project,
            customer_id="c1",
            transaction_id="order-1",
            amount=Decimal(45),
            actor=ACTOR,
            now=T0,
        )
    )

    assert result == {
        "transaction_id": "order-1",
        "deducted_amount": Decimal(45),
        "deduct_details": [item(first, 30, "promo"), item(second, 15)],
        "deducted_at": T0,
        "is_idempotent_replay": False,
    }
    assert counters(first) == (30, 30, 0)
    assert counters(second) == (100, 15, 0)


# --- wallet restriction --------------------------------------------------------------------


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_restricted_to_wallets_uses_only_those_wallets_in_consumption_order(
    project, service, details_key, counter
):
    grant(project, 100, expires_at=T0 + DAY)
    gold = grant(project, 10, wallet="gold", expires_at=T0 + 2 * DAY)
    promo = grant(project, 10, wallet="promo", expires_at=T0 + 3 * DAY)
    grant(project, 100, wallet="other")

    result = render(charge(service, project, "t1", 15, wallets=["promo", "gold"]))

    assert result[details_key] == [item(gold, 10, "gold"), item(promo, 5, "promo")]


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_more_than_available_is_rejected_with_details_and_changes_nothing(
    project, service, details_key, counter
):
    account = grant(project, 100)
    grant(project, 20, expires_at=T0)  # expired at T0: not available
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="d0",
        amount=Decimal(30),
        actor=ACTOR,
        now=T0,
    )
    freeze(
        project=project,
        customer_id="c1",
        transaction_id="f0",
        amount=Decimal(50),
        actor=ACTOR,
        now=T0,
    )
    entries_before = LedgerEntry.objects.count()

    with pytest.raises(InsufficientBalance) as raised:
        charge(service, project, "t1", "20.5")

    assert type(raised.value) is InsufficientBalance
    assert raised.value.code == "insufficient_balance"
    assert raised.value.status == 400
    assert raised.value.details == {
        "requested": Decimal("20.5"),
        "available": Decimal(20),
        "wallet": None,
    }
    assert counters(account) == (100, 30, 50)
    assert LedgerEntry.objects.count() == entries_before
    assert not Transaction.objects.filter(transaction_id="t1").exists()


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_with_enough_overall_but_not_in_selected_wallets_names_the_wallet(
    project, service, details_key, counter
):
    grant(project, 100)
    promo = grant(project, 5, wallet="promo")

    with pytest.raises(InsufficientBalanceInSelectedCreditTypes) as raised:
        charge(service, project, "t1", 6, wallets=["promo"])

    assert raised.value.code == "insufficient_balance_in_selected_credit_types"
    assert raised.value.status == 400
    assert raised.value.details == {
        "requested": Decimal(6),
        "available": Decimal(5),
        "wallet": "promo",
    }
    assert counters(promo) == (5, 0, 0)
    assert not Transaction.objects.filter(transaction_id="t1").exists()


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_restricted_and_short_overall_is_plain_insufficient_balance(
    project, service, details_key, counter
):
    grant(project, 3)
    grant(project, 5, wallet="promo")

    with pytest.raises(InsufficientBalance) as raised:
        charge(service, project, "t1", 9, wallets=["promo"])

    assert type(raised.value) is InsufficientBalance
    assert raised.value.details == {
        "requested": Decimal(9),
        "available": Decimal(5),
        "wallet": "promo",
    }


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_for_unknown_customer_is_customer_not_found(project, service, details_key, counter):
    grant(project, 10, customer_id="someone-else")

    with pytest.raises(CustomerNotFound) as raised:
        charge(service, project, "t1", 1, customer_id="nobody")

    assert raised.value.status == 404
    assert raised.value.details == {"customer_id": "nobody"}


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_never_sees_another_projects_customer(project, service, details_key, counter):
    other = Project.objects.create(name="other")
    grant(other, 100)

    with pytest.raises(CustomerNotFound):
        charge(service, project, "t1", 1)


# --- activity ------------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_never_uses_expired_or_not_yet_started_accounts(
    project, service, details_key, counter
):
    expired = grant(project, 50, expires_at=T0, now=T0 - 3 * DAY)
    pending = grant(project, 50, starts_at=T0 + dt.timedelta(seconds=1), now=T0 - 3 * DAY)
    started_now = grant(project, 7, starts_at=T0, expires_at=T0 + 9 * DAY, now=T0 - 2 * DAY)
    open_ended = grant(project, 3, now=T0 - 2 * DAY)

    result = render(charge(service, project, "t1", 10))

    assert result[details_key] == [item(started_now, 7), item(open_ended, 3)]
    assert counters(expired) == (50, 0, 0)
    assert counters(pending) == (50, 0, 0)
    with pytest.raises(InsufficientBalance) as raised:
        charge(service, project, "t2", 1)
    assert raised.value.details["available"] == 0


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_uses_an_account_once_it_has_started(project, service, details_key, counter):
    pending = grant(project, 5, starts_at=T0 + DAY)

    with pytest.raises(InsufficientBalance):
        charge(service, project, "t1", 5, now=T0)
    result = render(charge(service, project, "t1", 5, now=T0 + DAY))

    assert result[details_key] == [item(pending, 5)]


# --- ledger entries ------------------------------------------------------------------------


def test_freeze_writes_one_freeze_entry_per_account_with_actor_and_labels(project):
    first = grant(project, 10, expires_at=T0 + DAY)
    second = grant(project, 10)
    before = LedgerEntry.objects.count()

    freeze(
        project=project,
        customer_id="c1",
        transaction_id="job-1",
        amount=Decimal(12),
        actor="api_key:abc123",
        business_type="TASK",
        description="render",
        now=T0,
    )

    assert LedgerEntry.objects.count() == before + 2
    assert entries(transaction_id="job-1") == [
        (int(first), "FREEZE", Decimal(10), "job-1", "TASK", "render", "api_key:abc123", T0),
        (int(second), "FREEZE", Decimal(2), "job-1", "TASK", "render", "api_key:abc123", T0),
    ]


def test_deduct_writes_one_consume_entry_per_account_with_actor_and_labels(project):
    first = grant(project, 10, wallet="promo")
    second = grant(project, 10)
    before = LedgerEntry.objects.count()

    deduct(
        project=project,
        customer_id="c1",
        transaction_id="order-9",
        amount=Decimal(15),
        actor="api_key:abc123",
        business_type="ORDER",
        description="one-off",
        now=T0,
    )

    assert LedgerEntry.objects.count() == before + 2
    assert entries(transaction_id="order-9") == [
        (int(first), "CONSUME", Decimal(10), "order-9", "ORDER", "one-off", "api_key:abc123", T0),
        (int(second), "CONSUME", Decimal(5), "order-9", "ORDER", "one-off", "api_key:abc123", T0),
    ]


# --- auto-settlement deadlines -------------------------------------------------------------


def test_freeze_with_unfreeze_ttl_stores_and_returns_an_absolute_deadline(project):
    grant(project, 10)

    result = render(
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(1),
            actor=ACTOR,
            unfreeze_after_seconds=2_592_000,
            now=T0,
        )
    )

    assert result["unfreeze_after"] == T0 + dt.timedelta(days=30)
    assert result["consume_after"] is None
    stored = Transaction.objects.get(transaction_id="t1")
    assert (stored.unfreeze_after, stored.consume_after) == (T0 + dt.timedelta(days=30), None)


def test_freeze_with_consume_ttl_stores_and_returns_an_absolute_deadline(project):
    grant(project, 10)

    result = render(
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(1),
            actor=ACTOR,
            consume_after_seconds=60,
            now=T0,
        )
    )

    assert result["unfreeze_after"] is None
    assert result["consume_after"] == T0 + dt.timedelta(seconds=60)
    stored = Transaction.objects.get(transaction_id="t1")
    assert (stored.unfreeze_after, stored.consume_after) == (None, T0 + dt.timedelta(seconds=60))


# --- idempotency ---------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_repeated_charge_replays_the_original_response_and_changes_nothing(
    project, service, details_key, counter
):
    account = grant(project, 100)
    original = render(charge(service, project, "t1", 30, description="first"))
    entries_before = LedgerEntry.objects.count()

    again = render(charge(service, project, "t1", 30, description="ignored", now=T0 + DAY))

    assert wire(again) == {**wire(original), "is_idempotent_replay": True}
    assert LedgerEntry.objects.count() == entries_before
    assert counters(account) == (100, *moved(counter, 30))
    assert Transaction.objects.get(transaction_id="t1").description == "first"


def test_repeated_freeze_replays_even_after_it_was_consumed_and_balance_is_gone(project):
    grant(project, 10)
    original = render(
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(10),
            actor=ACTOR,
            unfreeze_after_seconds=60,
            now=T0,
        )
    )
    consume(project=project, transaction_id="t1", actor=ACTOR, now=T0)

    again = render(
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(10),
            actor=ACTOR,
            unfreeze_after_seconds=60,
            now=T0 + DAY,
        )
    )

    assert wire(again) == {**wire(original), "is_idempotent_replay": True}
    assert wire(again)["unfreeze_after"] == "2026-04-07T12:01:00.000Z"


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"wallets": ["a", "b"]}, {"wallets": ["b", "a", "b"]}),
        ({"wallets": ["a"]}, {"wallets": ["a", "a"]}),
        ({"amount": Decimal("30")}, {"amount": Decimal("30.000000")}),
        ({"description": "x"}, {"description": "y"}),
    ],
    ids=["wallet-order", "wallet-duplicates", "amount-by-value", "description"],
)
def test_repeat_with_an_equivalent_request_replays(
    project, service, details_key, counter, first, second
):
    grant(project, 100, wallet="a")
    grant(project, 100, wallet="b")
    original = render(charge(service, project, "t1", **{"amount": 30, **first}))

    again = render(charge(service, project, "t1", **{"amount": 30, **second}))

    assert again["is_idempotent_replay"] is True
    assert wire(again) == {**wire(original), "is_idempotent_replay": True}


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
@pytest.mark.parametrize(
    "changed",
    [
        {"amount": Decimal("30.000001")},
        {"wallets": ["a"]},
        {"wallets": ["a", "c"]},
        {"business_type": "TASK"},
    ],
    ids=["amount", "restricted", "other-wallets", "business-type"],
)
def test_repeat_with_other_parameters_is_an_idempotency_conflict(
    project, service, details_key, counter, changed
):
    grant(project, 100, wallet="a")
    grant(project, 100, wallet="b")
    charge(service, project, "t1", 30, wallets=["a", "b"])
    entries_before = LedgerEntry.objects.count()

    with pytest.raises(IdempotencyConflict) as raised:
        charge(service, project, "t1", **{"amount": 30, "wallets": ["a", "b"], **changed})

    assert raised.value.status == 409
    assert raised.value.details == {"field": "transaction_id"}
    assert LedgerEntry.objects.count() == entries_before


def test_unrestricted_repeat_of_a_restricted_freeze_is_an_idempotency_conflict(project):
    grant(project, 100, wallet="a")
    freeze(
        project=project,
        customer_id="c1",
        transaction_id="t1",
        amount=Decimal(5),
        actor=ACTOR,
        wallets=["a"],
        now=T0,
    )

    with pytest.raises(IdempotencyConflict):
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(5),
            actor=ACTOR,
            now=T0,
        )


@pytest.mark.parametrize(
    "changed",
    [
        {"unfreeze_after_seconds": 61},
        {"unfreeze_after_seconds": None},
        {"unfreeze_after_seconds": None, "consume_after_seconds": 60},
    ],
    ids=["other-ttl", "no-ttl", "other-ttl-field"],
)
def test_freeze_repeat_with_another_auto_settlement_is_an_idempotency_conflict(project, changed):
    grant(project, 100)
    freeze(
        project=project,
        customer_id="c1",
        transaction_id="t1",
        amount=Decimal(5),
        actor=ACTOR,
        unfreeze_after_seconds=60,
        now=T0,
    )

    with pytest.raises(IdempotencyConflict):
        freeze(
            **{
                "project": project,
                "customer_id": "c1",
                "transaction_id": "t1",
                "amount": Decimal(5),
                "actor": ACTOR,
                "unfreeze_after_seconds": 60,
                "now": T0,
                **changed,
            }
        )


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_id_reused_for_another_customer_is_a_transaction_conflict(
    project, service, details_key, counter
):
    grant(project, 100, customer_id="alice")
    grant(project, 100, customer_id="bob")
    charge(service, project, "t1", 10, customer_id="alice")

    with pytest.raises(TransactionConflict) as raised:
        charge(service, project, "t1", 10, customer_id="bob")

    assert raised.value.status == 409
    assert raised.value.details == {"field": "transaction_id"}
    assert LedgerEntry.objects.filter(customer__external_id="bob").count() == 1  # its GRANT


def test_freeze_with_a_deducts_id_is_a_transaction_conflict(project):
    grant(project, 100)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="t1",
        amount=Decimal(10),
        actor=ACTOR,
        now=T0,
    )

    with pytest.raises(TransactionConflict):
        freeze(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(10),
            actor=ACTOR,
            now=T0,
        )
    assert Transaction.objects.get(transaction_id="t1").kind == "DEDUCT"


def test_deduct_with_a_freezes_id_is_a_transaction_conflict(project):
    grant(project, 100)
    freeze(
        project=project,
        customer_id="c1",
        transaction_id="t1",
        amount=Decimal(10),
        actor=ACTOR,
        now=T0,
    )

    with pytest.raises(TransactionConflict):
        deduct(
            project=project,
            customer_id="c1",
            transaction_id="t1",
            amount=Decimal(10),
            actor=ACTOR,
            now=T0,
        )
    assert Transaction.objects.get(transaction_id="t1").kind == "FREEZE"


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_id_is_independent_of_a_deposit_idempotency_key(
    project, service, details_key, counter
):
    grant(project, 100, idempotency_key="order_42")

    result = render(charge(service, project, "order_42", 10))

    assert result["is_idempotent_replay"] is False


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_charge_id_is_scoped_to_its_project(project, service, details_key, counter):
    other = Project.objects.create(name="other")
    grant(project, 100)
    grant(other, 100)
    charge(service, other, "t1", 10)

    result = render(charge(service, project, "t1", 20))

    assert result["is_idempotent_replay"] is False
    assert result[details_key][0]["amount"] == 20


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
def test_failed_charge_stores_nothing_so_a_retry_after_a_deposit_succeeds(
    project, service, details_key, counter
):
    grant(project, 5)
    with pytest.raises(InsufficientBalance):
        charge(service, project, "t1", 8)
    topped_up = grant(project, 10, now=T0)

    result = render(charge(service, project, "t1", 8))

    assert result["is_idempotent_replay"] is False
    assert result[details_key][-1] == item(topped_up, 3)
    assert Transaction.objects.get(transaction_id="t1").amount == 8


@pytest.mark.parametrize(("service", "details_key", "counter"), CHARGES)
@pytest.mark.parametrize(
    ("wallets", "label"),
    [
        (["promo", "promo"], "promo"),
        (["promo", "gold"], ["promo", "gold"]),
        (["gold", "promo", "gold"], ["gold", "promo"]),
    ],
    ids=["duplicates", "two", "two-with-duplicates"],
)
def test_insufficient_balance_names_the_selected_wallets_once_each(
    project, service, details_key, counter, wallets, label
):
    """A repeated wallet name does not change a restriction, nor how an error names it."""
    grant(project, 100)
    grant(project, 1, wallet="promo")
    grant(project, 2, wallet="gold")

    with pytest.raises(InsufficientBalanceInSelectedCreditTypes) as raised:
        charge(service, project, "t1", 5, wallets=wallets)

    assert raised.value.details == {
        "requested": Decimal(5),
        "available": Decimal(1) if label == "promo" else Decimal(3),
        "wallet": label,
    }


def test_deposit_instants_are_compared_to_the_microsecond_for_idempotency(project):
    first = T0 + DAY + dt.timedelta(microseconds=100)
    deposit(
        project=project,
        customer_id="c1",
        amount=Decimal(5),
        actor=ACTOR,
        idempotency_key="k",
        expires_at=first,
    )

    with pytest.raises(IdempotencyConflict):
        deposit(
            project=project,
            customer_id="c1",
            amount=Decimal(5),
            actor=ACTOR,
            idempotency_key="k",
            expires_at=first + dt.timedelta(microseconds=800),
        )
    replay = render(
        deposit(
            project=project,
            customer_id="c1",
            amount=Decimal(5),
            actor=ACTOR,
            idempotency_key="k",
            expires_at=first,
        )
    )
    assert replay["is_idempotent_replay"] is True


def test_charges_drawing_on_thousands_of_accounts_are_written_whole(project, tmp_path):
    # More accounts than one statement may bind parameters for, on either database.
    grants = tmp_path / "grants.csv"
    grants.write_text("customer_id,amount\n" + "c1,1\n" * 8_700)
    call_command("bulk_grant", str(grants), "--project", project.name, stdout=StringIO())

    deducted = render(charge(deduct, project, "d1", 4_200, now=timezone.now()))
    frozen = render(charge(freeze, project, "f1", 4_250, now=timezone.now()))
    consumed = render(
        consume(project=project, transaction_id="f1", actual_amount=Decimal(4_300), actor=ACTOR)
    )

    assert len(deducted["deduct_details"]) == 4_200
    assert len(frozen["freeze_details"]) == 4_250
    assert (consumed["consumed_amount"], consumed["overage_amount"]) == (4_300, 50)
    assert LedgerEntry.objects.filter(operation_type="CONSUME").count() == 4_200 + 4_300
    assert find_inconsistencies(project) == []
