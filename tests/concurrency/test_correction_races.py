"""Races over real HTTP on refunds, credit limits and repayments: gunicorn workers (and the
scheduler) writing one customer at once, started together on a barrier, outside a wrapping
transaction; each test ends by replaying the ledger against every account and line."""

import datetime as dt
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer
from ledger import services
from ledger.models import CreditLine, LedgerEntry, OperationType, Transaction
from ledger.selectors.consistency import find_inconsistencies
from tests.concurrency.test_charge_races import ACTOR, post_together
from tests.support import deposit

pytestmark = [pytest.mark.http, pytest.mark.django_db(transaction=True)]


def deduct(project, transaction_id: str, amount, customer_id: str = "c1") -> None:
    services.deduct(
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor=ACTOR,
    )


def entries_of(kind: str) -> list[Decimal]:
    return list(LedgerEntry.objects.filter(operation_type=kind).values_list("amount", flat=True))


def test_refunds_racing_refunds_of_one_charge_never_put_back_more_than_it_charged(
    service, project, api_key
):
    for _ in range(4):
        deposit(project, 25)
    deduct(project, "job", 100)
    requests = [
        ("/v1/billing/refund", {"transaction_id": "job", "refund_id": f"r{n}", "amount": 3})
        for n in range(40)
    ]

    run = post_together(service, api_key, requests, threads=8)

    assert run.server_errors() == []
    assert run.statuses() == Counter({200: 33, 400: 7})
    assert run.codes() == Counter({"refund_exceeds_charge": 7})
    assert sum(entries_of(OperationType.REFUND)) == 99
    assert Transaction.objects.get(transaction_id="job", kind="DEDUCT").refunded_amount == 99
    assert find_inconsistencies() == []


def test_one_refund_sent_sixteen_times_at_once_refunds_once(service, project, api_key):
    deposit(project, 100)
    deduct(project, "job", 40)
    body = {"transaction_id": "job", "refund_id": "once", "amount": 10}

    run = post_together(service, api_key, [("/v1/billing/refund", body)] * 16, threads=16)

    assert run.statuses() == Counter({200: 16})
    assert sum(1 for o in run.outcomes if not o.replayed) == 1
    assert entries_of(OperationType.REFUND) == [10]
    assert find_inconsistencies() == []


def test_a_refund_racing_the_schedulers_expiry_expires_each_credit_once(service, project, api_key):
    now = timezone.now()
    expires_at = now + dt.timedelta(seconds=3)
    accounts = [
        deposit(project, 10, customer_id=f"c{n}", expires_at=expires_at).account_id
        for n in range(12)
    ]
    for n in range(12):
        deduct(project, f"job{n}", 6, customer_id=f"c{n}")
    requests = [
        ("/v1/billing/refund", {"transaction_id": f"job{n}", "refund_id": f"r{n}"})
        for n in range(12)
    ]

    # Refunds start just before the credits expire, while the scheduler's loop runs.
    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds() - 0.3))

    def expire() -> int:
        done = 0
        give_up = timezone.now() + dt.timedelta(seconds=20)
        while timezone.now() < give_up and done < 12:
            done += services.expire_due()
        return done

    run = post_together(service, api_key, requests, threads=4, alongside=[expire])

    assert run.server_errors() == []
    assert run.statuses() == Counter({200: 12})
    for account_id in accounts:
        expired = LedgerEntry.objects.filter(account_id=account_id, operation_type="EXPIRE")
        # The 4 left when it expired and the 6 refunded, whichever came first: 10 in all.
        assert sum(e.amount for e in expired) in (4, 10)
    assert find_inconsistencies() == []


def test_charges_racing_up_to_a_credit_limit_never_pass_it(service, project, api_key):
    Customer.objects.create(project=project, external_id="c1")
    services.set_credit_limit(project=project, customer_id="c1", limit=Decimal(50), actor=ACTOR)
    requests = [
        ("/v1/billing/deduct", {"customer_id": "c1", "transaction_id": f"d{n}", "amount": 1})
        for n in range(80)
    ]

    run = post_together(service, api_key, requests, threads=8)

    assert run.server_errors() == []
    assert run.statuses() == Counter({200: 50, 400: 30})
    assert run.codes() == Counter({"insufficient_balance": 30})
    line = CreditLine.objects.get()
    assert (line.debt, line.frozen) == (50, 0)
    assert find_inconsistencies() == []


def test_concurrent_deposits_pay_a_debt_back_exactly_once(service, project, api_key):
    Customer.objects.create(project=project, external_id="c1")
    services.set_credit_limit(project=project, customer_id="c1", limit=Decimal(50), actor=ACTOR)
    deduct(project, "owed", 50)
    requests = [
        (
            "/v1/customers/deposit",
            {"customer_id": "c1", "amount": 5, "idempotency_key": f"pay{n}"},
        )
        for n in range(20)
    ]

    run = post_together(service, api_key, requests, threads=8)

    assert run.statuses() == Counter({200: 20})
    repaid = [o.body.get("repaid_amount") for o in run.outcomes]
    assert sorted(repaid, key=lambda x: x or 0) == [None] * 10 + [5] * 10
    assert sum(entries_of(OperationType.REPAY)) == 50
    assert CreditLine.objects.get().debt == 0
    assert find_inconsistencies() == []
