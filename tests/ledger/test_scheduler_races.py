"""The scheduler meets work that someone else finished between its listing a customer and
locking it: a second scheduler, or a client whose settlement returns credits to an account
already past its expiry. It does nothing then, and a pass that fails never ends the loop."""

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.selectors.consistency import find_inconsistencies
from ledger.services import expire_due, freeze, unfreeze
from ledger.services.scheduled import customers_with_expiry_due, expire_customer
from tests.ledger.support import ACTOR, T0, entries, grant, hold
from tests.server import ROOT, shared_database_url

HOUR = dt.timedelta(hours=1)


@pytest.mark.django_db
def test_expiry_a_second_scheduler_recorded_after_the_listing_is_left_alone(project):
    account = grant(project, 10, expires_at=T0 + HOUR)
    listed = customers_with_expiry_due(T0 + 2 * HOUR)
    expire_due(now=T0 + 2 * HOUR)  # the other scheduler, first to the lock

    recorded = [expire_customer(customer_pk, T0 + 2 * HOUR) for customer_pk in listed]

    assert recorded == [0]
    assert [(e[0], e[1], e[2]) for e in entries("EXPIRE")] == [(int(account), "EXPIRE", 10)]
    assert find_inconsistencies() == []


@pytest.mark.django_db
def test_expiry_a_client_unfreeze_recorded_after_the_listing_is_left_alone(project):
    account = grant(project, 10, expires_at=T0 + HOUR)
    hold(project, "job", 6)
    listed = customers_with_expiry_due(T0 + 2 * HOUR)
    # The client's unfreeze returns credits to the expired account and records its expiry.
    unfreeze(project=project, transaction_id="job", actor=ACTOR, now=T0 + 2 * HOUR)

    recorded = [expire_customer(customer_pk, T0 + 2 * HOUR) for customer_pk in listed]

    assert recorded == [0]
    assert [(e[1], e[2], e[6]) for e in entries("EXPIRE", "UNFREEZE")] == [
        ("UNFREEZE", Decimal(6), ACTOR),
        ("EXPIRE", Decimal(10), ACTOR),
    ]
    assert CreditAccount.objects.get(pk=account).expiry_recorded_at == T0 + 2 * HOUR
    assert find_inconsistencies() == []


# --- the command ---------------------------------------------------------------------------


def scheduler(env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": shared_database_url(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output = process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    return output


def wait_for(condition, seconds: float) -> bool:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class DatabaseHeld:
    """Holds the tables the scheduler writes from another connection, so that its passes
    fail (SQLite: the database's write lock; PostgreSQL: an exclusive table lock, which the
    scheduler's `lock_timeout` gives up on) until `release`."""

    def __init__(self):
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            self.connection = sqlite3.connect(db["NAME"], isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")
        else:
            self.connection = psycopg.connect(
                host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
            )
            self.connection.execute("LOCK TABLE customers_customer IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def failing_database_env() -> dict[str, str]:
    """The scheduler's database gives up on a held lock within a second."""
    if connection.vendor == "sqlite":
        return {"SQLITE_BUSY_TIMEOUT_SECONDS": "1"}
    return {"DATABASE_URL": shared_database_url() + "?options=-c%20lock_timeout%3D1000"}


@pytest.mark.django_db(transaction=True)
def test_a_pass_that_fails_is_logged_and_the_next_pass_runs(project):
    now = timezone.now()
    account = grant(project, 10, expires_at=now + dt.timedelta(seconds=1), now=now - HOUR)
    held = DatabaseHeld()
    process = scheduler(failing_database_env())
    try:
        time.sleep(4)  # the expiry falls due while the database is held: passes fail
        held.release()
        recorded = wait_for(
            lambda: CreditAccount.objects.get(pk=account).expiry_recorded_at is not None, 30
        )
        alive = process.poll() is None
    finally:
        output = stop(process)

    assert alive, output
    assert recorded, output
    assert "scheduler pass failed" in output
    assert [(e[0], e[1], e[2]) for e in entries("EXPIRE")] == [(int(account), "EXPIRE", 10)]


CUSTOMERS = 200


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_expire_hundreds_of_customers_while_clients_release_freezes(project):
    """Credits fall due while two scheduler processes run passes back to back and clients
    unfreeze freezes on those very accounts: every expiry is recorded once, both schedulers
    outlive it, and the ledger replays to the accounts."""
    now = timezone.now()
    expires_at = now + dt.timedelta(seconds=5)
    accounts = {}
    for n in range(CUSTOMERS):
        customer_id = f"c{n}"
        accounts[customer_id] = grant(
            project, 10, customer_id=customer_id, expires_at=expires_at, now=now - HOUR
        )
        freeze(
            project=project,
            customer_id=customer_id,
            transaction_id=f"job-{n}",
            amount=Decimal(4),
            actor=ACTOR,
            now=now,  # before the expiry, however long setting up takes
        )
    schedulers = [scheduler(), scheduler()]
    failures: list[BaseException] = []

    def release(numbers: range) -> None:
        try:
            for n in numbers:
                unfreeze(project=project, transaction_id=f"job-{n}", actor=ACTOR)
                time.sleep(0.02)
        except BaseException as error:  # reported below, with the schedulers' output
            failures.append(error)
        finally:
            connection.close()

    try:
        # Releases start before the expiry and go on past it, from two clients.
        half = CUSTOMERS // 2
        clients = [
            threading.Thread(target=release, args=(range(0, half),)),
            threading.Thread(target=release, args=(range(half, CUSTOMERS),)),
        ]
        time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds() - 1.5))
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=120)
        done = wait_for(
            lambda: (
                not CreditAccount.objects.filter(
                    pk__in=accounts.values(), expiry_recorded_at=None
                ).exists()
            ),
            60,
        )
        alive = [process.poll() is None for process in schedulers]
    finally:
        outputs = [stop(process) for process in schedulers]

    assert failures == []
    assert alive == [True, True], outputs
    assert done, outputs
    assert not any("Traceback" in output for output in outputs), outputs
    assert not Transaction.objects.filter(state=Transaction.State.FROZEN).exists()
    for customer_id, account_id in accounts.items():
        expired = LedgerEntry.objects.filter(
            account_id=account_id, operation_type=OperationType.EXPIRE
        )
        # The remainder (10 - 4) and the returned 4, whichever came first: 10 in all.
        assert sum(e.amount for e in expired) == 10, customer_id
    assert find_inconsistencies() == []
