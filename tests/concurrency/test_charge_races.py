"""Races over real HTTP: gunicorn workers and the scheduler writing one customer at once.

Every test starts its clients together on a `threading.Barrier`, talks to the service under
gunicorn (the `service` fixture) on the test database, runs outside a wrapping transaction so the
server sees the data, and ends by replaying the ledger against every account's counters.
"""

import datetime as dt
import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from credits_project.json import loads
from ledger import services
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.selectors.consistency import find_inconsistencies
from tests.support import deposit

pytestmark = [pytest.mark.http, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
REPORT = settings.DATA_DIR / "deduct_load_report.txt"
ACTOR = "test:races"
# One INFO line per request would drown the load report.
logging.getLogger("httpx").setLevel(logging.WARNING)
# Every load loop stops here, whatever happens; a test that needs longer fails.
TIME_CAP_SECONDS = 120


@dataclass(frozen=True)
class Outcome:
    """One HTTP answer: status, parsed body (exact decimals) and latency."""

    status: int
    body: dict[str, Any]
    seconds: float

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code")

    @property
    def replayed(self) -> bool:
        return self.body.get("is_idempotent_replay") is True


@dataclass(frozen=True)
class Run:
    outcomes: list[Outcome]
    wall_seconds: float
    alongside: list[Any]  # what the functions run alongside the clients returned

    def statuses(self) -> Counter:
        return Counter(o.status for o in self.outcomes)

    def codes(self) -> Counter:
        return Counter(o.code for o in self.outcomes if o.status != 200)

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status >= 500]


def post_together(
    service,
    api_key: str,
    requests: list[tuple[str, dict[str, Any]]],
    *,
    threads: int,
    alongside: list[Callable[[], Any]] = (),
) -> Run:
    """POST `requests` from `threads` clients (request i from client i % threads) while each
    `alongside` function runs in a thread of its own; all are released by one barrier."""
    barrier = threading.Barrier(threads + len(alongside))
    outcomes: list[Outcome | None] = [None] * len(requests)
    results: list[Any] = [None] * len(alongside)
    spans: list[tuple[float, float]] = []
    failures: list[BaseException] = []
    deadline = time.monotonic() + TIME_CAP_SECONDS

    def client_thread(first: int) -> None:
        try:
            with httpx.Client(
                base_url=service.base_url,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=60,
            ) as client:
                barrier.wait(timeout=30)
                started = time.perf_counter()
                for index in range(first, len(requests), threads):
                    if time.monotonic() > deadline:
                        break
                    path, body = requests[index]
                    sent = time.perf_counter()
                    response = client.post(path, json=body)
                    outcomes[index] = Outcome(
                        response.status_code, parse(response), time.perf_counter() - sent
                    )
                spans.append((started, time.perf_counter()))
        except BaseException as exc:  # reported below: a thread must not fail silently
            failures.append(exc)
            barrier.abort()
        finally:
            connection.close()

    def side_thread(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = alongside[index]()
        except BaseException as exc:
            failures.append(exc)
            barrier.abort()
        finally:
            connection.close()

    workers = [threading.Thread(target=client_thread, args=(k,)) for k in range(threads)]
    workers += [threading.Thread(target=side_thread, args=(k,)) for k in range(len(alongside))]
    for worker in workers:
        worker.start()
    give_up = time.monotonic() + TIME_CAP_SECONDS + 60
    for worker in workers:
        worker.join(max(1.0, give_up - time.monotonic()))
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    assert not failures, f"threads failed: {failures!r}"
    missing = sum(1 for o in outcomes if o is None)
    assert missing == 0, f"{missing} requests not sent within {TIME_CAP_SECONDS} s"
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return Run(outcomes=outcomes, wall_seconds=wall, alongside=results)  # type: ignore[arg-type]


def parse(response: httpx.Response) -> dict[str, Any]:
    try:
        return loads(response.content)
    except ValueError:
        return {"unparsed": response.text[:500]}


def freeze(project, customer_id: str, transaction_id: str, amount: int, **ttl: int) -> None:
    services.freeze(
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor=ACTOR,
        **ttl,
    )


def entries(account_id: str, operation_type: str, transaction_id: str | None = None):
    found = LedgerEntry.objects.filter(account_id=account_id, operation_type=operation_type)
    if transaction_id is not None:
        found = found.filter(transaction_id=transaction_id)
    return found


def assert_ledger_consistent() -> None:
    assert find_inconsistencies() == []


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report_load(run: Run, *, database: str, workers: int, threads: int, balance: int) -> str:
    """Print the measured throughput and latencies and keep them in data/ (never asserted)."""
    latencies = [o.seconds for o in run.outcomes]
    successes = sum(1 for o in run.outcomes if o.status == 200)
    line = (
        f"{database}: {len(latencies)} deductions of 1 credit on a balance of {balance}, "
        f"{threads} threads, {workers} gunicorn workers: {successes} succeeded; "
        f"{len(latencies) / run.wall_seconds:.0f} req/s, "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"wall {run.wall_seconds:.2f} s ({timezone.now():%Y-%m-%d %H:%M:%S} UTC)"
    )
    print(f"\n{line}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    if REPORT.exists():
        kept = [k for k in REPORT.read_text().splitlines() if not k.startswith(f"{database}:")]
    REPORT.write_text("\n".join([*kept, line]) + "\n")
    return line


# --- (a) and (b): many deductions against a balance that covers half of them -----------------


def test_concurrent_one_credit_deductions_succeed_exactly_as_often_as_the_balance_allows(
    service, project, api_key
):
    postgres = connection.vendor == "postgresql"
    balance, attempts, threads = (500, 1000, 20) if postgres else (200, 400, 20)
    account_id = deposit(project, balance, customer_id="load").account_id
    requests = [
        ("/v1/billing/deduct", {"customer_id": "load", "transaction_id": f"d{n}", "amount": 1})
        for n in range(attempts)
    ]

    run = post_together(service, api_key, requests, threads=threads)

    report_load(
        run,
        database=connection.vendor,
        workers=4 if postgres else 2,
        threads=threads,
        balance=balance,
    )
    assert run.statuses() == {200: balance, 400: attempts - balance}
    assert run.codes() == {"insufficient_balance": attempts - balance}
    assert not any(o.replayed for o in run.outcomes)
    account = CreditAccount.objects.get(pk=account_id)
    assert (account.total, account.used, account.frozen) == (balance, balance, 0)
    assert entries(account_id, OperationType.CONSUME).count() == balance
    assert Transaction.objects.filter(kind=Transaction.Kind.DEDUCT).count() == balance
    succeeded = {o.body["transaction_id"] for o in run.outcomes if o.status == 200}
    assert (
        set(entries(account_id, OperationType.CONSUME).values_list("transaction_id", flat=True))
        == succeeded
    )
    assert_ledger_consistent()


# --- (c): identical freezes execute once -----------------------------------------------------


def test_sixteen_identical_concurrent_freezes_execute_once_and_replay_fifteen_times(
    service, project, api_key
):
    account_id = deposit(project, 100, customer_id="alice").account_id
    body = {"customer_id": "alice", "transaction_id": "job-1", "amount": 40}

    run = post_together(service, api_key, [("/v1/billing/freeze", body)] * 16, threads=16)

    assert run.statuses() == {200: 16}
    assert Counter(o.replayed for o in run.outcomes) == {False: 1, True: 15}
    original = next(o.body for o in run.outcomes if not o.replayed)
    for outcome in run.outcomes:
        assert outcome.body == {**original, "is_idempotent_replay": outcome.replayed}
    assert original["frozen_amount"] == 40
    assert original["freeze_details"] == [
        {
            "account_id": account_id,
            "wallet": "default",
            "credit_type": "default",
            "source": "default",
            "amount": 40,
        }
    ]
    account = CreditAccount.objects.get(pk=account_id)
    assert (account.total, account.used, account.frozen) == (100, 0, 40)
    assert entries(account_id, OperationType.FREEZE).count() == 1
    assert entries(account_id, OperationType.FREEZE).get().amount == 40
    assert Transaction.objects.filter(transaction_id="job-1").count() == 1
    assert_ledger_consistent()


# --- (d): consume and unfreeze of one freeze race; one kind wins -----------------------------


def test_racing_consumes_and_unfreezes_of_one_freeze_settle_it_exactly_once(
    service, project, api_key
):
    account_id = deposit(project, 100, customer_id="bob").account_id
    freeze(project, "bob", "job-2", 40)
    consume = ("/v1/billing/consume", {"transaction_id": "job-2", "actual_amount": 25})
    unfreeze = ("/v1/billing/unfreeze", {"transaction_id": "job-2"})
    requests = [consume if n % 2 == 0 else unfreeze for n in range(50)]

    run = post_together(service, api_key, requests, threads=50)

    consumes = [
        o for (path, _), o in zip(requests, run.outcomes, strict=True) if path == consume[0]
    ]
    unfreezes = [
        o for (path, _), o in zip(requests, run.outcomes, strict=True) if path != consume[0]
    ]
    executed = [o for o in run.outcomes if o.status == 200 and not o.replayed]
    assert len(executed) == 1
    assert run.server_errors() == []
    account = CreditAccount.objects.get(pk=account_id)
    charge = Transaction.objects.get(transaction_id="job-2")
    if any(o is executed[0] for o in consumes):
        assert charge.state == Transaction.State.CONSUMED
        assert [o.status for o in consumes] == [200] * 25
        assert sum(o.replayed for o in consumes) == 24
        assert all(
            o.body == {**executed[0].body, "is_idempotent_replay": o.replayed} for o in consumes
        )
        assert executed[0].body["consumed_amount"] == 25
        assert executed[0].body["returned_amount"] == 15
        assert [(o.status, o.code) for o in unfreezes] == [
            (400, "freeze_records_already_consumed")
        ] * 25
        assert (account.used, account.frozen) == (25, 0)
        assert entries(account_id, OperationType.CONSUME, "job-2").get().amount == 25
        assert entries(account_id, OperationType.UNFREEZE, "job-2").get().amount == 15
    else:
        assert charge.state == Transaction.State.UNFROZEN
        assert [o.status for o in unfreezes] == [200] * 25
        assert sum(o.replayed for o in unfreezes) == 24
        assert all(
            o.body == {**executed[0].body, "is_idempotent_replay": o.replayed} for o in unfreezes
        )
        assert executed[0].body["unfrozen_amount"] == 40
        assert [(o.status, o.code) for o in consumes] == [
            (400, "no_consumable_freeze_records")
        ] * 25
        assert (account.used, account.frozen) == (0, 0)
        assert not entries(account_id, OperationType.CONSUME).exists()
        assert entries(account_id, OperationType.UNFREEZE, "job-2").get().amount == 40
    assert charge.settled_by == Transaction.SettledBy.CLIENT
    assert_ledger_consistent()


# --- (e): the scheduler races clients on due freezes -----------------------------------------


def test_scheduler_and_clients_racing_on_due_freezes_settle_each_freeze_exactly_once(
    service, project, api_key
):
    customers = [f"cust-{k}" for k in range(5)]
    accounts = {
        customer: deposit(project, 1000, customer_id=customer).account_id for customer in customers
    }
    freezes = {}  # transaction id -> (customer, auto-settlement kind)
    for n in range(30):
        customer = customers[n % len(customers)]
        ttl = "consume_after_seconds" if n % 2 == 0 else "unfreeze_after_seconds"
        freeze(project, customer, f"auto-{n}", 10 + n, **{ttl: 60})
        freezes[f"auto-{n}"] = (customer, ttl)
    past_deadlines = timezone.now() + dt.timedelta(hours=1)
    # The schedulers settle unfreeze deadlines first, then consume deadlines, each oldest first.
    # Two client consumes per freeze: one walks the schedulers' order, one the reverse.
    in_scheduler_order = [t for t in freezes if "unfreeze" in freezes[t][1]] + [
        t for t in freezes if "unfreeze" not in freezes[t][1]
    ]
    requests = [
        ("/v1/billing/consume", {"transaction_id": transaction_id})
        for pair in zip(in_scheduler_order, reversed(in_scheduler_order), strict=True)
        for transaction_id in pair
    ]

    def scheduler() -> int:
        # Let the clients settle a few freezes first, so that they win some races the
        # scheduler would otherwise always win (it needs no HTTP round trip).
        give_up = time.monotonic() + 10
        settled_by_clients = Transaction.objects.filter(settled_by="client")
        while settled_by_clients.count() < 3 and time.monotonic() < give_up:
            time.sleep(0.005)
        return services.settle_due(now=past_deadlines)

    run = post_together(service, api_key, requests, threads=8, alongside=[scheduler, scheduler])
    settled_by_scheduler = run.alongside

    assert services.settle_due(now=past_deadlines) == 0  # nothing left for a later pass
    assert run.server_errors() == []
    by_transaction: dict[str, list[Outcome]] = {}
    for (_, body), outcome in zip(requests, run.outcomes, strict=True):
        by_transaction.setdefault(body["transaction_id"], []).append(outcome)
    scheduler_settled = 0
    for transaction_id, (customer, ttl) in freezes.items():
        charge = Transaction.objects.get(transaction_id=transaction_id)
        amount = charge.amount
        consumes = entries(accounts[customer], OperationType.CONSUME, transaction_id)
        unfreezes = entries(accounts[customer], OperationType.UNFREEZE, transaction_id)
        outcomes = by_transaction[transaction_id]
        executed = [o for o in outcomes if o.status == 200 and not o.replayed]
        if charge.settled_by == Transaction.SettledBy.SCHEDULER:
            scheduler_settled += 1
            assert executed == []
        else:
            assert charge.settled_by == Transaction.SettledBy.CLIENT
            assert len(executed) == 1
        if charge.state == Transaction.State.CONSUMED:
            assert charge.settled_by == "client" or ttl == "consume_after_seconds"
            assert [e.amount for e in consumes] == [amount]
            assert not unfreezes.exists()
            assert [o.status for o in outcomes] == [200, 200]
            assert all(o.body["consumed_amount"] == amount for o in outcomes)
        else:
            assert charge.state == Transaction.State.UNFROZEN
            assert (charge.settled_by, ttl) == ("scheduler", "unfreeze_after_seconds")
            assert [e.amount for e in unfreezes] == [amount]
            assert not consumes.exists()
            assert [(o.status, o.code) for o in outcomes] == [(400, "freeze_auto_unfrozen")] * 2
    assert sum(settled_by_scheduler) == scheduler_settled
    for customer, account_id in accounts.items():
        account = CreditAccount.objects.get(pk=account_id)
        consumed = sum((e.amount for e in entries(account_id, OperationType.CONSUME)), Decimal(0))
        assert (account.used, account.frozen) == (consumed, 0), customer
    assert_ledger_consistent()
