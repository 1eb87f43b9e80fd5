"""What the operator console reads: one customer's credits in detail, and a project at a glance.

Every read here costs a fixed number of statements however many accounts or entries the
customer has: sums are grouped in the database, lists are cut to a page. Sums of micro-credit
integers are `CreditSum`s, exact on both databases however large: SQLite's own SUM fails past
2^63 micro-credits (9.2 * 10^12 credits, ten deposits of the largest amount).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from credits_project.sql import fetch, instant
from customers.models import Customer, Project
from ledger.models import (
    CreditAccount,
    CreditLine,
    LedgerEntry,
    OperationType,
    OperatorAction,
    Transaction,
    Validity,
)
from ledger.models.accounts import CONSUMPTION_ORDER, validity_case
from ledger.money import ZERO, CreditAmountField, CreditSum, from_micros, sum_function

ACCOUNTS_SHOWN = 50
FREEZES_SHOWN = 50
ENTRIES_SHOWN = 20
ACTIONS_SHOWN = 20
CHART_DAYS = 90

# --- one customer --------------------------------------------------------------------------


@dataclass
class BreakdownRow:
    """The accounts of one wallet and source in one state, summed."""

    wallet: str
    source: str
    status: str  # the label of its `Validity`: "active", "not started", "expired"
    accounts: int
    first_start: dt.datetime | None
    first_expiry: dt.datetime | None
    last_expiry: dt.datetime | None
    total: Decimal
    used: Decimal
    frozen: Decimal

    @property
    def available(self) -> Decimal:
        return self.total - self.used - self.frozen

    @property
    def counted(self) -> bool:
        return self.status == Validity.ACTIVE.label


@dataclass
class Breakdown:
    rows: list[BreakdownRow]
    total: Decimal = ZERO
    used: Decimal = ZERO
    frozen: Decimal = ZERO
    available: Decimal = ZERO


def wallet_breakdown(customer: Customer, *, at: dt.datetime) -> Breakdown:
    """Every account of the customer summed per wallet, source and state, in one statement.

    The totals count the active rows only, which makes them the balance the API answers.
    """
    grouped = (
        CreditAccount.objects.filter(customer=customer)
        .annotate(status=validity_case(at))
        .values("wallet", "source", "status")
        .annotate(
            accounts=Count("id"),
            first_start=Min("starts_at"),
            first_expiry=Min("expires_at"),
            last_expiry=Max("expires_at"),
            sum_total=CreditSum("total"),
            sum_used=CreditSum("used"),
            sum_frozen=CreditSum("frozen"),
        )
    )
    order = {Validity.ACTIVE: 0, Validity.PENDING: 1, Validity.EXPIRED: 2}
    labels = {v.label: v for v in Validity}
    rows = sorted(
        (
            BreakdownRow(
                wallet=g["wallet"],
                source=g["source"],
                status=Validity(g["status"]).label,
                accounts=g["accounts"],
                first_start=g["first_start"],
                first_expiry=g["first_expiry"],
                last_expiry=g["last_expiry"],
                total=g["sum_total"],
                used=g["sum_used"],
                frozen=g["sum_frozen"],
            )
            for g in grouped
        ),
        key=lambda r: (r.wallet != "default", r.wallet, order[labels[r.status]], r.source),
    )
    breakdown = Breakdown(rows)
    for row in rows:
        if row.counted:
            breakdown.total += row.total
            breakdown.used += row.used
            breakdown.frozen += row.frozen
            breakdown.available += row.available
    return breakdown


def accounts_in_order(customer: Customer, *, limit: int = ACCOUNTS_SHOWN) -> list[CreditAccount]:
    """The customer's accounts in consumption order (soonest expiry first, then oldest), the
    open ones (credits left or frozen) before the used-up ones; the first `limit`."""
    return list(
        CreditAccount.objects.filter(customer=customer)
        .annotate(
            is_used_up=Case(
                When(used=F("total"), then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        # Consumption order, but the used-up accounts after the open ones.
        .order_by("is_used_up", *CONSUMPTION_ORDER)[:limit]
    )


def account_count(customer: Customer) -> int:
    return CreditAccount.objects.filter(customer=customer).count()


@dataclass
class OpenFreeze:
    transaction_id: str
    amount: Decimal
    created_at: dt.datetime
    deadline: dt.datetime | None
    settles_by: str  # "unfreeze", "consume" or "" when only a client settles it
    wallets: list[str] = field(default_factory=list)

    def age(self, at: dt.datetime) -> dt.timedelta:
        return at - self.created_at


def open_freezes(customer: Customer, *, limit: int = FREEZES_SHOWN) -> list[OpenFreeze]:
    """The customer's freezes not settled yet, oldest first, with the wallets they hold."""
    charges = list(
        Transaction.objects.filter(
            customer=customer, kind=Transaction.Kind.FREEZE, state=Transaction.State.FROZEN
        ).order_by("created_at", "id")[:limit]
    )
    wallets: dict[str, set[str]] = defaultdict(set)
    if charges:
        held = (
            LedgerEntry.objects.filter(
                customer=customer,
                operation_type=OperationType.FREEZE,
                transaction_id__in=[c.transaction_id for c in charges],
            )
            .values_list("transaction_id", "account__wallet")
            .distinct()
        )
        for transaction_id, wallet in held:
            wallets[transaction_id].add(wallet)
    return [
        OpenFreeze(
            transaction_id=c.transaction_id,
            amount=c.amount,
            created_at=c.created_at,
            deadline=c.unfreeze_after or c.consume_after,
            settles_by="unfreeze" if c.unfreeze_after else "consume" if c.consume_after else "",
            wallets=sorted(wallets[c.transaction_id]),
        )
        for c in charges
    ]


def open_freeze_count(customer: Customer) -> int:
    return Transaction.objects.filter(
        customer=customer, kind=Transaction.Kind.FREEZE, state=Transaction.State.FROZEN
    ).count()


def latest_entries(customer: Customer, *, limit: int = ENTRIES_SHOWN) -> list[LedgerEntry]:
    """The newest entries first, by the `entry_walk` index."""
    return list(
        LedgerEntry.objects.filter(customer=customer)
        .select_related("account")
        .order_by("-created_at", "-id")[:limit]
    )


def latest_actions(customer: Customer, *, limit: int = ACTIONS_SHOWN) -> list[OperatorAction]:
    return list(
        OperatorAction.objects.filter(customer=customer).order_by("-created_at", "-id")[:limit]
    )


def expirable_accounts(customer: Customer, *, at: dt.datetime, limit: int = 200) -> QuerySet:
    """Accounts an operator may expire now: started, not expired, credits left or frozen."""
    # Started strictly before now: an expiry at `at` must come after the start.
    return (
        CreditAccount.objects.filter(customer=customer)
        .with_credits_left()
        .active_at(at)
        .exclude(starts_at=at)
        .in_consumption_order()[:limit]
    )


def voidable_accounts(customer: Customer, *, limit: int = 200) -> QuerySet:
    """Accounts an operator may void: any not voided yet, newest first."""
    return CreditAccount.objects.filter(customer=customer, voided_at__isnull=True).order_by(
        "-created_at", "-id"
    )[:limit]


def available_history(
    customer: Customer, *, at: dt.datetime, current: dict[str, Decimal], days: int = CHART_DAYS
) -> dict[str, list[tuple[dt.date, Decimal]]]:
    """Available credits per wallet at the end of each of the last `days` days (UTC), walked
    back from `current` (each wallet's available now) through the ledger's daily changes.

    A grant counts from its start (a deposit that starts later is not available before), a
    freeze takes credits from available and an unfreeze gives them back, an expiry takes what
    expired, and a consume takes from available only what its freeze did not already hold.
    """
    since = (at - dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    changes: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)

    starts = Case(
        When(starts_at__gt=F("created_at"), then=F("starts_at")),
        default=F("created_at"),
        output_field=DateTimeField(),
    )
    grants = (
        CreditAccount.objects.filter(customer=customer)
        .annotate(effective=starts)
        .filter(effective__gt=since, effective__lte=at)
        .annotate(day=TruncDate("effective"))
        .values("wallet", "day")
        .annotate(amount=CreditSum("total"))
    )
    for row in grants:
        changes[row["wallet"], row["day"]] += row["amount"]

    for wallet, day, micros in daily_available_changes(customer, since, at):
        changes[wallet, day] += from_micros(int(micros))

    wallets = sorted(set(current) | {wallet for wallet, _ in changes})
    today = at.date()
    series: dict[str, list[tuple[dt.date, Decimal]]] = {}
    for wallet in wallets:
        level = current.get(wallet, ZERO)
        points = []
        for back in range(days + 1):
            day = today - dt.timedelta(days=back)
            points.append((day, level))
            level -= changes.get((wallet, day), ZERO)
        series[wallet] = list(reversed(points))
    return series


def daily_available_changes(
    customer: Customer, since: dt.datetime, at: dt.datetime
) -> list[tuple[str, dt.date, int]]:
    """Per wallet and UTC day, how entries other than grants changed available credits, in
    micro-credits, in one pass over the customer's entries of those days.

    A freeze takes its amount and an unfreeze (or a refund) gives it back; an expiry, a void
    and a repayment of a debt take what they took; a
    consume takes its amount less what its freeze held on the same account (at most the
    consume), which the freeze took already. (A freeze writes one entry per account it holds.)
    """
    day = (
        "(c.created_at AT TIME ZONE 'UTC')::date"
        if connection.vendor == "postgresql"
        else "date(c.created_at)"
    )
    rows = fetch(
        f"SELECT a.wallet, {day}, {sum_function(connection.vendor)}(CASE "
        "WHEN c.operation_type IN ('UNFREEZE', 'REFUND') THEN c.amount "
        "WHEN c.operation_type = 'CONSUME' AND f.amount IS NOT NULL THEN "
        "CASE WHEN f.amount < c.amount THEN f.amount - c.amount ELSE 0 END "
        "ELSE -c.amount END) "
        "FROM ledger_ledgerentry c "
        "JOIN ledger_creditaccount a ON a.id = c.account_id "
        "LEFT JOIN ledger_ledgerentry f ON c.operation_type = 'CONSUME' "
        "AND f.customer_id = c.customer_id AND f.transaction_id = c.transaction_id "
        "AND f.account_id = c.account_id AND f.operation_type = 'FREEZE' "
        "WHERE c.customer_id = %s AND c.operation_type <> 'GRANT' "
        "AND c.created_at > %s AND c.created_at <= %s "
        "GROUP BY 1, 2",
        [customer.pk, instant(since), instant(at)],
    )
    return [
        (wallet, value if isinstance(value, dt.date) else dt.date.fromisoformat(value), micros)
        for wallet, value, micros in rows
    ]


def available_subquery(at: dt.datetime) -> Subquery:
    """A customer's available credits at `at`, for annotating a list of customers: one
    correlated sum over its open accounts (the `account_open_in_order` index), per row."""
    return Subquery(
        CreditAccount.objects.filter(customer=OuterRef("pk"))
        .with_credits_left()
        .active_at(at)
        .values("customer")
        .annotate(available=CreditSum(F("total") - F("used") - F("frozen")))
        .values("available"),
        output_field=CreditAmountField(),
    )


# --- one project ---------------------------------------------------------------------------


@dataclass
class Overview:
    project: Project
    at: dt.datetime
    outstanding: list[tuple[str, Decimal]]
    # What customers owe on their credit lines, per wallet ("" for lines of all wallets),
    # and how many customers owe it.
    debts: list[tuple[str, Decimal, int]]
    expiring_7: Decimal
    expiring_30: Decimal
    open_freezes: int
    frozen_total: Decimal
    oldest_freeze: dt.datetime | None
    granted: list[tuple[dt.date, Decimal]]
    consumed: list[tuple[dt.date, Decimal]]
    top_consumers: list[tuple[str, Decimal, int]]  # customer id, consumed, customer's key
    breakage: list[tuple[dt.date, Decimal]]


def project_overview(project: Project, *, at: dt.datetime | None = None) -> Overview:
    """The project's credits at a glance: what is outstanding and soon expiring, what is
    frozen, what was granted and consumed per day, who consumes most, what expired unused."""
    at = at or timezone.now()
    open_active = (
        CreditAccount.objects.filter(customer__project=project).with_credits_left().active_at(at)
    )
    left = CreditSum(F("total") - F("used") - F("frozen"))
    outstanding = [
        (row["wallet"], row["left"])
        for row in open_active.values("wallet").annotate(left=left).order_by("wallet")
    ]
    expiring = open_active.filter(expires_at__isnull=False).aggregate(
        week=left_by(at + dt.timedelta(days=7)), month=left_by(at + dt.timedelta(days=30))
    )
    freezes = Transaction.objects.filter(
        project=project, kind=Transaction.Kind.FREEZE, state=Transaction.State.FROZEN
    ).aggregate(count=Count("id"), total=CreditSum("amount"), oldest=Min("created_at"))

    since = (at - dt.timedelta(days=CHART_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    entries = LedgerEntry.objects.filter(customer__project=project, created_at__gt=since)
    daily: dict[str, dict[dt.date, Decimal]] = {OperationType.GRANT: {}, OperationType.CONSUME: {}}
    for row in (
        entries.filter(operation_type__in=list(daily))
        .annotate(day=TruncDate("created_at"))
        .values("operation_type", "day")
        .annotate(amount=CreditSum("amount"))
    ):
        daily[row["operation_type"]][row["day"]] = row["amount"]
    days = [since.date() + dt.timedelta(days=n) for n in range((at.date() - since.date()).days)]
    days.append(at.date())

    top = (
        entries.filter(operation_type=OperationType.CONSUME)
        .values("customer_id", "customer__external_id")
        .annotate(amount=CreditSum("amount"))
        .order_by("-amount", "customer__external_id")[:10]
    )
    year_ago = (at - dt.timedelta(days=365)).replace(day=1, hour=0, minute=0, second=0)
    breakage = (
        LedgerEntry.objects.filter(
            customer__project=project,
            operation_type=OperationType.EXPIRE,
            created_at__gte=year_ago,
        )
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(amount=CreditSum("amount"))
        .order_by("month")
    )
    return Overview(
        project=project,
        at=at,
        outstanding=outstanding,
        debts=debts_by_wallet(project),
        expiring_7=expiring["week"] or ZERO,
        expiring_30=expiring["month"] or ZERO,
        open_freezes=freezes["count"],
        frozen_total=freezes["total"] or ZERO,
        oldest_freeze=freezes["oldest"],
        granted=[(day, daily[OperationType.GRANT].get(day, ZERO)) for day in days],
        consumed=[(day, daily[OperationType.CONSUME].get(day, ZERO)) for day in days],
        top_consumers=[
            (row["customer__external_id"], row["amount"], row["customer_id"]) for row in top
        ],
        breakage=[(_as_date(row["month"]), row["amount"]) for row in breakage],
    )


def debts_by_wallet(project: Project) -> list[tuple[str, Decimal, int]]:
    """Debt on the project's credit lines per wallet, summed exactly in Python (lines are few
    per customer, and a sum of micro-credits may pass what SQLite's integers hold)."""
    owed: dict[str, list] = {}
    for wallet, debt in (
        CreditLine.objects.filter(customer__project=project, debt__gt=0)
        .values_list("wallet", "debt")
        .iterator()
    ):
        sums = owed.setdefault(wallet, [ZERO, 0])
        sums[0] += debt
        sums[1] += 1
    return [(wallet, total, count) for wallet, (total, count) in sorted(owed.items())]


def left_by(deadline: dt.datetime) -> CreditSum:
    """Credits left on the accounts that expire by `deadline`."""
    return CreditSum(
        Case(
            When(expires_at__lte=deadline, then=F("total") - F("used") - F("frozen")),
            default=Value(0),
            output_field=IntegerField(),
        )
    )


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
