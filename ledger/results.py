"""What the services and selectors answer: one dataclass per response of the API.

Each class is the one definition of its response: the API renders it and documents it in the
OpenAPI schema from these fields (`ledger/api/shapes.py`), and a retried operation's answer is
rebuilt as the same class from the ledger. Amounts are exact `Decimal`s, times aware UTC
`datetime`s, ids strings (clients validate them as strings).
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ledger.models import CreditAccount, Entitlement, Schedule, SlotPool
from ledger.models.entries import Part

OMIT_WHEN_NONE = {"omit_when_none": True}
"""Field metadata: the field is left out of the response, rather than null, when unset."""


@dataclass(frozen=True, slots=True)
class Detail:
    """One account's part of a freeze, consume, unfreeze or deduct."""

    account_id: str
    wallet: str
    credit_type: str
    source: str
    amount: Decimal

    @classmethod
    def of(cls, account: CreditAccount, amount: Decimal) -> "Detail":
        return cls(str(account.pk), account.wallet, account.wallet, account.source, amount)

    @classmethod
    def listed(cls, parts: list[Part], operation_type: str) -> list["Detail"]:
        """The account parts of one operation type (from `LedgerEntry.objects.parts_of`)."""
        return [
            cls(part.account_id, part.wallet, part.wallet, part.source, part.amount)
            for part in parts
            if part.operation_type == operation_type and part.credit_line_id is None
        ]


def on_credit(parts: list[Part], operation_type: str) -> Decimal | None:
    """What the parts of one operation type took on credit lines (None when nothing)."""
    total = sum(
        (p.amount for p in parts if p.operation_type == operation_type and p.credit_line_id),
        Decimal(0),
    )
    return total or None


@dataclass(frozen=True, slots=True)
class DepositResult:
    customer_id: str
    account_id: str
    wallet: str
    credit_type: str
    source: str
    total_amount: Decimal
    added_amount: Decimal
    starts_at: dt.datetime | None
    expires_at: dt.datetime | None
    record_id: str
    is_idempotent_replay: bool
    # What the deposit paid back of the customer's debt, when it paid any.
    repaid_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class FreezeResult:
    transaction_id: str
    frozen_amount: Decimal
    freeze_details: list[Detail]
    unfreeze_after: dt.datetime | None
    consume_after: dt.datetime | None
    is_idempotent_replay: bool
    # What the operation drew on the customer's credit lines, when it drew any.
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class ConsumeResult:
    transaction_id: str
    consumed_amount: Decimal
    consume_details: list[Detail]
    consumed_at: dt.datetime
    is_idempotent_replay: bool
    returned_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)
    overage_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)
    # What the operation drew on the customer's credit lines, when it drew any.
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class UnfreezeResult:
    transaction_id: str
    unfrozen_amount: Decimal
    unfreeze_details: list[Detail]
    unfrozen_at: dt.datetime
    is_idempotent_replay: bool
    # What the operation drew on the customer's credit lines, when it drew any.
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class DeductResult:
    transaction_id: str
    deducted_amount: Decimal
    deduct_details: list[Detail]
    deducted_at: dt.datetime
    is_idempotent_replay: bool
    # What the operation drew on the customer's credit lines, when it drew any.
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class TransactionState:
    transaction_id: str
    customer_id: str
    kind: Literal["FREEZE", "DEDUCT"]
    state: Literal["FROZEN", "CONSUMED", "UNFROZEN", "DEDUCTED"]
    settled_by: Literal["client", "scheduler"] | None
    amount: Decimal
    frozen_amount: Decimal
    consumed_amount: Decimal
    returned_amount: Decimal
    overage_amount: Decimal
    unfreeze_after: dt.datetime | None
    consume_after: dt.datetime | None
    business_type: str
    description: str
    details: list[Detail]
    created_at: dt.datetime
    settled_at: dt.datetime | None
    # What the charge's refunds have put back so far.
    refunded_amount: Decimal = Decimal(0)
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(slots=True)
class Counters:
    """Sums of credits. With a credit line, `frozen` includes what freezes hold on it and
    `available` its headroom; `credit_limit` and `debt` are then given (left out otherwise)."""

    total: Decimal
    used: Decimal
    frozen: Decimal
    available: Decimal
    credit_limit: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)
    debt: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account_id: str
    account_type: Literal["CREDIT"]
    credit_type: str
    wallet: str
    source: str
    total: Decimal
    used: Decimal
    frozen: Decimal
    available: Decimal
    starts_at: dt.datetime | None
    expires_at: dt.datetime | None


@dataclass(slots=True)
class SourceBalance:
    """Open accounts of one wallet with the same source and validity window, summed."""

    source: str
    total: Decimal
    used: Decimal
    frozen: Decimal
    available: Decimal
    starts_at: dt.datetime | None
    expires_at: dt.datetime | None


@dataclass(slots=True)
class WalletBalance:
    total: Decimal
    used: Decimal
    frozen: Decimal
    available: Decimal
    sources: list[SourceBalance]
    credit_limit: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)
    debt: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class CustomerBalance:
    id: str
    name: str | None
    email: str | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    balance: Counters
    accounts: list[AccountBalance]
    wallets: dict[str, WalletBalance]
    # True for a read of an instant to come (`as_of` in the future); left out otherwise.
    projected: bool | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """What a deduct of `amount` would draw, in order, and the balance before and after it."""

    customer_id: str
    amount: Decimal
    quote_details: list[Detail]
    balance_before: Counters
    balance_after: Counters
    quoted_at: dt.datetime
    on_credit_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class LedgerItem:
    id: str
    operation_type: Literal[
        "GRANT", "FREEZE", "CONSUME", "UNFREEZE", "EXPIRE", "REFUND", "VOID", "DEBT", "REPAY"
    ]
    amount: Decimal
    wallet: str | None
    credit_type: str | None
    source: str
    account_id: str
    transaction_id: str | None
    business_type: str
    description: str
    status: Literal["ACTIVE", "PENDING", "EXPIRED"]
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RefundResult:
    transaction_id: str
    refund_id: str
    refunded_amount: Decimal
    refund_details: list[Detail]
    remaining_refundable: Decimal
    refunded_at: dt.datetime
    is_idempotent_replay: bool
    # What the refund took off the customer's debt (a charge drawn on a credit line).
    debt_reduced_amount: Decimal | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class VoidEntry:
    """One entry a void writes (or, in a dry run, would write)."""

    operation_type: Literal["VOID", "DEBT"]
    amount: Decimal
    account_id: str | None
    wallet: str


@dataclass(frozen=True, slots=True)
class VoidResult:
    void_id: str
    customer_id: str
    account_id: str
    mode: Literal["remainder", "clawback"]
    voided_amount: Decimal
    clawed_back_amount: Decimal
    entries: list[VoidEntry]
    voided_at: dt.datetime
    dry_run: bool
    is_idempotent_replay: bool


@dataclass(frozen=True, slots=True)
class CreditLimitResult:
    customer_id: str
    wallet: str | None
    credit_limit: Decimal
    debt: Decimal
    frozen: Decimal
    available_on_credit: Decimal
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class LedgerPage:
    items: list[LedgerItem]
    total_count: int
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Health:
    status: Literal["ok"]


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """A grant schedule: its terms for the next period, where it stands, and when it next
    grants. `is_idempotent_replay` is only answered by a create."""

    schedule_id: str
    customer_id: str
    amount: Decimal
    wallet: str
    source: str
    period: str
    every: int
    anchor: dt.datetime
    timezone: str
    ends_at: dt.datetime | None
    expires_after_periods: int | None
    rollover: dict[str, Decimal] | None
    prorate_first_period: bool
    description: str
    metadata: dict[str, Any]
    status: str
    periods_granted: int
    next_grant_at: dt.datetime | None
    created_at: dt.datetime
    canceled_at: dt.datetime | None
    is_idempotent_replay: bool | None = field(default=None, metadata=OMIT_WHEN_NONE)

    @classmethod
    def of(
        cls, schedule: Schedule, customer_id: str, *, replay: bool | None = None
    ) -> "ScheduleResult":
        """The answer about `schedule`, its `terms` loaded (the latest terms are those of its
        next grant)."""
        terms = max(schedule.terms.all(), key=lambda t: t.from_period)
        next_grant_at = schedule.next_grant_at
        if schedule.ends_at is not None and next_grant_at and next_grant_at >= schedule.ends_at:
            next_grant_at = None  # woken at its end, to record it: no grant then
        return cls(
            schedule_id=schedule.schedule_id,
            customer_id=customer_id,
            amount=terms.amount,
            wallet=schedule.wallet,
            source=schedule.source,
            period=schedule.period,
            every=schedule.every,
            anchor=schedule.anchor,
            timezone=schedule.timezone,
            ends_at=schedule.ends_at,
            expires_after_periods=terms.expires_after_periods,
            rollover=terms.rollover,
            prorate_first_period=schedule.prorate_first_period,
            description=schedule.description,
            metadata=schedule.metadata,
            status=schedule.status,
            periods_granted=schedule.periods_granted,
            next_grant_at=next_grant_at,
            created_at=schedule.created_at,
            canceled_at=schedule.canceled_at,
            is_idempotent_replay=replay,
        )


@dataclass(frozen=True, slots=True)
class ScheduleList:
    customer_id: str
    schedules: list[ScheduleResult]


# --- Slots and entitlements ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotPoolSummary:
    """A pool as the customer's pools list it."""

    pool_id: str
    wallet: str
    source: str
    capacity: int
    in_use: int
    available: int
    status: str

    @classmethod
    def fields_of(cls, pool: SlotPool) -> dict[str, Any]:
        return {
            "pool_id": str(pool.pk),
            "wallet": pool.wallet,
            "source": pool.source,
            "capacity": pool.capacity,
            "in_use": pool.in_use,
            "available": pool.available,
            "status": pool.status,
        }


@dataclass(frozen=True, slots=True)
class SlotPoolResult(SlotPoolSummary):
    """A grant's or revoke's answer: the pool after it."""

    is_idempotent_replay: bool


@dataclass(frozen=True, slots=True)
class SlotHoldingResult(SlotPoolSummary):
    """A claim's or release's answer: the pool after it and the holding (its id and what
    holds it). `expires_at` is the lease's end, sent only for a holding with a lease."""

    holding_id: str
    resource_id: str
    is_idempotent_replay: bool
    expires_at: dt.datetime | None = field(default=None, metadata=OMIT_WHEN_NONE)


@dataclass(frozen=True, slots=True)
class SlotPools:
    pools: list[SlotPoolSummary]


@dataclass(frozen=True, slots=True)
class SlotEventItem:
    id: str
    type: str
    wallet: str
    source: str
    amount: int
    resource_id: str | None
    holding_id: str | None
    description: str | None
    idempotency_key: str | None
    actor: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SlotEventPage:
    items: list[SlotEventItem]
    total_count: int
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class EntitlementView:
    entitlement_id: str
    feature_key: str
    value: str
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    source: str
    description: str | None
    metadata: dict[str, Any] | None

    @classmethod
    def fields_of(cls, entitlement: Entitlement) -> dict[str, Any]:
        """The fields every answer about an entitlement carries."""
        return {
            "entitlement_id": str(entitlement.pk),
            "feature_key": entitlement.feature_key,
            "value": entitlement.value,
            "valid_from": entitlement.valid_from,
            "valid_until": entitlement.valid_until,
            "source": entitlement.source,
            "description": entitlement.description,
            "metadata": entitlement.metadata,
        }


@dataclass(frozen=True, slots=True)
class EntitlementSetResult(EntitlementView):
    is_created: bool
    old_value: str | None


@dataclass(frozen=True, slots=True)
class EntitlementRead:
    entitlement: EntitlementView | None


@dataclass(frozen=True, slots=True)
class EntitlementItem(EntitlementView):
    """An entitlement as the list gives it, with whether its window holds now."""

    is_active: bool


@dataclass(frozen=True, slots=True)
class EntitlementList:
    items: list[EntitlementItem]


@dataclass(frozen=True, slots=True)
class EntitlementRemoveResult:
    removed: bool
    old_value: str | None


@dataclass(frozen=True, slots=True)
class EntitlementEventItem:
    id: str
    feature_key: str
    type: str
    old_value: str | None
    new_value: str | None
    source: str | None
    description: str | None
    actor: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EntitlementEventPage:
    items: list[EntitlementEventItem]
    total_count: int
    has_more: bool
    next_cursor: str | None
