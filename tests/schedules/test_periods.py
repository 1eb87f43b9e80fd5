"""The period arithmetic of schedules (`ledger.periods`), over anchors, periods, `every` and
timezones (month ends, 29 February, daylight-saving changes), and instants exactly at a period's
boundary."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.periods import PERIODS, Calendar, capped, prorated, zone

# Zones with daylight saving (northern and southern, a 30-minute one), odd offsets, none.
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
]
US = dt.timedelta(microseconds=1)

# Anchors biased towards month ends, 29 February and the small hours that DST changes hit.
anchors = st.builds(
    lambda year, month, day, hour, minute, name: local_instant(
        year, month, day, hour, minute, name
    ),
    st.integers(1990, 2060),
    st.integers(1, 12),
    st.sampled_from([1, 15, 28, 29, 30, 31]),
    st.sampled_from([0, 1, 2, 3, 12, 23]),
    st.sampled_from([0, 30, 59]),
    st.sampled_from(ZONES),
)


def local_instant(year, month, day, hour, minute, name) -> dt.datetime:
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.datetime(year, month, min(day, last), hour, minute, tzinfo=ZoneInfo(name))


calendars = st.builds(
    Calendar,
    anchor=anchors,
    period=st.sampled_from(PERIODS),
    every=st.integers(1, 4),
    timezone=st.sampled_from(ZONES),
)


@given(calendars, st.integers(0, 60))
def test_starts_increase_and_each_boundary_belongs_to_the_period_starting_there(calendar, n):
    start, end = calendar.start(n), calendar.end(n)

    assert start < end
    assert calendar.index_at(start) == n
    assert calendar.index_at(end - US) == n
    assert calendar.index_at(start - US) == n - 1
    assert calendar.index_at(end) == n + 1


@given(calendars, st.integers(0, 60))
def test_periods_keep_the_anchors_wall_time_and_day_in_its_timezone(calendar, n):
    local = calendar.anchor.astimezone(calendar.zone)
    start = calendar.start(n).astimezone(calendar.zone)
    wall = dt.datetime.combine(start.date(), local.time().replace(tzinfo=None))
    # The wall time, unless a daylight-saving change skipped it that day (then it is read
    # with the offset before the change).
    assert start.replace(tzinfo=None) == wall or (
        wall.replace(tzinfo=calendar.zone).astimezone(dt.UTC) == start.astimezone(dt.UTC)
    )
    steps = n * calendar.every
    if calendar.period == "day":
        assert start.date() == local.date() + dt.timedelta(days=steps)
    elif calendar.period == "week":
        assert start.date() == local.date() + dt.timedelta(weeks=steps)
    else:
        months = steps * (12 if calendar.period == "year" else 1)
        index = local.year * 12 + local.month - 1 + months
        assert (start.year, start.month) == (index // 12, index % 12 + 1)
        # The anchor's day, or the month's last day when it has fewer.
        next_month = start.replace(day=1) + dt.timedelta(days=32)
        last_day = (next_month.replace(day=1) - dt.timedelta(days=1)).day
        assert start.day == min(local.day, last_day)


@given(calendars, st.datetimes(dt.datetime(1989, 1, 1), dt.datetime(2070, 1, 1)))
def test_every_instant_from_the_anchor_lies_in_exactly_one_period(calendar, naive):
    instant = naive.replace(tzinfo=dt.UTC)
    n = calendar.index_at(instant)

    if instant < calendar.anchor:
        assert n == -1
    else:
        assert calendar.start(n) <= instant < calendar.end(n)


@given(
    calendars,
    st.lists(st.integers(0, 3 * 366 * 24 * 3600), min_size=1, max_size=8),
    st.integers(1, 3),
)
def test_a_scheduler_running_at_any_times_grants_each_started_period_once(
    calendar, offsets, expires_after
):
    """A scheduler that, at each of its runs, grants every period started and not yet granted,
    grants each period once, in order, and by its last run every period started by then."""
    granted: list[int] = []
    runs = sorted(calendar.anchor + dt.timedelta(seconds=s) for s in offsets)
    for run in runs:
        started = calendar.index_at(run) + 1
        granted.extend(range(len(granted), started))

    assert granted == list(range(calendar.index_at(runs[-1]) + 1))
    for n in granted:
        # Each grant is valid from its period's start to the end of its last period.
        until = calendar.valid_until(n, expires_after)
        assert until == calendar.start(n + expires_after)
        assert calendar.start(n) < until


def test_month_ends_fall_on_the_last_day_of_shorter_months_counted_from_the_anchor():
    calendar = Calendar(dt.datetime(2027, 1, 31, 9, tzinfo=dt.UTC), "month", 1, "UTC")

    days = [calendar.start(n).date() for n in range(4)]

    assert days == [
        dt.date(2027, 1, 31),
        dt.date(2027, 2, 28),
        dt.date(2027, 3, 31),
        dt.date(2027, 4, 30),
    ]


def test_a_yearly_schedule_from_29_february_falls_on_28_february_then_29_again():
    calendar = Calendar(dt.datetime(2028, 2, 29, tzinfo=dt.UTC), "year", 1, "UTC")

    assert [calendar.start(n).date() for n in (1, 4)] == [
        dt.date(2029, 2, 28),
        dt.date(2032, 2, 29),
    ]


def test_daily_periods_across_daylight_saving_keep_the_wall_time():
    new_york = ZoneInfo("America/New_York")
    anchor = dt.datetime(2027, 3, 13, 9, tzinfo=new_york)  # the day before spring forward
    calendar = Calendar(anchor, "day", 1, "America/New_York")

    assert calendar.end(0) - calendar.start(0) == dt.timedelta(hours=23)
    assert calendar.start(1).astimezone(new_york).hour == 9
    autumn = Calendar(dt.datetime(2027, 11, 6, 9, tzinfo=new_york), "day", 1, "America/New_York")
    assert autumn.end(0) - autumn.start(0) == dt.timedelta(hours=25)


def test_a_wall_time_the_change_skips_starts_at_the_instant_after_the_gap():
    new_york = ZoneInfo("America/New_York")
    calendar = Calendar(dt.datetime(2027, 3, 13, 2, 30, tzinfo=new_york), "day", 1, new_york.key)

    assert calendar.start(1) == dt.datetime(2027, 3, 14, 7, 30, tzinfo=dt.UTC)  # 03:30 EDT
    assert calendar.start(2) == dt.datetime(2027, 3, 15, 6, 30, tzinfo=dt.UTC)  # 02:30 EDT


def test_monthly_periods_in_a_timezone_start_at_local_midnight():
    tokyo = ZoneInfo("Asia/Tokyo")
    calendar = Calendar(dt.datetime(2027, 1, 1, tzinfo=tokyo), "month", 1, "Asia/Tokyo")

    assert calendar.start(1) == dt.datetime(2027, 1, 31, 15, tzinfo=dt.UTC)


def test_a_grant_that_never_expires_has_no_end():
    calendar = Calendar(dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "week", 2, "UTC")

    assert calendar.valid_until(3, None) is None
    assert calendar.valid_until(3, 2) == dt.datetime(2027, 3, 12, tzinfo=dt.UTC)  # 10 weeks


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "utc "])
def test_unknown_timezones_are_none(name):
    assert zone(name) is None


def test_proration_is_rounded_down_to_the_micro_credit():
    start = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=3)

    assert prorated(Decimal(100), start, end, start + dt.timedelta(days=1)) == Decimal("66.666666")
    assert prorated(Decimal(100), start, end, start) == 100
    assert prorated(Decimal(100), start, end, end) == 0
    assert prorated(Decimal("0.000001"), start, end, start + US) == 0


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**12), places=6),
    st.integers(1, 10**12),
    st.integers(0, 10**12),
)
def test_proration_never_grants_more_than_its_share(amount, whole, left):
    left = min(left, whole)
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    end = start + whole * US
    share = prorated(amount, start, end, end - left * US)

    assert share * whole <= amount * left < (share + Decimal("0.000001")) * whole
    assert share == share.quantize(Decimal("0.000001"))


def test_rollover_caps():
    assert capped(Decimal(300), Decimal(1000), max_amount=Decimal(200), max_percent=None) == 200
    assert capped(Decimal(100), Decimal(1000), max_amount=Decimal(200), max_percent=None) == 100
    assert capped(Decimal(300), Decimal(333), max_amount=None, max_percent=Decimal(50)) == Decimal(
        "166.5"
    )
    assert capped(Decimal(1), Decimal("0.000003"), max_amount=None, max_percent=Decimal(50)) == (
        Decimal("0.000001")
    )
    assert capped(Decimal(5), Decimal(5), max_amount=None, max_percent=None) == 0
