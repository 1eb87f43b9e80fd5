"""Refunds put a charge's credits back on the accounts it drew, the last slice first, each as a
REFUND entry; never more than the charge consumed; a repeat replays."""

from decimal import Decimal

import pytest

from credits_project.errors import (
    IdempotencyConflict,
    NotRefundable,
    RefundExceedsCharge,
    TransactionConflict,
    TransactionNotFound,
)
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerEntry, Transaction
from ledger.selectors.consistency import find_inconsistencies
from ledger.services import consume, deduct, expire_due, refund, unfreeze
from tests.ledger.support import ACTOR, DAY, T0, counters, entries, grant, hold, item, wire

HOUR = DAY / 24


def charge(project, transaction_id: str, amount, **kwargs):
    return deduct(
        project=project,
        customer_id=kwargs.pop("customer_id", "c1"),
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor=ACTOR,
        now=kwargs.pop("now", T0),
        **kwargs,
    )


def give_back(project, transaction_id: str, refund_id: str, amount=None, **kwargs):
    return refund(
        project=project,
        transaction_id=transaction_id,
        refund_id=refund_id,
        amount=None if amount is None else Decimal(amount),
        actor="staff:ops",
        now=kwargs.pop("now", T0 + HOUR),
        **kwargs,
    )


@pytest.mark.django_db
def test_a_partial_refund_puts_back_the_last_slice_drawn_first_with_its_own_wallet(project):
    sooner = grant(project, 10, wallet="promo", source="campaign", expires_at=T0 + 30 * DAY)
    later = grant(project, 100)
    charge(project, "job", 30)  # 10 from promo (sooner expiry), then 20 from default

    first = give_back(project, "job", "r1", 25, description="outage")

    assert wire(render(first)) == {
        "transaction_id": "job",
        "refund_id": "r1",
        "refunded_amount": 25,
        "refund_details": [item(later, 20), item(sooner, 5, "promo", "campaign")],
        "remaining_refundable": 5,
        "refunded_at": "2026-04-07T13:00:00.000Z",
        "is_idempotent_replay": False,
    }
    assert counters(later) == (100, 0, 0)
    assert counters(sooner) == (10, 5, 0)
    assert [(e[0], e[1], e[2], e[3], e[5], e[6]) for e in entries("REFUND")] == [
        (int(later), "REFUND", 20, "r1", "outage", "staff:ops"),
        (int(sooner), "REFUND", 5, "r1", "outage", "staff:ops"),
    ]
    rest = give_back(project, "job", "r2")
    assert (rest.refunded_amount, rest.remaining_refundable) == (5, 0)
    assert [d.account_id for d in rest.refund_details] == [sooner]
    assert counters(sooner) == (10, 0, 0)
    assert Transaction.objects.get(transaction_id="job", kind="DEDUCT").refunded_amount == 30
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_repeated_refund_replays_and_another_body_under_its_id_conflicts(project):
    grant(project, 100)
    charge(project, "job", 30)
    first = give_back(project, "job", "r1", 10)
    before = LedgerEntry.objects.count()

    again = give_back(project, "job", "r1", 10, now=T0 + DAY)

    assert wire(render(again)) == {**wire(render(first)), "is_idempotent_replay": True}
    assert LedgerEntry.objects.count() == before
    with pytest.raises(IdempotencyConflict):
        give_back(project, "job", "r1", 11)
    charge(project, "other", 5)
    with pytest.raises(IdempotencyConflict):
        give_back(project, "other", "r1", 10)


@pytest.mark.django_db
def test_a_refund_id_of_another_customer_is_a_transaction_conflict(project):
    grant(project, 100)
    grant(project, 100, customer_id="c2")
    charge(project, "job", 30)
    charge(project, "theirs", 30, customer_id="c2")
    give_back(project, "job", "r1", 10)

    with pytest.raises(TransactionConflict):
        give_back(project, "theirs", "r1", 10)


@pytest.mark.django_db
def test_refunds_never_exceed_what_the_charge_consumed(project):
    grant(project, 100)
    charge(project, "job", 30)
    give_back(project, "job", "r1", 20)

    with pytest.raises(RefundExceedsCharge) as raised:
        give_back(project, "job", "r2", 11)
    assert raised.value.details == {"requested": 11, "remaining_refundable": 10}
    give_back(project, "job", "r3")
    with pytest.raises(RefundExceedsCharge) as raised:
        give_back(project, "job", "r4")
    assert raised.value.details == {"requested": 0, "remaining_refundable": 0}
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_only_a_deduct_or_a_consumed_freeze_is_refundable(project):
    grant(project, 100)
    hold(project, "open", 10)
    hold(project, "released", 10)
    unfreeze(project=project, transaction_id="released", actor=ACTOR, now=T0)
    hold(project, "used", 10)
    consume(project=project, transaction_id="used", actor=ACTOR, actual_amount=Decimal(7), now=T0)

    for transaction_id, state in (("open", "FROZEN"), ("released", "UNFROZEN")):
        with pytest.raises(NotRefundable) as raised:
            give_back(project, transaction_id, f"r-{transaction_id}")
        assert raised.value.details == {"transaction_id": transaction_id, "state": state}
    with pytest.raises(TransactionNotFound):
        give_back(project, "nothing", "r-nothing")
    assert give_back(project, "used", "r-used").refunded_amount == 7


@pytest.mark.django_db
def test_a_consumed_freeze_with_overage_gives_back_its_overage_first(project):
    held = grant(project, 10, wallet="a")
    extra = grant(project, 10, wallet="b")
    hold(project, "job", 10, wallets=["a", "b"])  # all of account a
    consume(
        project=project, transaction_id="job", actor=ACTOR, actual_amount=Decimal(14), now=T0
    )  # the overage, 4, from b

    back = give_back(project, "job", "r1", 6)

    assert [(d.account_id, d.amount) for d in back.refund_details] == [(extra, 4), (held, 2)]
    assert counters(held) == (10, 8, 0)
    assert counters(extra) == (10, 0, 0)


@pytest.mark.django_db
def test_a_slice_whose_account_expired_since_is_put_back_and_expired_at_once(project):
    expiring = grant(project, 10, expires_at=T0 + DAY)
    charge(project, "job", 6)
    expire_due(now=T0 + 2 * DAY)  # the remaining 4 expire

    give_back(project, "job", "r1", now=T0 + 3 * DAY)

    assert [(e[1], e[2], e[3]) for e in entries("EXPIRE", "REFUND")] == [
        ("EXPIRE", Decimal(4), None),
        ("REFUND", Decimal(6), "r1"),
        ("EXPIRE", Decimal(6), None),
    ]
    assert counters(expiring) == (10, 0, 0)
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_a_refund_of_a_used_up_account_brings_it_back_into_the_balance(project):
    account = grant(project, 10)
    charge(project, "job", 10)

    give_back(project, "job", "r1", 3)

    assert CreditAccount.objects.get(pk=account).available == 3
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_the_charge_state_tells_what_was_refunded(project):
    from ledger.selectors import transaction_state

    grant(project, 100)
    charge(project, "job", 30)
    give_back(project, "job", "r1", 12)

    assert transaction_state(project, "job").refunded_amount == 12
