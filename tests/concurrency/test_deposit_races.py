"""Concurrent deposits: real threads released together by a barrier, outside a wrapping
transaction, calling the deposit service or the service under gunicorn.

The races are decided by PostgreSQL's row locks and unique constraints; on SQLite, which
serializes every writer, the same outcome must hold, so the tests run on both.
"""

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connections

from credits_project.errors import TransactionConflict
from customers.models import Customer
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from tests.support import deposit

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16
TIMEOUT_SECONDS = 60


def run_together(work: Callable[[int], Any], count: int = THREADS) -> list[Any]:
    """Run `work(i)` for i in range(count), each in its own thread, all released at once.
    Each result is the return value or the exception raised."""
    barrier = threading.Barrier(count, timeout=TIMEOUT_SECONDS)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a deposit thread hung"
    return results


def test_concurrent_deposits_with_one_key_make_one_account_and_fifteen_replays(project):

    results = run_together(
        lambda _: render(
            deposit(project, 10, customer_id="new-customer", idempotency_key="same-key")
        )
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r["is_idempotent_replay"] for r in results) == [False] + [True] * 15
    assert len({(r["account_id"], r["record_id"]) for r in results}) == 1
    assert Customer.objects.count() == 1
    assert CreditAccount.objects.get().total == Decimal(10)
    assert LedgerEntry.objects.filter(operation_type=OperationType.GRANT).count() == 1
    assert Transaction.objects.get().transaction_id == "same-key"


def test_concurrent_deposits_with_different_keys_to_a_new_customer_make_one_customer(project):

    results = run_together(
        lambda i: render(
            deposit(project, i + 1, customer_id="new-customer", idempotency_key=f"key-{i}")
        )
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert [r["is_idempotent_replay"] for r in results] == [False] * THREADS
    assert Customer.objects.filter(external_id="new-customer").count() == 1
    assert CreditAccount.objects.count() == THREADS
    assert sorted(a.total for a in CreditAccount.objects.all()) == [
        Decimal(i + 1) for i in range(THREADS)
    ]
    assert LedgerEntry.objects.filter(operation_type=OperationType.GRANT).count() == THREADS
    assert Transaction.objects.count() == THREADS


def test_concurrent_deposits_with_one_key_for_different_customers_succeed_once(project):

    results = run_together(
        lambda i: render(
            deposit(project, 10, customer_id=f"customer-{i}", idempotency_key="shared-key")
        )
    )

    successes = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, TransactionConflict)]
    assert (len(successes), len(conflicts)) == (1, THREADS - 1), results
    assert list(Customer.objects.values_list("external_id", flat=True)) == [
        successes[0]["customer_id"]
    ]
    assert CreditAccount.objects.count() == 1


def test_concurrent_http_deposits_with_one_key_make_one_account(service, api_key):
    body = {"customer_id": "over-http", "amount": 5, "idempotency_key": "http-key"}

    def post(_: int) -> tuple[int, dict[str, Any]]:
        with httpx.Client(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=TIMEOUT_SECONDS,
        ) as client:
            response = client.post("/v1/customers/deposit", json=body)
            return response.status_code, response.json()

    results = run_together(post)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert [status for status, _ in results] == [200] * THREADS
    assert sorted(body["is_idempotent_replay"] for _, body in results) == [False] + [True] * 15
    assert len({body["account_id"] for _, body in results}) == 1
    assert CreditAccount.objects.count() == 1
    assert LedgerEntry.objects.filter(operation_type=OperationType.GRANT).count() == 1
