"""Period arithmetic of grant schedules: pure, no database.

A schedule's periods are numbered from its anchor: period n starts at the anchor plus
n * `every` * `period`, counted on the calendar of the schedule's timezone, at the anchor's wall
time. Period n ends where period n + 1 starts. Calendar arithmetic, not fixed durations:

* a month or a year falling on a day its month lacks (the 29th to the 31st, 29 February) falls
  on that month's last day instead, always counted from the anchor's own day, so a schedule
  anchored on 31 January starts periods on 28 (or 29) February, then 31 March;
* a day is a calendar day of the timezone, so across a daylight-saving change it lasts 23 or 25
  hours and periods keep starting at the anchor's wall time. A wall time the change skips
  (02:30 on a spring-forward night) starts the period at the instant that wall time would have
  been read with the offset before the change (03:30 after it); a wall time that happens twice
  starts the period at its first occurrence.

Starts never decrease with n (they strictly increase unless a zone skipped a whole calendar
day, as Samoa did in 2011), so every instant from the anchor on lies in exactly one period.
"""

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

PERIODS = ("day", "week", "month", "year")
MICRO = Decimal("0.000001")
# Starts a calendar keeps, at most: calendars are shared (`calendar_of`), and a projection
# over years of a daily schedule asks for thousands.
MEMOIZED_STARTS = 64


def zone(name: str) -> ZoneInfo | None:
    """The IANA timezone named `name`, or None for a name that is not one."""
    if not isinstance(name, str) or name not in _zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


_ZONE_NAMES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    # Checked against the list rather than by opening a file named by the client.
    global _ZONE_NAMES
    if _ZONE_NAMES is None:
        _ZONE_NAMES = frozenset(available_timezones()) | {"UTC"}
    return _ZONE_NAMES


@dataclass(frozen=True)
class Calendar:
    """When the periods of one schedule start: its anchor (an aware instant), its period
    (`PERIODS`), how many of them make one (`every`) and the timezone they are counted in."""

    anchor: dt.datetime
    period: str
    every: int
    timezone: str
    # Starts already worked out: a grant asks for its period's start, its end (the next
    # start) and its expiry, and the scheduler asks again for the next period's start.
    _starts: dict[int, dt.datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"unknown period {self.period!r}")
        if self.every < 1:
            raise ValueError("every must be at least 1")
        if self.anchor.utcoffset() is None:
            raise ValueError("the anchor must be aware")
        if zone(self.timezone) is None:
            raise ValueError(f"unknown timezone {self.timezone!r}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def start(self, n: int) -> dt.datetime:
        """The instant period `n` starts (n ≥ 0), in UTC."""
        if n < 0:
            raise ValueError("periods are numbered from 0")
        try:
            return self._starts[n]
        except KeyError:
            start = self._start(n)
            if len(self._starts) < MEMOIZED_STARTS:
                self._starts[n] = start
            return start

    def _start(self, n: int) -> dt.datetime:
        if n == 0:
            return self.anchor.astimezone(dt.UTC)
        local = self.anchor.astimezone(self.zone)
        steps = n * self.every
        if self.period in ("day", "week"):
            date = local.date() + dt.timedelta(days=steps * (7 if self.period == "week" else 1))
        else:
            months = steps * (12 if self.period == "year" else 1)
            index = local.year * 12 + local.month - 1 + months
            year, month = divmod(index, 12)
            month += 1
            date = dt.date(year, month, min(local.day, calendar.monthrange(year, month)[1]))
        wall = dt.datetime.combine(date, local.time().replace(tzinfo=None, fold=0))
        return wall.replace(tzinfo=self.zone).astimezone(dt.UTC)

    def end(self, n: int) -> dt.datetime:
        """The instant period `n` ends: where period n + 1 starts."""
        return self.start(n + 1)

    def index_at(self, instant: dt.datetime) -> int:
        """The period `instant` lies in (its start ≤ instant < its end), or -1 before the
        anchor. An instant exactly at a boundary belongs to the period starting there."""
        if instant < self.anchor:
            return -1
        n = self._estimate(instant)
        while n > 0 and self.start(n) > instant:
            n -= 1
        while self.start(n + 1) <= instant:
            n += 1
        return n

    def _estimate(self, instant: dt.datetime) -> int:
        """A guess at `index_at` within a period or two, by plain division."""
        local, then = self.anchor.astimezone(self.zone), instant.astimezone(self.zone)
        if self.period in ("day", "week"):
            days = (then.date() - local.date()).days
            return max(0, days // (7 if self.period == "week" else 1) // self.every - 1)
        months = (then.year - local.year) * 12 + then.month - local.month
        if self.period == "year":
            months //= 12
        return max(0, months // self.every - 1)

    def valid_until(self, n: int, expires_after_periods: int | None) -> dt.datetime | None:
        """When period `n`'s grant expires: at the end of period n + `expires_after_periods`
        - 1, or never (None)."""
        if expires_after_periods is None:
            return None
        return self.end(n + expires_after_periods - 1)


@lru_cache(maxsize=4096)
def calendar_of(anchor: dt.datetime, period: str, every: int, timezone: str) -> Calendar:
    """The `Calendar` of these terms, one shared by every schedule on them: customers who
    reach a period start together mostly share their anchor (a plan's first of the month),
    so a scheduler's batch works each start out once rather than once a customer. (Equal
    instants give one calendar whatever their offsets: a calendar reads its anchor only as
    an instant.)"""
    return Calendar(anchor, period, every, timezone)


def prorated(amount: Decimal, start: dt.datetime, end: dt.datetime, since: dt.datetime) -> Decimal:
    """`amount` in proportion to the part of [start, end) left at `since`, rounded down to
    the micro-credit (all of it when `since` is at or before the start, none at the end)."""
    if since <= start:
        return amount
    if since >= end:
        return Decimal(0)
    # In whole micro-credits and microseconds: exact, whatever the decimal context.
    left = (end - since) // dt.timedelta(microseconds=1)
    whole = (end - start) // dt.timedelta(microseconds=1)
    return Decimal(int(amount / MICRO) * left // whole) * MICRO


def capped(
    remainder: Decimal,
    granted: Decimal,
    *,
    max_amount: Decimal | None,
    max_percent: Decimal | None,
) -> Decimal:
    """What of an expiring `remainder` rolls over: at most `max_amount`, or at most
    `max_percent` of what the period `granted`, rounded down to the micro-credit."""
    if max_amount is not None:
        return min(remainder, max_amount)
    if max_percent is not None:
        cap = (granted * max_percent / 100).quantize(
            MICRO, rounding=ROUND_DOWN
        )  # exact in 28 digits
        return min(remainder, cap)
    return Decimal(0)
