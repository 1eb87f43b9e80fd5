"""The scheduler's work: `expire_due` records expiry, `settle_due` settles freezes at their
deadline through the same `consume` / `unfreeze` a client calls; and the command that runs both.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from credits_project.errors import (
    FreezeAutoUnfrozen,
    FreezeRecordsAlreadyConsumed,
    IdempotencyConflict,
)
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerEntry, Transaction
from ledger.services import consume, deduct, expire_due, settle_due, unfreeze
from tests.ledger.support import (
    ACTOR,
    DAY,
    T0,
    counters,
    entries,
    grant,
    hold,
    run_scheduler_once,
    wire,
)

HOUR = dt.timedelta(hours=1)


def state(transaction_id: str) -> tuple:
    charge = Transaction.objects.get(transaction_id=transaction_id)
    return charge.state, charge.settled_by, charge.settled_at


# --- expire_due ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_expire_due_writes_one_expire_entry_for_what_is_neither_used_nor_frozen(project):
    account = grant(project, 100, expires_at=T0 + HOUR, business_type="FREE_TRIAL")
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="d1",
        amount=Decimal(30),
        actor=ACTOR,
        now=T0,
    )
    hold(project, "f1", "20.5")

    recorded = expire_due(now=T0 + 2 * HOUR)

    assert recorded == 1
    assert entries("EXPIRE") == [
        (
            int(account),
            "EXPIRE",
            Decimal("49.5"),
            None,
            "FREE_TRIAL",
            "expired",
            "scheduler",
            T0 + 2 * HOUR,
        ),
    ]
    assert counters(account) == (100, 30, Decimal("20.5"))  # EXPIRE changes no counter
    stored = CreditAccount.objects.get(pk=account)
    assert stored.expiry_recorded_at == T0 + 2 * HOUR


@pytest.mark.django_db
def test_expire_due_records_each_account_exactly_once(project):
    grant(project, 10, expires_at=T0 + HOUR)
    grant(project, 10, expires_at=T0 + HOUR, customer_id="c2")

    assert expire_due(now=T0 + HOUR) == 2
    assert expire_due(now=T0 + 2 * HOUR) == 0
    assert expire_due(now=T0 + 3 * DAY) == 0

    assert [e[2] for e in entries("EXPIRE")] == [Decimal(10), Decimal(10)]


@pytest.mark.django_db
def test_expire_due_writes_no_entry_when_nothing_is_left_but_still_records_the_expiry(project):
    spent = grant(project, 10, expires_at=T0 + HOUR)
    held = grant(project, 10, expires_at=T0 + 2 * HOUR)
    deduct(
        project=project,
        customer_id="c1",
        transaction_id="d1",
        amount=Decimal(10),
        actor=ACTOR,
        now=T0,
    )
    hold(project, "f1", 10)

    assert expire_due(now=T0 + DAY) == 2

    assert entries("EXPIRE") == []
    assert (
        CreditAccount.objects.filter(pk__in=[spent, held], expiry_recorded_at=T0 + DAY).count() == 2
    )


@pytest.mark.django_db
def test_expire_due_leaves_live_and_never_expiring_accounts_alone(project):
    later = grant(project, 10, expires_at=T0 + HOUR + dt.timedelta(microseconds=1))
    never = grant(project, 10)
    due = grant(project, 10, expires_at=T0 + HOUR)

    assert expire_due(now=T0 + HOUR) == 1

    assert [e[0] for e in entries("EXPIRE")] == [int(due)]
    assert CreditAccount.objects.get(pk=later).expiry_recorded_at is None
    assert CreditAccount.objects.get(pk=never).expiry_recorded_at is None


@pytest.mark.django_db
def test_expired_credits_each_expire_once_however_they_come_back(project):
    account = grant(project, 100, expires_at=T0 + HOUR)
    hold(project, "early", 10)
    hold(project, "late", 20)
    hold(project, "partial", 30)
    # Returned after expiry, before any scheduler pass: this return records the account's
    # expiry itself, 100 - 50 still frozen = 50 (the returned 10 included).
    unfreeze(project=project, transaction_id="early", actor=ACTOR, now=T0 + 2 * HOUR)

    assert expire_due(now=T0 + 3 * HOUR) == 0  # nothing left for the scheduler
    unfreeze(project=project, transaction_id="late", actor=ACTOR, now=T0 + 4 * HOUR)
    consume(
        project=project,
        transaction_id="partial",
        actor=ACTOR,
        actual_amount=Decimal(12),
        now=T0 + 5 * HOUR,
    )
    expire_due(now=T0 + 6 * HOUR)

    assert [(e[2], e[6], e[7]) for e in entries("EXPIRE")] == [
        (Decimal(50), ACTOR, T0 + 2 * HOUR),
        (Decimal(20), ACTOR, T0 + 4 * HOUR),
        (Decimal(18), ACTOR, T0 + 5 * HOUR),
    ]
    assert counters(account) == (100, 12, 0)


# --- settle_due ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_settle_due_unfreezes_a_freeze_past_its_unfreeze_deadline(project):
    account = grant(project, 10)
    hold(project, "job", 6, unfreeze_after_seconds=60, business_type="TASK", description="x")

    assert settle_due(now=T0 + dt.timedelta(seconds=59)) == 0
    assert state("job") == ("FROZEN", None, None)
    assert settle_due(now=T0 + dt.timedelta(seconds=60)) == 1

    assert state("job") == ("UNFROZEN", "scheduler", T0 + dt.timedelta(seconds=60))
    assert counters(account) == (10, 0, 0)
    assert entries("UNFREEZE", "CONSUME") == [
        (
            int(account),
            "UNFREEZE",
            Decimal(6),
            "job",
            "TASK",
            "x",
            "scheduler",
            T0 + dt.timedelta(seconds=60),
        ),
    ]
    assert settle_due(now=T0 + DAY) == 0


@pytest.mark.django_db
def test_settle_due_consumes_the_whole_freeze_past_its_consume_deadline(project):
    first = grant(project, 10, expires_at=T0 + DAY)
    second = grant(project, 10)
    hold(project, "job", 15, consume_after_seconds=300)

    assert settle_due(now=T0 + dt.timedelta(seconds=299)) == 0
    assert settle_due(now=T0 + HOUR) == 1

    assert state("job") == ("CONSUMED", "scheduler", T0 + HOUR)
    assert counters(first) == (10, 10, 0)
    assert counters(second) == (10, 5, 0)
    assert [(e[0], e[1], e[2], e[6]) for e in entries("UNFREEZE", "CONSUME")] == [
        (int(first), "CONSUME", Decimal(10), "scheduler"),
        (int(second), "CONSUME", Decimal(5), "scheduler"),
    ]


@pytest.mark.django_db
def test_settle_due_settles_every_due_freeze_and_leaves_the_rest(project):
    grant(project, 100)
    grant(project, 100, customer_id="c2")
    hold(project, "a", 1, unfreeze_after_seconds=10)
    hold(project, "b", 1, consume_after_seconds=20, customer_id="c2")
    hold(project, "c", 1, unfreeze_after_seconds=3600)
    hold(project, "d", 1)

    assert settle_due(now=T0 + dt.timedelta(seconds=30)) == 2

    assert [state(t)[0] for t in "abcd"] == ["UNFROZEN", "CONSUMED", "FROZEN", "FROZEN"]


@pytest.mark.django_db
def test_settle_due_leaves_a_freeze_the_client_settled_first_alone(project):
    account = grant(project, 10)
    hold(project, "job", 6, consume_after_seconds=60)
    consume(
        project=project,
        transaction_id="job",
        actor=ACTOR,
        actual_amount=Decimal(2),
        now=T0 + dt.timedelta(seconds=30),
    )

    assert settle_due(now=T0 + HOUR) == 0

    assert state("job") == ("CONSUMED", "client", T0 + dt.timedelta(seconds=30))
    assert counters(account) == (10, 2, 0)


@pytest.mark.django_db
def test_a_due_freeze_stays_an_ordinary_freeze_until_the_scheduler_runs(project):
    account = grant(project, 10)
    hold(project, "job", 6, unfreeze_after_seconds=60)

    result = render(
        consume(
            project=project,
            transaction_id="job",
            actor=ACTOR,
            actual_amount=Decimal(4),
            now=T0 + HOUR,
        )
    )

    assert result["consumed_amount"] == 4
    assert counters(account) == (10, 4, 0)
    assert settle_due(now=T0 + 2 * HOUR) == 0


@pytest.mark.django_db
def test_client_consume_after_the_scheduler_unfroze_is_freeze_auto_unfrozen(project):
    account = grant(project, 10)
    hold(project, "job", 6, unfreeze_after_seconds=60)
    settle_due(now=T0 + HOUR)

    with pytest.raises(FreezeAutoUnfrozen) as raised:
        consume(project=project, transaction_id="job", actor=ACTOR, now=T0 + 2 * HOUR)

    assert raised.value.status == 400
    assert raised.value.code == "freeze_auto_unfrozen"
    assert raised.value.details == {"transaction_id": "job"}
    assert counters(account) == (10, 0, 0)


@pytest.mark.django_db
def test_client_unfreeze_after_the_scheduler_unfroze_replays_its_response(project):
    account = grant(project, 10)
    hold(project, "job", 6, unfreeze_after_seconds=60)
    settle_due(now=T0 + HOUR)
    before = LedgerEntry.objects.count()

    again = render(unfreeze(project=project, transaction_id="job", actor=ACTOR, now=T0 + 2 * HOUR))

    assert wire(again) == {
        "transaction_id": "job",
        "unfrozen_amount": 6,
        "unfreeze_details": [
            {
                "account_id": account,
                "wallet": "default",
                "credit_type": "default",
                "source": "default",
                "amount": 6,
            },
        ],
        "unfrozen_at": "2026-04-07T13:00:00.000Z",
        "is_idempotent_replay": True,
    }
    assert LedgerEntry.objects.count() == before


@pytest.mark.django_db
def test_client_consume_after_the_scheduler_consumed_replays_its_response(project):
    account = grant(project, 10)
    hold(project, "job", 6, consume_after_seconds=60)
    settle_due(now=T0 + HOUR)
    before = LedgerEntry.objects.count()

    again = render(consume(project=project, transaction_id="job", actor=ACTOR, now=T0 + 2 * HOUR))
    explicit = render(
        consume(
            project=project,
            transaction_id="job",
            actor=ACTOR,
            actual_amount=Decimal(6),
            now=T0 + 2 * HOUR,
        )
    )

    assert (
        wire(again)
        == wire(explicit)
        == {
            "transaction_id": "job",
            "consumed_amount": 6,
            "consume_details": [
                {
                    "account_id": account,
                    "wallet": "default",
                    "credit_type": "default",
                    "source": "default",
                    "amount": 6,
                },
            ],
            "consumed_at": "2026-04-07T13:00:00.000Z",
            "is_idempotent_replay": True,
        }
    )
    with pytest.raises(IdempotencyConflict):
        consume(
            project=project,
            transaction_id="job",
            actor=ACTOR,
            actual_amount=Decimal(5),
            now=T0 + 2 * HOUR,
        )
    assert LedgerEntry.objects.count() == before


@pytest.mark.django_db
def test_scheduler_unfreeze_into_an_expired_account_expires_the_returned_credits(project):
    account = grant(project, 10, expires_at=T0 + HOUR)
    hold(project, "job", 6, unfreeze_after_seconds=7200)
    expire_due(now=T0 + HOUR)

    settle_due(now=T0 + 2 * HOUR)

    assert [(e[1], e[2], e[6]) for e in entries("EXPIRE", "UNFREEZE")] == [
        ("EXPIRE", Decimal(4), "scheduler"),
        ("UNFREEZE", Decimal(6), "scheduler"),
        ("EXPIRE", Decimal(6), "scheduler"),
    ]
    assert counters(account) == (10, 0, 0)


# --- the command ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_run_scheduler_once_expires_and_settles_due_work_and_exits_zero(project):
    now = timezone.now()
    expiring = grant(project, 10, expires_at=now - HOUR, now=now - DAY)
    held = grant(project, 10, now=now - DAY)
    hold(project, "job", 4, unfreeze_after_seconds=60, now=now - HOUR)
    hold(project, "later", 1, unfreeze_after_seconds=3600, now=now)

    finished = run_scheduler_once()

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "expired 1 account(s), settled 1 freeze(s)"
    assert [(e[0], e[1], e[2]) for e in entries("EXPIRE")] == [(int(expiring), "EXPIRE", 10)]
    assert Transaction.objects.get(transaction_id="job").state == "UNFROZEN"
    assert Transaction.objects.get(transaction_id="later").state == "FROZEN"
    assert counters(held) == (10, 0, 1)


@pytest.mark.django_db
def test_client_unfreeze_after_the_scheduler_consumed_is_freeze_records_already_consumed(project):
    account = grant(project, 10)
    hold(project, "job", 6, consume_after_seconds=60)
    settle_due(now=T0 + HOUR)

    with pytest.raises(FreezeRecordsAlreadyConsumed) as raised:
        unfreeze(project=project, transaction_id="job", actor=ACTOR, now=T0 + 2 * HOUR)

    assert raised.value.details == {"transaction_id": "job"}
    assert counters(account) == (10, 6, 0)
