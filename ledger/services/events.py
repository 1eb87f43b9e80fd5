"""The outbox events of the credits, each added to the plan of the change it tells of
(`Plan.emit`), so a committed change always has its event and a rolled-back one never does.

A payload carries the event id, type and time, the project, the customer's id and the amounts
as exact decimals, rendered at delivery as the API renders them (`credits_project.json`).
"""

from collections.abc import Iterable
from decimal import Decimal

from customers.models import Project
from ledger.models import CreditAccount, Transaction
from ledger.rules import available_in, crosses_below, spendable
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
    transaction_id: str,
) -> None:
    """`credits.low_balance` when the plan takes the customer's available balance (all
    wallets, or the project's watched wallet) from at least the project's threshold to below
    it: once per crossing. `accounts` are the customer's open accounts as read before the plan;
    call before the plan is applied. Costs nothing when the project sets no threshold."""
    threshold = project.low_balance_threshold
    if threshold is None:
        return
    wallets = [project.low_balance_wallet] if project.low_balance_wallet else None
    before = available_in(accounts, wallets, plan.now)
    counted = spendable([change.account for change in plan.changes.values()], wallets, plan.now)
    taken = sum((plan.changes[a.pk].used + plan.changes[a.pk].frozen for a in counted), Decimal(0))
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
