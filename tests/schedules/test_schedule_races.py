"""Several real scheduler processes, one of them killed with SIGKILL in the middle of its
work, and clients canceling and updating the very schedules they grant: every period is
granted once, none is skipped, every rollover is made once, and the ledger replays."""

import datetime as dt
import signal
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from ledger import services
from ledger.models import LedgerEntry, OperationType, Schedule
from ledger.selectors.consistency import check_ledger
from tests.ledger.test_scheduler_races import scheduler, stop, wait_for

SCHEDULES = 300
DAY = dt.timedelta(days=1)
BATCHES = {"SCHEDULER_BATCH_SIZE": "10"}
MISSED = 3  # periods started while no scheduler ran, on top of the one granted at creation


@pytest.mark.django_db(transaction=True)
def test_schedulers_killed_mid_run_and_racing_clients_never_grant_twice_or_skip(project):
    schedules_missing_periods(project, SCHEDULES, rollover={"max_amount": Decimal(3)})
    failures: list[BaseException] = []

    def clients(numbers: range) -> None:
        # Cancels and updates catch their schedule up first, as the scheduler would.
        try:
            for n in numbers:
                if n % 3 == 0:
                    services.cancel_schedule(project=project, schedule_id=f"s{n}", actor="c")
                elif n % 3 == 1:
                    services.update_schedule(
                        project=project, schedule_id=f"s{n}", actor="c", amount=Decimal(20)
                    )
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            connection.close()

    # Small batches, so that the kill comes between some and in the middle of another.
    first, second = scheduler(BATCHES), scheduler(BATCHES)
    survivors = [second]
    try:
        # Killed as soon as it has granted something: in the middle of its work.
        started = wait_for(
            lambda: LedgerEntry.objects.filter(
                operation_type=OperationType.GRANT, transaction_id__endswith=":1"
            ).exists(),
            60,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        left_at_kill = Schedule.objects.filter(next_grant_at__lte=timezone.now()).count()
        survivors.append(scheduler(BATCHES))
        threads = [threading.Thread(target=clients, args=(range(k, SCHEDULES, 2),)) for k in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        done = wait_for(
            lambda: (
                not Schedule.objects.filter(next_grant_at__lte=timezone.now()).exists()
                and not Schedule.objects.filter(next_rollover_at__lte=timezone.now()).exists()
            ),
            120,
        )
        alive = [process.poll() is None for process in survivors]
    finally:
        outputs = [stop(process) for process in survivors]

    assert started
    assert left_at_kill > 0  # the kill came in the middle of the work
    assert failures == []
    assert alive == [True, True], outputs
    assert done, outputs
    assert not any("Traceback" in output for output in outputs), outputs
    keys = Counter(
        LedgerEntry.objects.filter(
            operation_type=OperationType.GRANT, transaction_id__startswith="schedule:"
        ).values_list("transaction_id", flat=True)
    )
    expected = {f"schedule:s{n}:{p}" for n in range(SCHEDULES) for p in range(MISSED + 1)}
    expected |= {f"schedule:s{n}:{p}:rollover" for n in range(SCHEDULES) for p in range(MISSED)}
    assert set(keys) == expected
    assert set(keys.values()) == {1}
    assert Counter(Schedule.objects.values_list("periods_granted", flat=True)) == {
        MISSED + 1: SCHEDULES
    }
    assert check_ledger().problems == []


def schedules_missing_periods(project, count: int, **fields) -> None:
    """`count` daily schedules of 10 (customers c0, c1, ...; `fields` added) created MISSED
    days and an hour ago: each has MISSED periods started and not granted."""
    created = timezone.now() - MISSED * DAY - dt.timedelta(hours=1)
    for n in range(count):
        services.create_schedule(
            project=project,
            schedule_id=f"s{n}",
            customer_id=f"c{n}",
            amount=Decimal(10),
            period="day",
            actor="test",
            now=created,
            **fields,
        )


def grant_keys() -> Counter:
    return Counter(
        LedgerEntry.objects.filter(
            operation_type=OperationType.GRANT, transaction_id__startswith="schedule:"
        ).values_list("transaction_id", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_a_pass_of_two_workers_grants_every_started_period_once(project):
    schedules_missing_periods(project, 50)

    made = services.grant_due(batch_size=4, workers=2)

    assert made == 50 * MISSED
    keys = grant_keys()
    assert set(keys) == {f"schedule:s{n}:{p}" for n in range(50) for p in range(MISSED + 1)}
    assert set(keys.values()) == {1}
    assert not Schedule.objects.filter(next_grant_at__lte=timezone.now()).exists()
    assert check_ledger().problems == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_pass_leaves_a_customer_a_client_holds_to_the_next_one(project):
    schedules_missing_periods(project, 12)
    held = Customer.objects.get(project=project, external_id="c5")
    locked, release = threading.Event(), threading.Event()

    def client() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    holder = threading.Thread(target=client)
    holder.start()
    try:
        assert locked.wait(30)
        # The pass ends, every batch that claims the held customer passing it over.
        during = services.grant_due(batch_size=5, workers=2)
        granted_during = grant_keys()
    finally:
        release.set()
        holder.join(60)
    after = services.grant_due()

    assert during == 11 * MISSED
    assert not any(
        key.startswith("schedule:s5:") and key != "schedule:s5:0" for key in granted_during
    )
    assert after == MISSED
    keys = grant_keys()
    assert set(keys) == {f"schedule:s{n}:{p}" for n in range(12) for p in range(MISSED + 1)}
    assert set(keys.values()) == {1}
