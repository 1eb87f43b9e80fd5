"""Settling a freeze: consume its actual cost, or unfreeze it, by a client or the scheduler.

Each is a read (lock the customer, the freeze, the accounts it holds), a pure plan of what to
write (`consumption`, `release`), and the writes.
"""

import datetime as dt
from decimal import Decimal

from django.db import transaction

from credits_project.errors import (
    FreezeAutoUnfrozen,
    FreezeRecordsAlreadyConsumed,
    IdempotencyConflict,
    NoConsumableFreezeRecords,
    NoUnfreezableRecords,
)
from customers.models import Project
from ledger.models import CreditAccount, OperationType, Transaction
from ledger.money import ZERO
from ledger.results import ConsumeResult, Detail, UnfreezeResult
from ledger.rules import Draw, take
from ledger.services import events, replays
from ledger.services.locks import lock_customer_of_charge, now_under_lock
from ledger.services.plan import Plan, apply

SCHEDULER_ACTOR = "scheduler"

Holdings = list[tuple[CreditAccount, Decimal]]


def consume(
    *,
    project: Project,
    transaction_id: str,
    actor: str,
    actual_amount: Decimal | None = None,
    settled_by: str = Transaction.SettledBy.CLIENT,
    now: dt.datetime | None = None,
) -> ConsumeResult:
    """Charge a freeze's actual cost and return the rest of its credits to available.

    `actual_amount` defaults to the whole frozen amount. Above it, the overage is drawn from
    available credits of the freeze's eligible wallets (or the call fails and the freeze stays
    frozen). A repeat replays the original answer; another `actual_amount` is a conflict.
    """
    with transaction.atomic():
        charge = lock_customer_of_charge(project, transaction_id)
        now = now_under_lock(now)
        if charge is None or charge.kind != Transaction.Kind.FREEZE:
            raise NoConsumableFreezeRecords({"transaction_id": transaction_id})
        if charge.state == Transaction.State.CONSUMED:
            if actual_amount is not None and actual_amount != charge.consumed_amount:
                raise IdempotencyConflict({"field": "actual_amount"})
            return replays.consume(charge)
        if charge.state == Transaction.State.UNFROZEN:
            if charge.settled_by == Transaction.SettledBy.SCHEDULER:
                raise FreezeAutoUnfrozen({"transaction_id": transaction_id})
            raise NoConsumableFreezeRecords({"transaction_id": transaction_id})

        actual = charge.amount if actual_amount is None else actual_amount
        overage = actual - charge.amount
        # The contract names a shortfall of the overage plainly `insufficient_balance`, whether
        # or not the freeze was restricted to some wallets.
        accounts = CreditAccount.objects.open_of(charge.customer_id) if overage > 0 else []
        extra = (
            take(accounts, overage, charge.wallets, now, name_restriction=False)
            if overage > 0
            else []
        )
        plan = Plan(actor=actor, now=now)
        holdings = CreditAccount.objects.held_by(charge.customer_id, transaction_id)
        consumed = consumption(plan, charge, holdings, actual, extra)
        if overage > 0:
            # Only an overage can take the balance down; returned credits only raise it.
            events.low_balance(
                plan,
                project=project,
                customer_pk=charge.customer_id,
                customer_id=charge.customer.external_id,
                accounts=accounts,
                transaction_id=transaction_id,
            )
        settle(
            plan,
            charge,
            state=Transaction.State.CONSUMED,
            settled_by=settled_by,
            now=now,
            consumed_amount=actual,
            returned_amount=max(-overage, ZERO),
            overage_amount=max(overage, ZERO),
        )
    return ConsumeResult(
        transaction_id=transaction_id,
        consumed_amount=actual,
        returned_amount=-overage if overage < 0 else None,
        overage_amount=overage if overage > 0 else None,
        consume_details=consumed,
        consumed_at=now,
        is_idempotent_replay=False,
    )


def unfreeze(
    *,
    project: Project,
    transaction_id: str,
    actor: str,
    settled_by: str = Transaction.SettledBy.CLIENT,
    now: dt.datetime | None = None,
) -> UnfreezeResult:
    """Return every credit a freeze holds to available. A repeat replays the original answer."""
    with transaction.atomic():
        charge = lock_customer_of_charge(project, transaction_id)
        now = now_under_lock(now)
        if charge is None or charge.kind != Transaction.Kind.FREEZE:
            raise NoUnfreezableRecords({"transaction_id": transaction_id})
        if charge.state == Transaction.State.UNFROZEN:
            return replays.unfreeze(charge)
        if charge.state == Transaction.State.CONSUMED:
            raise FreezeRecordsAlreadyConsumed({"transaction_id": transaction_id})

        holdings = CreditAccount.objects.held_by(charge.customer_id, transaction_id)
        plan = Plan(actor=actor, now=now)
        for account, held in holdings:
            plan.change(account, frozen=-held)
            give_back(plan, charge, account, held)
        settle(
            plan,
            charge,
            state=Transaction.State.UNFROZEN,
            settled_by=settled_by,
            now=now,
            returned_amount=charge.amount,
            consumed_amount=ZERO,
        )
    return UnfreezeResult(
        transaction_id=transaction_id,
        unfrozen_amount=charge.amount,
        unfreeze_details=[Detail.of(account, held) for account, held in holdings],
        unfrozen_at=now,
        is_idempotent_replay=False,
    )


def consumption(
    plan: Plan, charge: Transaction, holdings: Holdings, actual: Decimal, extra: list[Draw]
) -> list[Detail]:
    """Plan a consume of `actual`: first from what the freeze holds, account by account in its
    order, the rest of each holding given back; then the overage `extra` from available
    credits. Returns the consumed part of each account, held accounts first."""
    consumed: dict[int, tuple[CreditAccount, Decimal]] = {}
    given_back: list[tuple[CreditAccount, Decimal]] = []
    remaining = actual
    for account, held in holdings:
        part = min(held, remaining)
        remaining -= part
        plan.change(account, frozen=-held, used=part)
        consumed[account.pk] = (account, part)
        given_back.append((account, held - part))
    for draw in extra:
        plan.change(draw.account, used=draw.amount)
        _, before = consumed.get(draw.account.pk, (draw.account, ZERO))
        consumed[draw.account.pk] = (draw.account, before + draw.amount)
    for account, amount in consumed.values():
        if amount > 0:
            settlement_entry(plan, charge, account, OperationType.CONSUME, amount)
    for account, amount in given_back:
        give_back(plan, charge, account, amount)
    return [Detail.of(account, amount) for account, amount in consumed.values() if amount > 0]


def give_back(plan: Plan, charge: Transaction, account: CreditAccount, amount: Decimal):
    """Plan the UNFREEZE of credits a freeze returns to an account, and their expiry when the
    account is past `expires_at`: only the returned credits if the scheduler already recorded
    the account's expiry, else everything the account has left, recording the expiry here, so
    that each credit still expires exactly once. Plan every other change of the account first.
    """
    if amount <= 0:
        return
    settlement_entry(plan, charge, account, OperationType.UNFREEZE, amount)
    if account.expires_at is None or account.expires_at > plan.now:
        return
    if account.expiry_recorded_at is None:
        change = plan.change(account, records_expiry=True)
        expiring = account.available - change.used - change.frozen
    else:
        expiring = amount
    if expiring > 0:
        plan.entry(
            account,
            OperationType.EXPIRE,
            expiring,
            transaction_id=None,
            business_type=account.business_type,
            description="expired",
        )
        events.expired(
            plan,
            project=charge.project,
            customer_id=charge.customer.external_id,
            account=account,
            amount=expiring,
        )


def settlement_entry(
    plan: Plan,
    charge: Transaction,
    account: CreditAccount,
    operation_type: str,
    amount: Decimal,
) -> None:
    plan.entry(
        account,
        operation_type,
        amount,
        transaction_id=charge.transaction_id,
        business_type=charge.business_type,
        description=charge.description,
    )


def settle(
    plan: Plan,
    charge: Transaction,
    *,
    state: str,
    settled_by: str,
    now: dt.datetime,
    **amounts: Decimal,
) -> None:
    """Record the freeze's settlement (with `freeze.auto_settled` when the scheduler settles
    it), and write the plan with it."""
    fields = {"state": state, "settled_by": settled_by, "settled_at": now, **amounts}
    for name, value in fields.items():
        setattr(charge, name, value)
    plan.update(charge, list(fields))
    if settled_by == Transaction.SettledBy.SCHEDULER:
        events.auto_settled(plan, charge)
    apply(plan)
