"""Reads of a customer's entitlements, with validity judged at the instant of the read."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from credits_project.errors import EntitlementCustomerNotFound
from customers.models import Customer, Project
from ledger.models import Entitlement, EntitlementEvent
from ledger.results import (
    EntitlementEventItem,
    EntitlementEventPage,
    EntitlementItem,
    EntitlementList,
    EntitlementRead,
    EntitlementView,
)
from ledger.selectors.ledger_pages import customer_of, event_page


def entitlement_customer(project: Project, customer_id: str) -> Customer:
    return customer_of(project, customer_id, missing=EntitlementCustomerNotFound)


def entitlement_of(
    project: Project, customer_id: str, feature_key: str, *, at: dt.datetime | None = None
) -> EntitlementRead:
    """The customer's entitlement `feature_key` if it is active now (started and not
    expired); `{"entitlement": null}` when unset, expired or not started yet."""
    at = at or timezone.now()
    found = Entitlement.objects.filter(
        customer=entitlement_customer(project, customer_id), feature_key=feature_key
    ).first()
    if found is None or not found.is_active_at(at):
        return EntitlementRead(entitlement=None)
    return EntitlementRead(entitlement=EntitlementView(**EntitlementView.fields_of(found)))


def entitlements_of(
    project: Project,
    customer_id: str,
    *,
    feature_keys: tuple[str, ...] = (),
    include_expired: bool = False,
    at: dt.datetime | None = None,
) -> EntitlementList:
    """The customer's entitlements (of `feature_keys` only, when given), by feature key, each
    with whether it is active now. One not started yet is listed (inactive); an expired one
    only with `include_expired`."""
    at = at or timezone.now()
    found = Entitlement.objects.filter(customer=entitlement_customer(project, customer_id))
    if feature_keys:
        found = found.filter(feature_key__in=feature_keys)
    return EntitlementList(
        items=[
            EntitlementItem(**EntitlementView.fields_of(e), is_active=e.is_active_at(at))
            for e in found.order_by("feature_key")
            if include_expired or not e.has_expired_at(at)
        ]
    )


@dataclass(frozen=True)
class EntitlementEventQuery:
    customer: Customer
    limit: int = 20
    cursor: str | None = None
    feature_key: str | None = None
    types: tuple[str, ...] = ()
    from_at: dt.datetime | None = None
    to_at: dt.datetime | None = None

    def filters(self) -> list[Any]:
        """What a cursor is bound to (tagged: never another walk's cursor)."""
        return [
            "entitlement",
            self.customer.pk,
            self.feature_key,
            list(self.types),
            self.from_at.isoformat() if self.from_at else None,
            self.to_at.isoformat() if self.to_at else None,
        ]


def entitlement_event_page(query: EntitlementEventQuery) -> EntitlementEventPage:
    """One page of the customer's entitlement events matching the query, newest first;
    `from_at` is inclusive, `to_at` exclusive."""
    page, total_count, has_more, next_cursor = event_page(
        EntitlementEvent.objects.filter(customer=query.customer),
        query,
        feature_key=query.feature_key,
        type=query.types,
    )
    return EntitlementEventPage(
        items=[
            EntitlementEventItem(
                id=str(event.pk),
                feature_key=event.feature_key,
                type=event.type,
                old_value=event.old_value,
                new_value=event.new_value,
                source=event.source,
                description=event.description,
                actor=event.actor,
                created_at=event.created_at,
            )
            for event in page
        ],
        total_count=total_count,
        has_more=has_more,
        next_cursor=next_cursor,
    )
