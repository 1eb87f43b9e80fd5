"""The outbox events of the credits, each added to the plan of the change it tells of
(`Plan.emit`), so a committed change always has its event and a rolled-back one never does.

A payload carries the event id, type and time, the project, the customer's id and the amounts
as exact decimals, rendered at delivery as the API renders them (`credits_project.json`).
"""

from collections.abc import Iterable, Sequence
from decimal import Decimal

from customers.models import Project
from ledger.models import CreditAccount, CreditLine, Transaction
from ledger.money import ZERO
from ledger.rules import crosses_below, spendable, spending_power, usable_lines
from ledger.services.plan import Event, Plan
from ledger.webhooks.models import EventType


def deposited(
    plan: Plan,
    *,
    project: Project,
    account: CreditAccount,
    customer_id: str,
    idempotency_key: str | None,
) -> None:
    """`credits.deposited` of a new account of the plan (its id is known once written)."""
    plan.emit(
        Event(
            EventType.DEPOSITED,
            project,
            account.customer_id,
            customer_id,
            data=lambda: {
                "account_id": str(account.pk),
                "wallet": account.wallet,
                "source": account.source,
                "amount": account.total,
                "starts_at": account.starts_at,
                "expires_at": account.expires_at,
                "business_type": account.business_type,
                "idempotency_key": idempotency_key,
            },
        )
    )


def low_balance(
    plan: Plan,
    *,
    project: Project,
    customer_pk: int,
    customer_id: str,
    accounts: Iterable[CreditAccount],
    lines: Sequence[CreditLine] = (),
    transaction_id: str,
) -> None:
    """`credits.low_balance` when the plan takes the customer's available balance (all
    wallets, or the project's watched wallet; credit lines' headroom included) from at least
    the project's threshold to below it: once per crossing. `accounts` are the customer's open
    accounts and `lines` its credit lines as read before the plan; call before the plan is
    applied. Costs nothing when the project sets no threshold."""
    threshold = project.low_balance_threshold
    if threshold is None:
        return
    wallets = [project.low_balance_wallet] if project.low_balance_wallet else None
    before = spending_power(accounts, lines, wallets, plan.now)
    counted = spendable([change.account for change in plan.changes.values()], wallets, plan.now)
    taken = sum((plan.changes[a.pk].used + plan.changes[a.pk].frozen for a in counted), ZERO)
    for line in usable_lines(lines, wallets):
        change = plan.change_line(line)
        left = max(line.credit_limit - line.debt - change.debt - line.frozen - change.frozen, ZERO)
        taken += line.headroom - left
    after = before - taken
    if not crosses_below(before, after, threshold):
        return
    plan.emit(
        Event(
            EventType.LOW_BALANCE,
            project,
            customer_pk,
            customer_id,
            data={
                "wallet": project.low_balance_wallet or None,
                "threshold": threshold,
                "balance_before": before,
                "balance_after": after,
                "transaction_id": transaction_id,
            },
        )
    )


def expired(
    plan: Plan, *, project: Project, customer_id: str, account: CreditAccount, amount: Decimal
) -> None:
    plan.emit(
        Event(
            EventType.EXPIRED,
            project,
            account.customer_id,
            customer_id,
            data={
                "account_id": str(account.pk),
                "wallet": account.wallet,
                "source": account.source,
                "amount": amount,
                "expires_at": account.expires_at,
            },
        )
    )


def auto_settled(plan: Plan, charge: Transaction) -> None:
    """`freeze.auto_settled`, of a freeze the scheduler settles in this plan (its fields as
    settled)."""
    plan.emit(
        Event(
            EventType.AUTO_SETTLED,
            charge.project,
            charge.customer_id,
            charge.customer.external_id,
            data={
                "transaction_id": charge.transaction_id,
                "settlement": "consumed"
                if charge.state == Transaction.State.CONSUMED
                else "unfrozen",
                "frozen_amount": charge.amount,
                "consumed_amount": charge.consumed_amount,
                "returned_amount": charge.returned_amount,
                "overage_amount": charge.overage_amount,
            },
        )
    )


def expiring(
    plan: Plan, *, project: Project, customer_id: str, account: CreditAccount, days: int
) -> None:
    """`credits.expiring`, at most once per account (its dedupe key)."""
    plan.emit(
        Event(
            EventType.EXPIRING,
            project,
            account.customer_id,
            customer_id,
            dedupe_key=f"{EventType.EXPIRING}:{account.pk}",
            data={
                "account_id": str(account.pk),
                "wallet": account.wallet,
                "source": account.source,
                "amount": account.available,
                "expires_at": account.expires_at,
                "notice_days": days,
            },
        )
    )


def refunded(
    plan: Plan,
    refund: Transaction,
    *,
    customer_id: str,
    parts: list[tuple[CreditAccount, Decimal]],
) -> None:
    """`credits.refunded`, of a refund in this plan: what it put back on each account (an
    account it opens has its id once written)."""
    plan.emit(
        Event(
            EventType.REFUNDED,
            refund.project,
            refund.customer_id,
            customer_id,
            data=lambda: {
                "refund_id": refund.transaction_id,
                "transaction_id": refund.refunded.transaction_id,
                "amount": refund.amount,
                "details": [
                    {"account_id": str(a.pk), "wallet": a.wallet, "amount": part}
                    for a, part in parts
                ],
            },
        )
    )


def debt_changed(
    plan: Plan,
    *,
    project: Project,
    customer_id: str,
    line: CreditLine,
    opened: bool,
    debt: Decimal,
) -> None:
    """`credits.debt_opened` when a line's debt goes from none to some, `credits.debt_cleared`
    when it is paid back to none."""
    plan.emit(
        Event(
            EventType.DEBT_OPENED if opened else EventType.DEBT_CLEARED,
            project,
            line.customer_id,
            customer_id,
            data={
                "wallet": line.wallet or None,
                "credit_limit": line.credit_limit,
                "debt": debt,
            },
        )
    )
