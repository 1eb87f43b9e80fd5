"""The console's reads of a customer's slots and entitlements, for its customer page."""

import datetime as dt
from dataclasses import dataclass

from customers.models import Customer
from ledger.models import Entitlement, EntitlementEvent, SlotEvent, SlotHolding, SlotPool

EVENTS_SHOWN = 10


@dataclass(frozen=True)
class HoldingRow:
    holding: SlotHolding
    age: dt.timedelta
    lease_left: dt.timedelta | None  # None: held until released


@dataclass(frozen=True)
class PoolRow:
    pool: SlotPool
    holdings: list[HoldingRow]


def pools_with_holdings(customer: Customer, *, at: dt.datetime) -> list[PoolRow]:
    """The customer's pools (by wallet, then oldest first) with their holdings, oldest
    first, each with its age and what is left of its lease, in two statements."""
    pools = list(SlotPool.objects.filter(customer=customer).order_by("wallet", "created_at", "id"))
    holdings: dict[int, list[HoldingRow]] = {pool.pk: [] for pool in pools}
    for holding in SlotHolding.objects.filter(customer=customer).order_by("claimed_at", "id"):
        left = holding.expires_at - at if holding.expires_at else None
        holdings[holding.pool_id].append(HoldingRow(holding, at - holding.claimed_at, left))
    return [PoolRow(pool, holdings[pool.pk]) for pool in pools]


@dataclass(frozen=True)
class EntitlementRow:
    entitlement: Entitlement
    is_active: bool
    has_expired: bool


def entitlements_at(customer: Customer, *, at: dt.datetime) -> list[EntitlementRow]:
    """Every entitlement of the customer, expired ones included, by feature key."""
    return [
        EntitlementRow(e, e.is_active_at(at), e.has_expired_at(at))
        for e in Entitlement.objects.filter(customer=customer).order_by("feature_key")
    ]


def latest_slot_events(customer: Customer) -> list[SlotEvent]:
    return list(
        SlotEvent.objects.filter(customer=customer).order_by("-created_at", "-id")[:EVENTS_SHOWN]
    )


def latest_entitlement_events(customer: Customer) -> list[EntitlementEvent]:
    return list(
        EntitlementEvent.objects.filter(customer=customer).order_by("-created_at", "-id")[
            :EVENTS_SHOWN
        ]
    )
