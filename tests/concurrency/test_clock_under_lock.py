"""A request that waited for its customer's lock judges expiry as of when it runs."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.utils import timezone

from credits_project.errors import InsufficientBalance
from customers.models import Customer
from ledger import services
from ledger.models import LedgerEntry
from ledger.selectors.consistency import find_inconsistencies

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deduct_that_waited_for_the_lock_cannot_spend_credits_that_expired_meanwhile(project):
    expires_at = timezone.now() + dt.timedelta(seconds=1)
    services.deposit(
        project=project, customer_id="c", amount=Decimal(10), actor="test", expires_at=expires_at
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_customer() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(external_id="c")  # PostgreSQL
                Customer.objects.filter(external_id="c").update(name="holder")  # SQLite
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_customer)
    holder.start()
    assert locked.wait(10)
    timer = threading.Timer(1.5, release.set)  # let go only after the credits have expired
    timer.start()
    try:
        started = time.monotonic()
        with pytest.raises(InsufficientBalance):
            services.deduct(
                project=project,
                customer_id="c",
                transaction_id="late",
                amount=Decimal(5),
                actor="test",
            )
        waited = time.monotonic() - started
    finally:
        timer.join()
        holder.join(10)

    assert waited >= 1.0  # it really queued behind the lock
    assert not LedgerEntry.objects.filter(operation_type="CONSUME").exists()
    assert find_inconsistencies() == []


def test_an_account_whose_expiry_is_recorded_is_never_spent_again(project):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    services.deposit(
        project=project,
        customer_id="c",
        amount=Decimal(10),
        actor="test",
        expires_at=t0 + dt.timedelta(seconds=1),
        now=t0,
    )
    services.expire_due(now=t0 + dt.timedelta(seconds=2))

    # A caller with a clock that lags behind the scheduler's still finds nothing to spend.
    with pytest.raises(InsufficientBalance):
        services.deduct(
            project=project,
            customer_id="c",
            transaction_id="stale",
            amount=Decimal(5),
            actor="test",
            now=t0 + dt.timedelta(seconds=0.5),
        )

    assert find_inconsistencies() == []
