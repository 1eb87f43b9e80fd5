"""Grant schedules through their services, with the clock driven: grants per period, catch-up,
validity windows, proration, updates from the next period, cancels and ends, webhooks."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from credits_project.errors import ScheduleNotActive
from ledger import services
from ledger.models import CreditAccount, LedgerEntry, Schedule, WebhookEndpoint, WebhookEvent
from ledger.selectors.consistency import check_ledger
from tests.ledger.support import run_scheduler_once

T0 = dt.datetime(2027, 1, 31, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def create(project, schedule_id="gold", now=T0, **fields):
    fields = {"customer_id": "c1", "amount": Decimal(100), "period": "month", **fields}
    return services.create_schedule(
        project=project, schedule_id=schedule_id, actor="test", now=now, **fields
    )


def grants(schedule_id="gold") -> list[tuple[str, Decimal, dt.datetime, dt.datetime | None]]:
    return [
        (a.transaction_id, a.amount, a.account.starts_at, a.account.expires_at)
        for a in LedgerEntry.objects.filter(
            operation_type="GRANT", transaction_id__startswith=f"schedule:{schedule_id}:"
        )
        .select_related("account")
        .order_by("id")
    ]


@pytest.mark.django_db
def test_an_update_twice_in_one_period_replaces_the_terms_it_set(project):
    create(project, rollover={"max_amount": Decimal(5)})

    update(project, T0 + DAY, amount=Decimal(7))
    result = update(project, T0 + DAY, rollover={})

    assert (result.amount, result.rollover) == (7, None)


def calendar_of(schedule_id="gold"):
    return Schedule.objects.get(schedule_id=schedule_id).calendar


def run(now):
    made = services.grant_due(now=now)
    services.expire_due(now=now)
    return made


def available(customer_id="c1") -> Decimal:
    return sum(
        (
            a.available
            for a in CreditAccount.objects.filter(
                customer__external_id=customer_id, expiry_recorded_at__isnull=True
            )
        ),
        Decimal(0),
    )


def update(project, now, **fields):
    return services.update_schedule(
        project=project, schedule_id="gold", actor="test", now=now, **fields
    )


def deduct(project, amount, transaction_id, now):
    services.deduct(
        project=project,
        customer_id="c1",
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor="test",
        now=now,
    )


def endpoint(project):
    WebhookEndpoint.objects.create(project=project, url="http://127.0.0.1:9/hooks")


def events(type_):
    return [e.payload["data"] for e in WebhookEvent.objects.filter(type=type_).order_by("id")]


@pytest.mark.django_db
def test_the_scheduler_grants_each_period_once_exactly_at_its_start(project):
    create(project)
    calendar = calendar_of()

    assert run(calendar.start(1) - dt.timedelta(microseconds=1)) == 0
    assert run(calendar.start(1)) == 1
    assert run(calendar.start(1)) == 0
    assert run(calendar.start(1) + DAY) == 0

    assert grants() == [
        ("schedule:gold:0", 100, T0, calendar.start(1)),
        ("schedule:gold:1", 100, calendar.start(1), calendar.start(2)),
    ]
    assert calendar.start(1) == dt.datetime(2027, 2, 28, 9, tzinfo=dt.UTC)
    schedule = Schedule.objects.get()
    assert (schedule.periods_granted, schedule.next_grant_at) == (2, calendar.start(2))
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_after_three_missed_periods_the_scheduler_grants_each_with_its_own_window(project):
    """A period whose whole window passed while the scheduler was down is still granted, with
    its own window: its credits are recorded as expired at once."""
    create(project)
    calendar = calendar_of()

    assert run(calendar.start(3) + DAY) == 3

    assert grants() == [
        (f"schedule:gold:{n}", 100, calendar.start(n), calendar.start(n + 1)) for n in range(4)
    ]
    expired = LedgerEntry.objects.filter(operation_type="EXPIRE").order_by("id")
    assert [(e.transaction_id, e.amount) for e in expired] == [(None, 100)] * 3
    assert available() == 100
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_grants_last_expires_after_periods_or_never(project):
    create(project, "two", expires_after_periods=2)
    create(project, "never", expires_after_periods=None)
    two = calendar_of("two")

    run(two.start(1))

    assert [g[3] for g in grants("two")] == [two.start(2), two.start(3)]
    assert [g[3] for g in grants("never")] == [None, None]
    assert available() == 400


@pytest.mark.django_db
def test_a_first_period_already_started_is_prorated_down_to_the_micro_credit(project):
    anchor = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    created = dt.datetime(2027, 1, 11, tzinfo=dt.UTC)  # 21 of January's 31 days left

    result = create(project, anchor=anchor, prorate_first_period=True, now=created)
    create(project, "full", anchor=anchor, now=created)

    assert result.periods_granted == 1
    assert grants()[0][1] == Decimal("67.741935")
    assert grants("full")[0][1] == 100
    run(dt.datetime(2027, 2, 1, tzinfo=dt.UTC))
    assert grants()[1][1] == 100  # later periods are whole


@pytest.mark.django_db
def test_an_anchor_in_the_future_grants_nothing_until_it_comes(project):
    anchor = T0 + 10 * DAY
    result = create(project, anchor=anchor)

    assert (result.periods_granted, result.next_grant_at) == (0, anchor)
    assert run(anchor - DAY) == 0
    assert run(anchor) == 1


@pytest.mark.django_db
def test_an_update_takes_effect_from_the_next_period(project):
    create(project)
    calendar = calendar_of()
    update(project, T0 + DAY, amount=Decimal(250), expires_after_periods=3)

    run(calendar.start(2))

    assert grants() == [
        ("schedule:gold:0", 100, T0, calendar.start(1)),
        ("schedule:gold:1", 250, calendar.start(1), calendar.start(4)),
        ("schedule:gold:2", 250, calendar.start(2), calendar.start(5)),
    ]


@pytest.mark.django_db
def test_an_update_after_a_missed_start_grants_that_period_on_its_old_terms(project):
    create(project)
    calendar = calendar_of()

    update(project, calendar.start(1) + DAY, amount=Decimal(7))  # period 1 not granted yet
    run(calendar.start(2))

    assert [g[1] for g in grants()] == [100, 100, 7]


@pytest.mark.django_db
def test_cancel_now_grants_nothing_more_and_sends_schedule_ended(project):
    endpoint(project)
    create(project)
    calendar = calendar_of()

    result = services.cancel_schedule(
        project=project, schedule_id="gold", actor="test", now=T0 + DAY
    )
    run(calendar.start(3))

    assert (result.status, result.canceled_at, result.next_grant_at) == (
        "canceled",
        T0 + DAY,
        None,
    )
    assert len(grants()) == 1
    assert events("schedule.ended") == [
        {
            "schedule_id": "gold",
            "status": "canceled",
            "periods_granted": 1,
            "ends_at": None,
            "canceled_at": "2027-02-01T09:00:00.000Z",
        }
    ]
    assert len(events("credits.deposited")) == 1


@pytest.mark.django_db
def test_cancel_at_period_end_grants_the_current_period_only_and_ends_at_its_end(project):
    endpoint(project)
    create(project)
    calendar = calendar_of()

    services.cancel_schedule(
        project=project, schedule_id="gold", actor="test", at="period_end", now=T0 + DAY
    )
    assert Schedule.objects.get().status == "active"
    run(calendar.start(1) - DAY)
    assert Schedule.objects.get().status == "active"
    run(calendar.start(1))

    schedule = Schedule.objects.get()
    assert (schedule.status, schedule.ends_at, schedule.next_grant_at) == (
        "canceled",
        calendar.start(1),
        None,
    )
    assert len(grants()) == 1
    assert [e["status"] for e in events("schedule.ended")] == ["canceled"]


@pytest.mark.django_db
def test_a_schedule_ends_once_its_last_period_started_before_ends_at(project):
    endpoint(project)
    create(project, ends_at=T0 + 40 * DAY)  # periods 0 and 1 start before it
    calendar = calendar_of()

    run(calendar.start(2))

    schedule = Schedule.objects.get()
    assert (schedule.status, schedule.periods_granted) == ("ended", 2)
    assert [e["status"] for e in events("schedule.ended")] == ["ended"]
    with pytest.raises(ScheduleNotActive):
        services.cancel_schedule(project=project, schedule_id="gold", actor="t", now=T0 + 90 * DAY)


@pytest.mark.django_db
def test_each_grant_sends_credits_deposited(project):
    endpoint(project)
    create(project)

    run(calendar_of().start(2))

    assert sorted(e["idempotency_key"] for e in events("credits.deposited")) == [
        "schedule:gold:0",
        "schedule:gold:1",
        "schedule:gold:2",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_command_grants_what_is_due(project):
    anchor = timezone.now() - dt.timedelta(seconds=1)
    create(project, period="day", anchor=anchor - DAY, now=anchor - DAY)

    finished = run_scheduler_once()

    assert finished.returncode == 0, finished.stderr
    assert [g[0] for g in grants()] == ["schedule:gold:0", "schedule:gold:1"]


# --- rollover ------------------------------------------------------------------------------


def rollovers() -> list[tuple[str, Decimal, dt.datetime, dt.datetime | None]]:
    return [(g[0], g[1], g[2], g[3]) for g in grants() if g[0].endswith(":rollover")]


@pytest.mark.parametrize(
    ("rollover", "spent", "moved"),
    [
        ({"max_amount": Decimal(30)}, 50, 30),
        ({"max_amount": Decimal(30)}, 90, 10),
        ({"max_amount": Decimal(30)}, 100, None),
        ({"max_percent": Decimal("12.5")}, 0, Decimal("12.5")),
    ],
)
@pytest.mark.django_db
def test_what_an_expiring_grant_leaves_rolls_over_up_to_the_cap(project, rollover, spent, moved):
    create(project, rollover=rollover)
    calendar = calendar_of()
    if spent:
        deduct(project, spent, "use", T0 + DAY)

    run(calendar.start(1))

    expected = (
        []
        if moved is None
        else [("schedule:gold:0:rollover", moved, calendar.start(1), calendar.start(2))]
    )
    assert rollovers() == expected
    assert available() == 100 + (moved or 0)
    expired = LedgerEntry.objects.filter(operation_type="EXPIRE").values_list("amount", flat=True)
    assert list(expired) == ([100 - spent] if spent < 100 else [])
    rolled = LedgerEntry.objects.filter(business_type="ROLLOVER")
    assert [e.operation_type for e in rolled] == ([] if moved is None else ["GRANT"])
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_a_rollover_carries_on_with_its_period_and_each_is_made_once(project):
    create(project, rollover={"max_amount": Decimal(150)})
    calendar = calendar_of()

    run(calendar.start(1))
    run(calendar.start(1))
    deduct(project, 20, "use", calendar.start(1) + DAY)
    run(calendar.start(2))
    run(calendar.start(2))

    # Period 1 left 100 + 100 - 20 = 180 (its grant and what period 0 carried): capped at 150.
    assert [(key, amount) for key, amount, *_ in rollovers()] == [
        ("schedule:gold:0:rollover", 100),
        ("schedule:gold:1:rollover", 150),
    ]
    assert available() == 100 + 150
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_a_rollover_is_the_same_whether_the_expiry_pass_ran_first(project):
    create(project, rollover={"max_amount": Decimal(30)})
    calendar = calendar_of()
    deduct(project, 50, "use", T0 + DAY)

    services.expire_due(now=calendar.start(1))
    services.grant_due(now=calendar.start(1))

    assert [(k, a) for k, a, *_ in rollovers()] == [("schedule:gold:0:rollover", 30)]
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_catching_up_rolls_each_missed_period_over_in_turn(project):
    create(project, rollover={"max_amount": Decimal(40)})
    calendar = calendar_of()

    run(calendar.start(3) + DAY)

    assert rollovers() == [
        (f"schedule:gold:{n}:rollover", 40, calendar.start(n + 1), calendar.start(n + 2))
        for n in range(3)
    ]
    assert available() == 140
    assert check_ledger().problems == []


@pytest.mark.django_db
def test_the_last_period_of_an_ended_schedule_rolls_nothing_over(project):
    create(project, rollover={"max_amount": Decimal(40)}, ends_at=T0 + DAY)
    calendar = calendar_of()

    run(calendar.start(2))

    assert rollovers() == []
    assert available() == 0
    assert Schedule.objects.get().status == "ended"


@pytest.mark.django_db
def test_check_ledger_finds_a_schedule_whose_counters_disagree_with_its_grants(project):
    create(project, rollover={"max_amount": Decimal(40)})
    run(calendar_of().start(1))
    Schedule.objects.update(periods_granted=3)

    assert check_ledger().problems == ["schedule gold: period 2 counts as granted but has no grant"]
    Schedule.objects.update(periods_granted=1, periods_rolled=0)
    assert check_ledger().problems == [
        "schedule gold: period 1 is granted but not counted",
        "schedule gold: period 0 rolled over but does not count as rolled over",
    ]


@pytest.mark.django_db
def test_a_grant_the_ledger_refuses_leaves_out_that_schedule_only(project):
    for schedule_id, customer_id in (("gold", "c1"), ("silver", "c2"), ("bronze", "c3")):
        create(project, schedule_id, customer_id=customer_id)
    start = calendar_of().start(1)
    # A client took silver's next deposit key: its grant breaks the unique receipt, and
    # with it the batch the three customers are granted in.
    services.deposit(
        project=project,
        customer_id="c2",
        amount=Decimal(1),
        actor="client",
        idempotency_key="schedule:silver:1",
    )

    assert services.grant_due(now=start) == 2

    assert [key for key, *_ in grants("gold")] == ["schedule:gold:0", "schedule:gold:1"]
    assert [key for key, *_ in grants("bronze")] == ["schedule:bronze:0", "schedule:bronze:1"]
    silver = Schedule.objects.get(schedule_id="silver")
    assert (silver.periods_granted, silver.next_grant_at) == (1, start)


@pytest.mark.postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("customers", [60, 120])
def test_a_batch_runs_as_many_statements_however_many_schedules_it_grants(project, customers):
    # From 50 rows on every write of a batch is one statement, whatever its size, and the
    # batch reads nothing row by row (a field the claim defers would be read so).
    for n in range(customers):
        create(project, f"s{n}", customer_id=f"c{n}")
    start = calendar_of("s0").start(1)

    with CaptureQueriesContext(connection) as queries:
        made = services.grant_due(now=start)

    assert made == customers
    assert len(queries) == STATEMENTS_OF_A_BATCH, "\n".join(q["sql"][:70] for q in queries)


# The batch: its two claims (grants, then rollovers due), the projects, the terms, the
# webhook endpoints, the plan's new accounts, the rest of the plan; then the two claims that
# find nothing more; a savepoint and its release around each.
STATEMENTS_OF_A_BATCH = 13
