"""Reads of a customer's slots: its pools, and its slot events newest first."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from customers.models import Customer, Project
from ledger.models import SlotEvent, SlotPool
from ledger.results import SlotEventItem, SlotEventPage, SlotPools, SlotPoolSummary
from ledger.selectors.ledger_pages import customer_of, event_page


def customer_pools(project: Project, customer_id: str, wallet: str | None = None) -> SlotPools:
    """The customer's pools (of `wallet` only, when given), by wallet, then oldest first:
    the order a claim without `source` tries them in. `customer_not_found` when unknown."""
    pools = SlotPool.objects.filter(customer=customer_of(project, customer_id))
    if wallet is not None:
        pools = pools.filter(wallet=wallet)
    return SlotPools(
        pools=[
            SlotPoolSummary(**SlotPoolSummary.fields_of(pool))
            for pool in pools.order_by("wallet", "created_at", "id")
        ]
    )


@dataclass(frozen=True)
class SlotEventQuery:
    customer: Customer
    limit: int = 20
    cursor: str | None = None
    wallet: str | None = None
    resource_id: str | None = None
    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    from_at: dt.datetime | None = None
    to_at: dt.datetime | None = None

    def filters(self) -> list[Any]:
        """What a cursor is bound to (tagged: never a ledger walk's cursor)."""
        return [
            "slot",
            self.customer.pk,
            self.wallet,
            self.resource_id,
            list(self.types),
            list(self.sources),
            self.from_at.isoformat() if self.from_at else None,
            self.to_at.isoformat() if self.to_at else None,
        ]


def slot_event_page(query: SlotEventQuery) -> SlotEventPage:
    """One page of the customer's slot events matching the query, newest first; `from_at`
    is inclusive, `to_at` exclusive."""
    page, total_count, has_more, next_cursor = event_page(
        SlotEvent.objects.filter(customer=query.customer),
        query,
        wallet=query.wallet,
        resource_id=query.resource_id,
        type=query.types,
        source=query.sources,
    )
    return SlotEventPage(
        items=[
            SlotEventItem(
                id=str(event.pk),
                type=event.type,
                wallet=event.wallet,
                source=event.source,
                amount=event.amount,
                resource_id=event.resource_id,
                holding_id=str(event.holding_id) if event.holding_id is not None else None,
                description=event.description,
                idempotency_key=event.idempotency_key,
                actor=event.actor,
                created_at=event.created_at,
            )
            for event in page
        ],
        total_count=total_count,
        has_more=has_more,
        next_cursor=next_cursor,
    )
