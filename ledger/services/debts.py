"""Credit lines in a plan: what a charge holds or owes on a customer's lines, what a deposit
pays back, and the events when a line's debt opens or clears (see `ledger.models.credit_lines`).
"""

from collections.abc import Sequence
from decimal import Decimal

from customers.models import Customer, Project
from ledger.models import BusinessType, CreditAccount, CreditLine, OperationType
from ledger.money import ZERO
from ledger.rules import repayments
from ledger.services import events
from ledger.services.plan import Plan


def hold(plan: Plan, line: CreditLine, amount: Decimal, **entry: str) -> None:
    """A freeze holds `amount` on the line (counted against its limit, owed once consumed)."""
    plan.change_line(line, frozen=amount)
    plan.line_entry(line, OperationType.FREEZE, amount, **entry)


def release(plan: Plan, line: CreditLine, amount: Decimal, **entry: str) -> None:
    """A freeze gives back what it held on the line."""
    if amount > 0:
        plan.change_line(line, frozen=-amount)
        plan.line_entry(line, OperationType.UNFREEZE, amount, **entry)


def owe(plan: Plan, line: CreditLine, amount: Decimal, *, held: Decimal = ZERO, **entry) -> None:
    """The customer owes `amount` on the line, `held` of it from what a freeze held there."""
    if amount > 0:
        plan.change_line(line, debt=amount, frozen=-held)
        plan.line_entry(line, OperationType.DEBT, amount, **entry)


def repay(
    plan: Plan,
    account: CreditAccount,
    lines: Sequence[CreditLine],
    *,
    transaction_id: str | None,
    description: str,
) -> Decimal:
    """Pay the debts of the wallet's line, then of the whole customer's, from the new
    `account` (credits deposited and active now), as far as its credits go: a REPAY entry for
    each line paid, on the account and the line at once. Returns how much it paid."""
    if not account.is_active_at(plan.now):
        return ZERO  # not started or already expired: nothing to pay with yet
    paid = ZERO
    for line, part in repayments(
        lines, account.wallet, account.total, debt_of=lambda x: x.debt + plan.change_line(x).debt
    ):
        plan.change_line(line, debt=-part)
        plan.line_entry(
            line,
            OperationType.REPAY,
            part,
            account=account,
            transaction_id=transaction_id,
            business_type=BusinessType.UNDEFINED,
            description=description,
        )
        paid += part
    if paid:
        account.used += paid  # a new account: inserted with what it paid already used
    return paid


def open_line(plan: Plan, customer: Customer, wallet: str) -> CreditLine:
    """A new line (limit 0) for the customer's wallet, and the customer marked as having
    lines."""
    line = plan.open_line(CreditLine(customer=customer, wallet=wallet, created_at=plan.now))
    if not customer.has_credit_line:
        customer.has_credit_line = True
        plan.update(customer, ["has_credit_line"])
    return line


def announce(
    plan: Plan, *, project: Project, customer_id: str, customer_pk: int | None = None
) -> None:
    """`credits.debt_opened` for each line whose debt the plan takes from none to some, and
    `credits.debt_cleared` for each it takes from some to none; of one customer's lines
    (`customer_pk`) when the plan writes for several. Call once, before `apply`."""
    for change in plan.line_changes.values():
        if customer_pk is not None and change.line.customer_id != customer_pk:
            continue
        before = change.line.debt
        after = before + change.debt
        if before == 0 < after:
            events.debt_changed(
                plan,
                project=project,
                customer_id=customer_id,
                line=change.line,
                opened=True,
                debt=after,
            )
        elif before > 0 == after:
            events.debt_changed(
                plan,
                project=project,
                customer_id=customer_id,
                line=change.line,
                opened=False,
                debt=after,
            )
