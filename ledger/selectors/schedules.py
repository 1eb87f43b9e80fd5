"""Reads of grant schedules."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from credits_project.errors import ScheduleNotFound
from customers.models import Customer, Project
from ledger.models import Schedule
from ledger.models.schedules import terms_for
from ledger.results import ScheduleList, ScheduleResult
from ledger.selectors.ledger_pages import customer_of


def schedule(project: Project, schedule_id: str) -> ScheduleResult:
    """The schedule `schedule_id`; `ScheduleNotFound` when the project has none."""
    found = (
        Schedule.objects.filter(project=project, schedule_id=schedule_id)
        .select_related("customer")
        .prefetch_related("terms")
        .first()
    )
    if found is None:
        raise ScheduleNotFound({"schedule_id": schedule_id})
    return ScheduleResult.of(found, found.customer.external_id)


def customer_schedules(project: Project, customer_id: str) -> ScheduleList:
    """The customer's schedules, oldest first; `CustomerNotFound` for an unknown customer."""
    customer = customer_of(project, customer_id)
    customer.external_id = customer_id
    return ScheduleList(customer_id=customer_id, schedules=schedules_of(customer))


def active_schedules(customer: Customer) -> list[Schedule]:
    """The customer's schedules that still grant (not canceled), oldest first."""
    return list(
        Schedule.objects.filter(
            customer=customer, status=Schedule.Status.ACTIVE, canceled_at__isnull=True
        ).order_by("id")
    )


def schedules_of(customer: Customer) -> list[ScheduleResult]:
    """All the customer's schedules, oldest first, as the API answers them."""
    found = Schedule.objects.filter(customer=customer).prefetch_related("terms").order_by("id")
    return [ScheduleResult.of(each, customer.external_id) for each in found]


def scheduled_by_wallet(
    project: Project, *, at: dt.datetime, days: int = 30
) -> list[tuple[str, Decimal]]:
    """Per wallet, what the project's schedules will grant in the `days` after `at` (each
    period starting then, on its terms; rollovers not counted), summed exactly."""
    until = at + dt.timedelta(days=days)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    schedules = (
        Schedule.objects.filter(project=project, status=Schedule.Status.ACTIVE)
        .prefetch_related("terms")
        .order_by("id")
    )
    for schedule in schedules.iterator(chunk_size=2000):
        terms = sorted(schedule.terms.all(), key=lambda t: t.from_period)
        calendar = schedule.calendar
        n = schedule.next_period
        while (start := calendar.start(n)) <= until:
            if schedule.ends_at is not None and start >= schedule.ends_at:
                break
            if start > at:
                sums[schedule.wallet] += terms_for(terms, n).amount
            n += 1
    return sorted(sums.items())
