"""Many hosts, as production runs them: two gunicorn instances and two schedulers against one
PostgreSQL through pgbouncer in transaction pooling mode (started beside the test cluster by
scripts/with-postgres.sh, which exports PGBOUNCER_URL).

The race scenarios (a)-(e) of tests/concurrency run here again, collected from their modules
with this module's `service`: a pair of instances whose clients alternate between them, so
every race is fought by requests arriving through both. Each server connection pgbouncer hands
out changes from one transaction to the next: nothing the service does may depend on session
state, prepared statements or advisory locks."""

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from ledger import services
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.selectors.consistency import find_inconsistencies
from tests.concurrency.test_charge_races import (  # noqa: F401 (collected and run here)
    test_concurrent_one_credit_deductions_succeed_exactly_as_often_as_the_balance_allows,
    test_racing_consumes_and_unfreezes_of_one_freeze_settle_it_exactly_once,
    test_scheduler_and_clients_racing_on_due_freezes_settle_each_freeze_exactly_once,
    test_sixteen_identical_concurrent_freezes_execute_once_and_replay_fifteen_times,
)
from tests.concurrency.test_deposit_races import (  # noqa: F401 (collected and run here)
    test_concurrent_http_deposits_with_one_key_make_one_account,
)
from tests.server import ROOT, Service

pytestmark = [pytest.mark.http, pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ACTOR = "test:hosts"
SETTLE_WITHIN_SECONDS = 20


def pgbouncer_url() -> str:
    """This process's (test) database, through pgbouncer."""
    url = os.environ.get("PGBOUNCER_URL")
    assert url, "PGBOUNCER_URL is unset: run the tests under scripts/with-postgres.sh"
    bouncer = urlsplit(url)
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{bouncer.hostname}:{bouncer.port}/{db['NAME']}"


def behind_pgbouncer() -> dict[str, str]:
    return {"DATABASE_URL": pgbouncer_url(), "DATABASE_POOLER": "transaction"}


class HostPair:
    """Two gunicorn instances with the project's configuration, both through pgbouncer.
    `base_url` names them in turn: each client of the race scenarios reads it once, so
    consecutive clients talk to different instances."""

    def __init__(self, workers_each: int = 2):
        self.instances = [Service(workers_each, behind_pgbouncer()) for _ in range(2)]
        self._turn = itertools.count()

    @property
    def base_url(self) -> str:
        return self.instances[next(self._turn) % len(self.instances)].base_url

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()


@pytest.fixture(scope="module")
def service(django_db_setup, django_db_blocker) -> Iterator[HostPair]:
    with django_db_blocker.unblock():
        pair = HostPair()
    yield pair
    pair.stop()
    with django_db_blocker.unblock():
        release_server_connections(connection.settings_dict["NAME"])


def release_server_connections(database: str) -> None:
    """pgbouncer keeps idle server connections to the test database; drop them, or the
    test database could not be dropped at the end of the run."""
    bouncer = urlsplit(os.environ["PGBOUNCER_URL"])
    with psycopg.connect(
        host=bouncer.hostname,
        port=bouncer.port,
        user=bouncer.username,
        dbname="pgbouncer",
        autocommit=True,
        prepare_threshold=None,
    ) as admin:
        admin.execute(f"KILL {database}")
        admin.execute(f"RESUME {database}")


class Schedulers:
    """`manage.py run_scheduler` processes, each through pgbouncer, running passes back to
    back."""

    def __init__(self, count: int):
        env = {**os.environ, **behind_pgbouncer()}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(count)
        ]
        # Read as they come; each is stopped only once it has started (a SIGTERM during
        # Django's start-up, before the command handles it, would simply kill it).
        self.outputs: list[list[str]] = [[] for _ in self.processes]
        self.readers = [
            threading.Thread(target=self.read, args=(process, output), daemon=True)
            for process, output in zip(self.processes, self.outputs, strict=True)
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def read(process: subprocess.Popen, output: list[str]) -> None:
        for line in process.stdout:
            output.append(line)

    def started(self, seconds: float = 60) -> bool:
        give_up = time.monotonic() + seconds
        while time.monotonic() < give_up:
            if all(any("scheduler started" in line for line in out) for out in self.outputs):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> list[str]:
        assert self.started(), self.outputs
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        outputs = []
        for process, reader, output in zip(self.processes, self.readers, self.outputs, strict=True):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(15)
            outputs.append("".join(output))
            assert process.returncode == 0, outputs[-1]
        return outputs


def test_two_schedulers_through_pgbouncer_settle_and_expire_each_once_while_clients_race(
    service, project, api_key
):
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    customers = [f"due-{k}" for k in range(4)]
    expiring = {}
    for customer in customers:
        services.deposit(project=project, customer_id=customer, amount=Decimal(1000), actor=ACTOR)
        expiring[customer] = services.deposit(
            project=project,
            customer_id=customer,
            amount=Decimal(7),
            wallet="promo",
            actor=ACTOR,
            now=an_hour_ago,
            expires_at=an_hour_ago + dt.timedelta(minutes=1),
        ).account_id
    freezes = [f"due-freeze-{n}" for n in range(24)]
    for n, transaction_id in enumerate(freezes):
        ttl = "consume_after_seconds" if n % 2 == 0 else "unfreeze_after_seconds"
        services.freeze(
            project=project,
            customer_id=customers[n % len(customers)],
            transaction_id=transaction_id,
            amount=Decimal(5),
            wallets=["default"],
            actor=ACTOR,
            now=an_hour_ago,
            **{ttl: 60},
        )

    schedulers = Schedulers(2)
    try:
        assert schedulers.started()  # both race the clients
        # Clients race the schedulers for every freeze, through both instances.
        answers = {}
        for transaction_id in freezes:
            with httpx.Client(
                base_url=service.base_url,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=30,
            ) as client:
                answers[transaction_id] = client.post(
                    "/v1/billing/consume", json={"transaction_id": transaction_id}
                )
        pending = Transaction.objects.filter(
            transaction_id__in=freezes, state=Transaction.State.FROZEN
        )
        give_up = time.monotonic() + SETTLE_WITHIN_SECONDS
        while time.monotonic() < give_up and (
            pending.exists()
            or CreditAccount.objects.filter(
                pk__in=expiring.values(), expiry_recorded_at=None
            ).exists()
        ):
            time.sleep(0.1)
    finally:
        outputs = schedulers.stop()

    assert not pending.exists()
    assert {a.status_code for a in answers.values()} <= {200, 400}
    for transaction_id in freezes:
        charge = Transaction.objects.get(transaction_id=transaction_id)
        settled = LedgerEntry.objects.filter(
            transaction_id=transaction_id,
            operation_type__in=[OperationType.CONSUME, OperationType.UNFREEZE],
        )
        assert settled.count() == 1, transaction_id
        answer = answers[transaction_id]
        if charge.settled_by == Transaction.SettledBy.CLIENT:
            assert answer.status_code == 200
            assert answer.json()["is_idempotent_replay"] is False
    for customer, account_id in expiring.items():
        expired = LedgerEntry.objects.filter(
            account_id=account_id, operation_type=OperationType.EXPIRE
        )
        assert [e.amount for e in expired] == [Decimal(7)], customer
    assert sum("settled" in output for output in outputs) >= 1
    assert find_inconsistencies() == []
