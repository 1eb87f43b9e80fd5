"""Faults under a bounded charge load, on PostgreSQL: a gunicorn worker killed with SIGKILL,
and the database stopped and started again. Whatever the clients saw, the service
acknowledged (answered 200) exactly the charges the ledger holds, the ledger replays to every
account, and while the database was away every answer was a retryable 503 envelope."""

import os
import shlex
import signal
import subprocess
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.db import connection

from ledger import services
from ledger.models import LedgerEntry, OperationType, Transaction
from tests.hardening_hosts.load import ChargeLoad
from tests.server import Service

pytestmark = [pytest.mark.http, pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

CUSTOMER = "under-fault"
POOL_WAIT_SECONDS = 1
OUTAGE_SECONDS = 3.0
# The longest any single request may take, outage included: nothing hangs.
LONGEST_ANSWER_SECONDS = 5.0


def workers_of(master_pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            found.add(int(stat.parent.name))
    return found


def pg_ctl(*args: str) -> None:
    """Runs pg_ctl on the test cluster, as scripts/with-postgres.sh exports it."""
    command = os.environ.get("CREDITS_PG_CTL")
    assert command, "CREDITS_PG_CTL is unset: run the tests under scripts/with-postgres.sh"
    subprocess.run([*shlex.split(command), *args], check=True, timeout=60, capture_output=True)


def assert_acknowledged_charges_are_the_ledgers(load: ChargeLoad) -> None:
    assert load.unanswered == []
    acknowledged = load.acknowledged()
    charges = Transaction.objects.filter(
        kind=Transaction.Kind.DEDUCT, customer__external_id=CUSTOMER
    )
    assert set(charges.values_list("transaction_id", flat=True)) == acknowledged
    consumed = LedgerEntry.objects.filter(
        operation_type=OperationType.CONSUME, customer__external_id=CUSTOMER
    )
    assert sorted(consumed.values_list("transaction_id", flat=True)) == sorted(acknowledged)
    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert out.getvalue().rstrip().endswith("consistent"), out.getvalue()


def assert_only_retryable_503_envelopes(load: ChargeLoad) -> None:
    for attempt in load.answers_other_than_200():
        assert attempt.status == 503, attempt
        assert attempt.error.get("code") == "service_unavailable", attempt
        assert attempt.error.get("retryable") is True, attempt
    assert max(a.seconds for a in load.attempts) < LONGEST_ANSWER_SECONDS


@pytest.fixture(scope="module", autouse=True)
def renew_shared_service_workers(service):
    """The database restart leaves the pooled connections of the session's shared service
    dead; each would fail one later request with a retryable 503. Have its master replace its
    workers (SIGHUP) after this module, so that later tests meet fresh pools."""
    yield
    before = workers_of(service.process.pid)
    service.process.send_signal(signal.SIGHUP)
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        now = workers_of(service.process.pid)
        if now and now.isdisjoint(before) and healthy(service.base_url):
            return
        time.sleep(0.2)
    raise AssertionError("the shared service did not renew its workers")


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def own_service():
    """A service of its own: the faults must not reach the session's shared one."""
    server = Service(workers=4)
    yield server
    server.stop()


def test_sigkill_of_workers_under_load_loses_and_duplicates_no_acknowledged_charge(
    own_service, project, api_key
):
    services.deposit(project=project, customer_id=CUSTOMER, amount=Decimal(10**6), actor="t")
    first_workers = workers_of(own_service.process.pid)
    load = ChargeLoad(own_service.base_url, api_key, CUSTOMER, seconds=6).start()

    killed = []
    for at in (1.5, 3.0):
        time.sleep(max(0.0, load.started + at - time.monotonic()))
        victim = sorted(workers_of(own_service.process.pid))[0]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
    load.wait()

    assert len(load.acknowledged()) > 100, load.statuses()
    # The master replaced the killed workers.
    assert workers_of(own_service.process.pid).isdisjoint(killed)
    assert killed[0] in first_workers
    assert_only_retryable_503_envelopes(load)
    assert_acknowledged_charges_are_the_ledgers(load)


def test_database_restart_under_load_answers_retryable_503s_and_keeps_every_charge(
    project, api_key
):
    services.deposit(project=project, customer_id=CUSTOMER, amount=Decimal(10**6), actor="t")
    # A request waits at most a second for a database connection, so the outage shows.
    server = Service(workers=4, env={"DATABASE_POOL_TIMEOUT_SECONDS": str(POOL_WAIT_SECONDS)})
    try:
        load = ChargeLoad(server.base_url, api_key, CUSTOMER, seconds=8).start()
        time.sleep(1.5)
        pg_ctl("stop", "-m", "fast", "-w")
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        up = time.monotonic()
        pg_ctl("start", "-w")
        load.wait()
    finally:
        server.stop()
    connection.close()  # this process's connection died with the server

    assert len(load.acknowledged()) > 100, load.statuses()
    # Sent while the database was down, and given up on before it was back: a request sent
    # less than the pool's wait before the start may rightly succeed.
    during_outage = [
        a for a in load.attempts if down + 0.2 < a.started < up - POOL_WAIT_SECONDS - 0.2
    ]
    assert during_outage, "no request was sent while the database was down"
    assert {a.status for a in during_outage} == {503}, load.statuses()
    assert_only_retryable_503_envelopes(load)
    assert_acknowledged_charges_are_the_ledgers(load)
