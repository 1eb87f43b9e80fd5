"""Settling a freeze: consume its actual cost, or unfreeze it, by a client or the scheduler.

Each is a read (lock the customer, the freeze, what it holds on accounts and credit lines), a
pure plan of what to write (`consumption`), and the writes.
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
from ledger.models import CreditAccount, CreditLine, OperationType, Transaction
from ledger.money import ZERO
from ledger.results import ConsumeResult, Detail, UnfreezeResult
from ledger.rules import Taken, take
from ledger.services import debts, events, replays
from ledger.services.locks import lock_customer_of_charge, now_under_lock
from ledger.services.plan import Plan, apply

SCHEDULER_ACTOR = "scheduler"

Holdings = list[tuple[CreditAccount, Decimal]]
LineHoldings = list[tuple[CreditLine, Decimal]]


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
    available credits of the freeze's eligible wallets, then on the customer's credit lines
    (or the call fails and the freeze stays frozen). What the freeze held on a line and
    consumes becomes debt. A repeat replays the original answer; another `actual_amount` is a
    conflict.
    """
    with transaction.atomic():
        found = lock_customer_of_charge(project, transaction_id)
        now = now_under_lock(now)
        if found is None or found[0].kind != Transaction.Kind.FREEZE:
            raise NoConsumableFreezeRecords({"transaction_id": transaction_id})
        charge, lines = found
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
        holdings = CreditAccount.objects.held_by(charge.customer_id, transaction_id)
        line_holdings = held_on_lines(charge, lines)
        accounts = CreditAccount.objects.open_of(charge.customer_id) if overage > 0 else []
        # The contract names a shortfall of the overage plainly `insufficient_balance`, whether
        # or not the freeze was restricted to some wallets. With an overage, everything the
        # freeze holds on a line is consumed (its hold becomes debt), so the hold frees no
        # headroom for the overage: the lines' headroom as read is what it may draw.
        extra = (
            take(accounts, overage, charge.wallets, now, lines=lines, name_restriction=False)
            if overage > 0
            else Taken([])
        )
        plan = Plan(actor=actor, now=now)
        consumed, on_credit = consumption(
            plan, charge, holdings, line_holdings, actual, extra, lines
        )
        if overage > 0:
            # Only an overage can take the balance down; returned credits only raise it.
            events.low_balance(
                plan,
                project=project,
                customer_pk=charge.customer_id,
                customer_id=charge.customer.external_id,
                accounts=accounts,
                lines=lines,
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
        on_credit_amount=on_credit or None,
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
        found = lock_customer_of_charge(project, transaction_id)
        now = now_under_lock(now)
        if found is None or found[0].kind != Transaction.Kind.FREEZE:
            raise NoUnfreezableRecords({"transaction_id": transaction_id})
        charge, lines = found
        if charge.state == Transaction.State.UNFROZEN:
            return replays.unfreeze(charge)
        if charge.state == Transaction.State.CONSUMED:
            raise FreezeRecordsAlreadyConsumed({"transaction_id": transaction_id})

        holdings = CreditAccount.objects.held_by(charge.customer_id, transaction_id)
        line_holdings = held_on_lines(charge, lines)
        plan = Plan(actor=actor, now=now)
        for account, held in holdings:
            plan.change(account, frozen=-held)
            give_back(plan, charge, account, held)
        for line, held in line_holdings:
            debts.release(plan, line, held, **entry_fields(charge))
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
        on_credit_amount=sum((held for _, held in line_holdings), ZERO) or None,
    )


def held_on_lines(charge: Transaction, lines: list[CreditLine]) -> LineHoldings:
    """What the freeze holds on the customer's credit lines (none without lines: then no
    statement is spent finding out)."""
    if not lines:
        return []
    by_pk = {line.pk: line for line in lines}
    held = CreditLine.objects.held_by(charge.customer_id, charge.transaction_id)
    return [(by_pk[pk], amount) for pk, amount in held]


def consumption(
    plan: Plan,
    charge: Transaction,
    holdings: Holdings,
    line_holdings: LineHoldings,
    actual: Decimal,
    extra: Taken,
    lines: list[CreditLine],
) -> tuple[list[Detail], Decimal]:
    """Plan a consume of `actual`: first from what the freeze holds, account by account in its
    order, then on its lines, the rest of each holding given back; then the overage `extra`
    from available credits and headroom. Returns the consumed part of each account (held
    accounts first) and what was consumed on credit."""
    consumed: dict[int, tuple[CreditAccount, Decimal]] = {}
    given_back: list[tuple[CreditAccount, Decimal]] = []
    remaining = actual
    for account, held in holdings:
        part = min(held, remaining)
        remaining -= part
        plan.change(account, frozen=-held, used=part)
        consumed[account.pk] = (account, part)
        given_back.append((account, held - part))
    for draw in extra.draws:
        plan.change(draw.account, used=draw.amount)
        _, before = consumed.get(draw.account.pk, (draw.account, ZERO))
        consumed[draw.account.pk] = (draw.account, before + draw.amount)
    for account, amount in consumed.values():
        if amount > 0:
            settlement_entry(plan, charge, account, OperationType.CONSUME, amount)
    for account, amount in given_back:
        give_back(plan, charge, account, amount)

    # On the lines: each line's held part and overage in one DEBT entry, as on accounts.
    by_pk = {line.pk: line for line in lines}
    owed: dict[int, list[Decimal]] = {}  # line → [held, consumed]
    for line, held in line_holdings:
        part = min(held, remaining)
        remaining -= part
        owed[line.pk] = [held, part]
    for draw in extra.on_lines:
        owed.setdefault(draw.line.pk, [ZERO, ZERO])[1] += draw.amount
    on_credit = ZERO
    for pk, (held, part) in owed.items():
        line = by_pk[pk]
        debts.owe(plan, line, part, held=min(held, part), **entry_fields(charge))
        debts.release(plan, line, held - min(held, part), **entry_fields(charge))
        on_credit += part
    debts.announce(plan, project=charge.project, customer_id=charge.customer.external_id)
    return [Detail.of(a, amount) for a, amount in consumed.values() if amount > 0], on_credit


def give_back(plan: Plan, charge: Transaction, account: CreditAccount, amount: Decimal):
    """Plan the UNFREEZE of credits a freeze returns to an account, and their expiry when the
    account has ended (see `return_credits`)."""
    if amount > 0:
        settlement_entry(plan, charge, account, OperationType.UNFREEZE, amount)
        expire_returned(plan, charge.project, charge.customer.external_id, account, amount)


def expire_returned(
    plan: Plan, project: Project, customer_id: str, account: CreditAccount, amount: Decimal
) -> None:
    """Credits just returned to `account` (an unfreeze, a consume's rest, a refund) expire at
    once when the account has ended (expired or voided): only the returned credits if its end
    is recorded already, else everything it has left, recording its end here, so that each
    credit still expires exactly once. Plan every other change of the account first."""
    if not account.has_ended_by(plan.now):
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
            plan, project=project, customer_id=customer_id, account=account, amount=expiring
        )


def entry_fields(charge: Transaction) -> dict[str, str]:
    return {
        "transaction_id": charge.transaction_id,
        "business_type": charge.business_type,
        "description": charge.description,
    }


def settlement_entry(
    plan: Plan,
    charge: Transaction,
    account: CreditAccount,
    operation_type: str,
    amount: Decimal,
) -> None:
    plan.entry(account, operation_type, amount, **entry_fields(charge))


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
