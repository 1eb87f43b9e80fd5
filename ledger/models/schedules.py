"""Grant schedules: recurring allowances, granted once per period, with rollover.

A `Schedule` grants its customer `amount` credits at the start of each of its periods (see
`ledger.periods` for when they start). Period n's grant is a deposit under the idempotency key
`schedule:{schedule_id}:{n}`, so the ledger's own unique deposit keys make each period's grant
exactly once, whoever grants it. The schedule counts the periods it has granted
(`periods_granted`, from `first_period`, in order, never skipping one) and, with rollover, the
periods whose expiry has been rolled over (`periods_rolled`); both only ever grow, under the
customer's lock. `next_grant_at` and `next_rollover_at` are when the scheduler next has work on
it, indexed so that a pass reads only the schedules due.

`ScheduleTerms` holds what a schedule grants from one period on: an update adds terms from the
next period, so a period's grant always follows the terms of the period it belongs to.
"""

from decimal import Decimal
from functools import cached_property

from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now

from credits_project.sql import Columns
from customers.models import Customer, Project
from ledger.money import CreditAmountField
from ledger.periods import Calendar, calendar_of


class Schedule(models.Model):
    class Period(models.TextChoices):
        DAY = "day"
        WEEK = "week"
        MONTH = "month"
        YEAR = "year"

    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"
        CANCELED = "canceled"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="schedules")
    # The client's id, unique per project.
    schedule_id = models.CharField(max_length=255)
    wallet = models.CharField(max_length=64, default="default")
    source = models.CharField(max_length=64, default="schedule")
    period = models.CharField(max_length=8, choices=Period.choices)
    every = models.PositiveIntegerField(default=1)
    anchor = models.DateTimeField()
    timezone = models.CharField(max_length=64, default="UTC")
    ends_at = models.DateTimeField(null=True, blank=True)
    prorate_first_period = models.BooleanField(default=False)
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # The creating request's digest: a repeat of it replays, another body is a conflict.
    fingerprint = models.CharField(max_length=64)
    # The period the schedule was created in (or 0 when its anchor is later): none before it
    # is ever granted.
    first_period = models.PositiveIntegerField(default=0)
    periods_granted = models.PositiveIntegerField(default=0)
    periods_rolled = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    next_grant_at = models.DateTimeField(null=True, blank=True)
    next_rollover_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "schedule_id"], name="schedule_unique_id"),
            models.CheckConstraint(condition=Q(every__gte=1), name="schedule_every_positive"),
            models.CheckConstraint(
                condition=Q(period__in=["day", "week", "month", "year"]),
                name="schedule_known_period",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "ended", "canceled"]),
                name="schedule_known_status",
            ),
            models.CheckConstraint(
                condition=Q(periods_rolled__lte=F("periods_granted")),
                name="schedule_rolls_only_granted_periods",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("anchor")),
                name="schedule_ends_after_anchor",
            ),
            # Only an active schedule has grants to come.
            models.CheckConstraint(
                condition=Q(status="active") | Q(next_grant_at__isnull=True),
                name="schedule_grants_only_while_active",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_grant_at"],
                condition=Q(next_grant_at__isnull=False),
                name="schedule_grant_due",
            ),
            models.Index(
                fields=["next_rollover_at"],
                condition=Q(next_rollover_at__isnull=False),
                name="schedule_rollover_due",
            ),
        ]

    def __str__(self) -> str:
        return f"schedule {self.schedule_id} ({self.status})"

    @cached_property
    def calendar(self) -> Calendar:
        # The anchor, the period and the timezone never change once the schedule is made.
        return calendar_of(self.anchor, self.period, self.every, self.timezone)

    @property
    def next_period(self) -> int:
        """The first period not granted yet."""
        return self.first_period + self.periods_granted

    def grant_key(self, n: int) -> str:
        """The idempotency key of period `n`'s grant."""
        return f"schedule:{self.schedule_id}:{n}"

    def rollover_key(self, n: int) -> str:
        """The idempotency key of what period `n`'s grant rolls over into period n + 1."""
        return f"schedule:{self.schedule_id}:{n}:rollover"


class ScheduleTerms(models.Model):
    """What a schedule grants from `from_period` on, until terms from a later period."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="terms")
    from_period = models.PositiveIntegerField()
    amount = CreditAmountField()
    # A grant lasts this many periods from its own start; null: it never expires.
    expires_after_periods = models.PositiveIntegerField(null=True, blank=True)
    # At most one cap; none: nothing rolls over.
    rollover_max_amount = CreditAmountField(null=True, blank=True)
    rollover_max_percent = CreditAmountField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "schedule terms"
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "from_period"], name="schedule_terms_per_period"
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="schedule_terms_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(expires_after_periods__isnull=True) | Q(expires_after_periods__gte=1),
                name="schedule_terms_expiry_positive",
            ),
            models.CheckConstraint(
                condition=Q(rollover_max_amount__isnull=True)
                | Q(rollover_max_percent__isnull=True),
                name="schedule_terms_one_rollover_cap",
            ),
            models.CheckConstraint(
                condition=Q(rollover_max_amount__isnull=True) | Q(rollover_max_amount__gt=0),
                name="schedule_terms_rollover_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(rollover_max_percent__isnull=True)
                | Q(rollover_max_percent__gt=0, rollover_max_percent__lte=100),
                name="schedule_terms_rollover_percent_in_range",
            ),
            # Only credits that expire can roll over.
            models.CheckConstraint(
                condition=Q(rollover_max_amount__isnull=True, rollover_max_percent__isnull=True)
                | Q(expires_after_periods__isnull=False),
                name="schedule_terms_rollover_needs_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"terms of {self.schedule_id} from period {self.from_period}"

    @property
    def rolls_over(self) -> bool:
        return self.rollover_max_amount is not None or self.rollover_max_percent is not None

    @property
    def rollover(self) -> dict[str, Decimal] | None:
        if self.rollover_max_amount is not None:
            return {"max_amount": self.rollover_max_amount}
        if self.rollover_max_percent is not None:
            return {"max_percent": self.rollover_max_percent}
        return None


SCHEDULE = Columns(Schedule)
SCHEDULE_TERMS = Columns(ScheduleTerms)


def terms_for(terms: list[ScheduleTerms], n: int) -> ScheduleTerms:
    """The terms period `n` follows, of a schedule's `terms` in `from_period` order."""
    found = terms[0]
    for candidate in terms:
        if candidate.from_period <= n:
            found = candidate
    return found
