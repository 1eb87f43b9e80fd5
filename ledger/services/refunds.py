"""Refunds: a deduct's or a consumed freeze's credits put back where they came from.

A refund puts back exactly the slices the charge drew (its CONSUME entries on accounts, its
DEBT entries on credit lines), the last slice drawn first, onto the same accounts with their
own wallet, source and expiry (REFUND entries). A slice whose account has expired or been
voided since is put back and expires at once (an EXPIRE entry). A slice drawn on a credit line
takes the debt down instead; what of it the customer already paid back returns as new credits,
in one account (source `refund`, a GRANT entry, listed last). Credits put back on an account
whose void clawed its consumption back pay that clawback's debt first (a REPAY entry). Each
refund is named by its own `refund_id`; the charge keeps the running total (`refunded_amount`,
which the database holds within what it consumed), so its refunds never put back more than it
charged, however they race: every refund of one charge locks its customer first.
"""

import datetime as dt
from decimal import Decimal

from django.db import transaction

from credits_project.errors import NotRefundable, RefundExceedsCharge, TransactionNotFound
from credits_project.sql import fetch, placeholders
from customers.models import Project
from ledger.models import CreditAccount, CreditLine, LedgerEntry, OperationType, Transaction
from ledger.models.accounts import ACCOUNT
from ledger.models.transactions import TRANSACTION
from ledger.money import ZERO, from_micros
from ledger.results import Detail, RefundResult
from ledger.rules import refund_slices
from ledger.services import debts, events
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_customer_of_charge, now_under_lock
from ledger.services.plan import Plan, apply
from ledger.services.settlements import expire_returned

REFUNDABLE = (Transaction.State.DEDUCTED, Transaction.State.CONSUMED)
REFUND_SOURCE = "refund"


@retry_on_identity_race
def refund(
    *,
    project: Project,
    transaction_id: str,
    refund_id: str,
    actor: str,
    amount: Decimal | None = None,
    description: str = "",
    now: dt.datetime | None = None,
) -> RefundResult:
    """Put back `amount` (default: all the charge has left to refund) of the deduct or
    consumed freeze `transaction_id` (see the module). A repeat of `refund_id` replays the
    original answer; the same id with another charge or amount is a conflict.
    """
    request = fingerprint(transaction_id=transaction_id, amount=amount)
    with transaction.atomic():
        found = lock_customer_of_charge(project, transaction_id)
        if found is None:
            raise TransactionNotFound({"transaction_id": transaction_id})
        charge, lines = found
        earlier = refund_named(project, refund_id)
        if earlier is not None:
            check_repeat(
                earlier, customer=charge.customer, request=request, kind=Transaction.Kind.REFUND
            )
            return replay(earlier, charge)
        now = now_under_lock(now)
        if charge.state not in REFUNDABLE:
            raise NotRefundable({"transaction_id": transaction_id, "state": charge.state})
        remaining = charge.consumed_amount - charge.refunded_amount
        wanted = remaining if amount is None else amount
        if wanted <= 0 or wanted > remaining:
            raise RefundExceedsCharge({"requested": wanted, "remaining_refundable": remaining})

        plan = Plan(actor=actor, now=now)
        entry = {
            "transaction_id": refund_id,
            "business_type": charge.business_type,
            "description": description,
        }
        put_back: list[tuple[CreditAccount, Decimal]] = []
        debt_reduced = paid_back = ZERO
        by_line = {line.pk: line for line in lines}
        drawn = slices(charge, by_line)
        clawbacks = clawbacks_of([t for t, _ in drawn if isinstance(t, CreditAccount)])
        for target, part in refund_slices(drawn, charge.refunded_amount, wanted):
            if isinstance(target, CreditAccount):
                plan.change(target, used=-part)
                plan.entry(target, OperationType.REFUND, part, **entry)
                undone = undo_clawback(plan, clawbacks.get(target.pk), target, part, lines, entry)
                expire_returned(plan, project, charge.customer.external_id, target, part - undone)
                put_back.append((target, part))
                continue
            owed = target.debt + plan.change_line(target).debt
            reduced = min(part, owed)
            if reduced > 0:
                plan.change_line(target, debt=-reduced)
                plan.line_entry(target, OperationType.REFUND, reduced, **entry)
                debt_reduced += reduced
            paid_back += part - reduced
        opened = None
        if paid_back > 0:  # drawn on credit and already paid back: granted again, last
            opened = plan.open_account(
                CreditAccount(
                    customer=charge.customer,
                    wallet=regrant_wallet(charge, drawn),
                    source=REFUND_SOURCE,
                    total=paid_back,
                    business_type=charge.business_type,
                    created_at=now,
                )
            )
            # Not under the refund's id: deposit keys name GRANT entries (the refund's row
            # names this account instead).
            plan.entry(
                opened,
                OperationType.GRANT,
                paid_back,
                transaction_id=None,
                business_type=charge.business_type,
                description=f"refund {refund_id}: {description}".rstrip(": "),
            )
            put_back.append((opened, paid_back))

        charge.refunded_amount += wanted
        plan.update(charge, ["refunded_amount"])
        recorded = Transaction(
            project=project,
            customer=charge.customer,
            kind=Transaction.Kind.REFUND,
            transaction_id=refund_id,
            state=Transaction.State.REFUNDED,
            fingerprint=request,
            amount=wanted,
            refunded=charge,
            account=opened,
            business_type=charge.business_type,
            description=description,
            created_at=now,
            settled_at=now,
        )
        plan.insert(recorded)
        debts.announce(plan, project=project, customer_id=charge.customer.external_id)
        events.refunded(plan, recorded, customer_id=charge.customer.external_id, parts=put_back)
        apply(plan)
    return RefundResult(
        transaction_id=transaction_id,
        refund_id=refund_id,
        refunded_amount=wanted,
        refund_details=[Detail.of(account, part) for account, part in put_back],
        remaining_refundable=remaining - wanted,
        refunded_at=now,
        is_idempotent_replay=False,
        debt_reduced_amount=debt_reduced or None,
    )


def regrant_wallet(charge: Transaction, drawn: list[tuple[object, Decimal]]) -> str:
    """Where credits drawn on credit and paid back since come back: the wallet of the first
    line the charge drew on, or, for the whole customer's line, the first wallet the charge
    could draw on ("default" when it was unrestricted)."""
    line = next(t for t, _ in drawn if isinstance(t, CreditLine))
    if line.wallet:
        return line.wallet
    return charge.wallets[0] if charge.wallets else "default"


def clawbacks_of(accounts: list[CreditAccount]) -> dict[int, Transaction]:
    """The clawback voids of these accounts, by account (a statement only when one of them
    was voided)."""
    voided = [a.pk for a in accounts if a.voided_at is not None]
    if not voided:
        return {}
    found = TRANSACTION.load(
        fetch(
            f"SELECT {TRANSACTION.sql()} FROM ledger_transaction WHERE kind = 'VOID' "
            f"AND consumed_amount > 0 AND account_id IN ({placeholders(len(voided))})",
            voided,
        )
    )
    return {void.account_id: void for void in found}


def undo_clawback(
    plan: Plan,
    clawback: Transaction | None,
    account: CreditAccount,
    part: Decimal,
    lines: list[CreditLine],
    entry: dict[str, str | None],
) -> Decimal:
    """Credits put back on an account whose void clawed its consumption back: they pay the
    debt that clawback opened first (a REPAY entry), since what they refund is no longer
    owed. Returns how much of `part` they paid; the void keeps the running total within what
    it clawed back."""
    if clawback is None:
        return ZERO
    line = next((x for x in lines if x.wallet == account.wallet), None)
    if line is None:
        return ZERO
    owed = line.debt + plan.change_line(line).debt
    undone = min(part, clawback.consumed_amount - clawback.refunded_amount, owed)
    if undone <= 0:
        return ZERO
    plan.change(account, used=undone)
    plan.change_line(line, debt=-undone)
    plan.line_entry(line, OperationType.REPAY, undone, account=account, **entry)
    clawback.refunded_amount += undone
    plan.update(clawback, ["refunded_amount"])
    return undone


def slices(charge: Transaction, lines: dict[int, CreditLine]) -> list[tuple[object, Decimal]]:
    """What the charge drew, in the order it drew it: (account or line, amount)."""
    parts = LedgerEntry.objects.parts_of(
        charge.customer_id, charge.transaction_id, OperationType.CONSUME, OperationType.DEBT
    )
    ids = sorted({int(p.account_id) for p in parts if p.credit_line_id is None})
    accounts = {
        a.pk: a
        for a in ACCOUNT.load(
            fetch(
                f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount "
                f"WHERE id IN ({placeholders(len(ids))})",
                ids,
            )
            if ids
            else []
        )
    }
    return [
        (
            lines[int(p.credit_line_id)]
            if p.credit_line_id is not None
            else accounts[int(p.account_id)],
            p.amount,
        )
        for p in parts
    ]


def refund_named(project: Project, refund_id: str) -> Transaction | None:
    found = TRANSACTION.load(
        fetch(
            f"SELECT {TRANSACTION.sql()} FROM ledger_transaction "
            "WHERE project_id = %s AND transaction_id = %s AND kind = 'REFUND'",
            [project.pk, refund_id],
        )
    )
    return found[0] if found else None


def replay(original: Transaction, charge: Transaction) -> RefundResult:
    """The refund's answer again: what it put back, from its entries; what remained to
    refund after it, from the refunds of the charge up to it."""
    parts = LedgerEntry.objects.parts_of(
        original.customer_id, original.transaction_id, OperationType.REFUND
    )
    details = Detail.listed(parts, OperationType.REFUND)  # in the order it wrote them
    if original.account_id is not None:  # the credits already paid back, granted again
        opened = CreditAccount.objects.get(pk=original.account_id)
        details.append(Detail.of(opened, opened.total))
    reduced = sum((p.amount for p in parts if p.credit_line_id is not None), ZERO)
    [(refunded,)] = fetch(
        "SELECT SUM(amount) FROM ledger_transaction WHERE refunded_id = %s AND kind = 'REFUND' "
        "AND id <= %s",
        [charge.pk, original.pk],
    )
    return RefundResult(
        transaction_id=charge.transaction_id,
        refund_id=original.transaction_id,
        refunded_amount=original.amount,
        refund_details=details,
        remaining_refundable=charge.consumed_amount - from_micros(int(refunded)),
        refunded_at=original.created_at,
        is_idempotent_replay=True,
        debt_reduced_amount=reduced or None,
    )
