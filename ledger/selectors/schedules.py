"""Reads of grant schedules."""

from credits_project.errors import ScheduleNotFound
from customers.models import Project
from ledger.models import Schedule
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
    found = Schedule.objects.filter(customer=customer).prefetch_related("terms").order_by("id")
    return ScheduleList(
        customer_id=customer_id,
        schedules=[ScheduleResult.of(each, customer_id) for each in found],
    )
