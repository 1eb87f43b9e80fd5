"""Several real scheduler processes, one of them killed with SIGKILL in the middle of its
work, and clients canceling and updating the very schedules they grant: every period is
granted once, none is skipped, every rollover is made once, and the ledger replays."""

import datetime as dt
import signal
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

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
    now = timezone.now()
    created = now - MISSED * DAY - dt.timedelta(hours=1)
    for n in range(SCHEDULES):
        services.create_schedule(
            project=project,
            schedule_id=f"s{n}",
            customer_id=f"c{n}",
            amount=Decimal(10),
            period="day",
            rollover={"max_amount": Decimal(3)},
            actor="test",
            now=created,
        )
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
