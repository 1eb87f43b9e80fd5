"""What the HA tests share: management commands run against a formation, the ledger read
back from its primary, and the figures a failover is judged by."""

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import psycopg

from tests.hardening_hosts.load import Attempt, ChargeLoad
from tests.server import ROOT, Service

# A request waits at most a second for a pooled connection: an outage shows as 503s at once.
SERVICE_ENV = {"DATABASE_POOL_TIMEOUT_SECONDS": "1", "DATABASE_POOL_SIZE": "4"}


def manage(database_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Runs `manage.py` with the service's settings on `database_url`; its standard output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def services(database_url: str, count: int = 2, **env: str) -> list[Service]:
    """`count` gunicorn instances of 2 workers on `database_url`."""
    started: list[Service] = []
    try:
        for _ in range(count):
            started.append(Service(2, env={**SERVICE_ENV, "DATABASE_URL": database_url, **env}))
    except BaseException:
        for service in started:
            service.stop()
        raise
    return started


def charges_through_a_fault(
    instances: list[Service],
    key: str,
    customer_id: str,
    *,
    seconds: float,
    fault_after: float,
    fault: Callable[[], float | None],
) -> tuple[list[ChargeLoad], float]:
    """Eight clients, split evenly over `instances`, charge `customer_id` for `seconds`;
    `fault` runs `fault_after` seconds in. Returns the loads, once their clients are done,
    and the instant (`time.monotonic()`) the fault took effect: the one `fault` returns (a
    kill's last signal: a charge sent a moment before may still be answered), else its
    start. Stops the instances."""
    try:
        deposit(instances[0].base_url, key, customer_id, 10**6)
        per_instance = 8 // len(instances)
        loads = [
            ChargeLoad(
                s.base_url, key, customer_id, clients=per_instance, seconds=seconds,
                id_prefix=f"i{n}-",
            ).start()
            for n, s in enumerate(instances)
        ]  # fmt: skip
        time.sleep(fault_after)
        began = time.monotonic()
        began = fault() or began
        for load in loads:
            load.wait()
    finally:
        for instance in instances:
            instance.stop()
    return loads, began


def deposit(base_url: str, key: str, customer_id: str, amount: int) -> None:
    response = httpx.post(
        f"{base_url}/v1/customers/deposit",
        headers={"Authorization": f"Bearer {key}"},
        json={"customer_id": customer_id, "amount": amount, "idempotency_key": customer_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def ledger_charges(database_url: str, project: str, customer_id: str) -> dict[str, list[str]]:
    """The customer's deduct transactions and CONSUME entries by transaction id, read on the
    primary the URL leads to."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        transactions = connection.execute(
            "SELECT t.transaction_id FROM ledger_transaction t "
            "JOIN customers_customer c ON c.id = t.customer_id "
            "JOIN customers_project p ON p.id = c.project_id "
            "WHERE p.name = %s AND c.external_id = %s AND t.kind = 'DEDUCT'",
            [project, customer_id],
        ).fetchall()
        entries = connection.execute(
            "SELECT e.transaction_id FROM ledger_ledgerentry e "
            "JOIN customers_customer c ON c.id = e.customer_id "
            "JOIN customers_project p ON p.id = c.project_id "
            "WHERE p.name = %s AND c.external_id = %s AND e.operation_type = 'CONSUME'",
            [project, customer_id],
        ).fetchall()
    return {
        "transactions": sorted(row[0] for row in transactions),
        "entries": sorted(row[0] for row in entries),
    }


def assert_acknowledged_charges_are_the_ledgers(
    loads: list[ChargeLoad], database_url: str, project: str, customer_id: str
) -> int:
    """Every charge answered 200 is in the ledger exactly once, and the ledger holds no other;
    the ledger replays to every account. Returns the number of charges acknowledged."""
    for load in loads:
        assert load.unanswered == [], load.unanswered[:10]
    acknowledged = sorted(t for load in loads for t in load.acknowledged())
    found = ledger_charges(database_url, project, customer_id)
    assert found["transactions"] == acknowledged
    assert found["entries"] == acknowledged  # one CONSUME entry each: none twice
    report = manage(database_url, "check_ledger", "--project", project)
    assert report.rstrip().endswith("consistent"), report
    return len(acknowledged)


def assert_only_retryable_503_envelopes(loads: list[ChargeLoad]) -> None:
    for load in loads:
        for attempt in load.answers_other_than_200():
            assert attempt.status == 503, attempt
            assert attempt.error.get("code") == "service_unavailable", attempt
            assert attempt.error.get("retryable") is True, attempt


def attempts_of(loads: list[ChargeLoad]) -> list[Attempt]:
    return sorted((a for load in loads for a in load.attempts), key=lambda a: a.started)


def writes_back_after(loads: list[ChargeLoad], instant: float) -> float:
    """Seconds from `instant` to the first 200 answered to a charge sent after it."""
    answered = [
        a.started + a.seconds for a in attempts_of(loads) if a.status == 200 and a.started > instant
    ]
    assert answered, "no charge sent after the fault was answered 200"
    return min(answered) - instant


def longest_without_a_200(loads: list[ChargeLoad], since: float, until: float) -> float:
    """The longest stretch of [since, until] in which no 200 was answered."""
    answered = sorted(a.started + a.seconds for a in attempts_of(loads) if a.status == 200)
    marks = [since, *(t for t in answered if since < t < until), until]
    return max(later - earlier for earlier, later in itertools.pairwise(marks))


def statuses(loads: list[ChargeLoad]) -> dict:
    """How many attempts got each status (None: the connection dropped)."""
    counted: dict = {}
    for load in loads:
        for status, count in load.statuses().items():
            counted[status] = counted.get(status, 0) + count
    return counted
