"""Voids: ending a credit account early, as when the payment that bought it is reversed.

`remainder` (the default) ends the account's unused credits now with a VOID entry: it stops
counting as an expiry would, and its end is recorded, so credits an open freeze holds on it stay
held, and whatever comes back to it later expires at once. `clawback` also takes back what was
consumed from it, as debt on the customer's credit line in the account's wallet (opened, with no
limit, if there is none): the customer owes those credits again, and its next deposits into the
wallet pay them back first. A dry run answers the entries the void would write and writes none.
"""

import datetime as dt
from typing import Literal

from django.db import transaction

from credits_project.errors import AccountAlreadyVoided, AccountNotFound, DebtTooLarge
from credits_project.statements import update_now
from customers.models import Project
from ledger.models import CreditAccount, CreditLine, LedgerEntry, OperationType, Transaction
from ledger.models.credit_lines import MAX_LINE_DEBT
from ledger.money import ZERO
from ledger.results import VoidEntry, VoidResult
from ledger.services import debts
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_customer, now_under_lock
from ledger.services.plan import Plan, apply

Mode = Literal["remainder", "clawback"]


@retry_on_identity_race
def void(
    *,
    project: Project,
    customer_id: str,
    account_id: int,
    void_id: str,
    actor: str,
    mode: Mode = "remainder",
    description: str = "",
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> VoidResult:
    """Void one of the customer's accounts (see the module). A repeat of `void_id` replays
    the original answer; the same id for another account or mode is a conflict. A dry run
    looks at no earlier void and changes nothing.

    Raises `AccountNotFound` for another customer's account and `AccountAlreadyVoided` when
    an earlier void ended it.
    """
    request = fingerprint(account_id=account_id, mode=mode)
    with transaction.atomic():
        locked = lock_customer(project, customer_id, charge_id=void_id, kinds="('VOID')")
        customer = locked.customer
        if locked.earlier is not None and not dry_run:
            check_repeat(
                locked.earlier, customer=customer, request=request, kind=Transaction.Kind.VOID
            )
            return replay(locked.earlier, customer_id)
        now = now_under_lock(now)
        account = CreditAccount.objects.of_customer(account_id, customer.pk)
        if account is None:
            raise AccountNotFound({"account_id": str(account_id)})
        if account.voided_at is not None:
            raise AccountAlreadyVoided({"account_id": str(account_id)})

        plan = Plan(actor=actor, now=now)
        entry = {
            "transaction_id": void_id,
            "business_type": account.business_type,
            "description": description,
        }
        # An end recorded already (an expiry) took the remainder then.
        voided = account.available if account.expiry_recorded_at is None else ZERO
        if account.expiry_recorded_at is None:
            plan.change(account, records_expiry=True)
        if voided > 0:
            plan.entry(account, OperationType.VOID, voided, **entry)
        clawed = account.used if mode == "clawback" else ZERO
        if clawed > 0:
            line = next((x for x in locked.lines if x.wallet == account.wallet), None)
            line = line or debts.open_line(plan, customer, account.wallet)
            if line.debt + clawed > MAX_LINE_DEBT:
                raise DebtTooLarge({"debt": line.debt + clawed, "maximum": MAX_LINE_DEBT})
            # Not under the void's id: charge ids name DEBT entries (the void's row says
            # what it clawed back).
            debts.owe(
                plan,
                line,
                clawed,
                transaction_id=None,
                business_type=account.business_type,
                description=f"void {void_id}: {description}".rstrip(": "),
            )
            debts.announce(plan, project=project, customer_id=customer_id)
        result = VoidResult(
            void_id=void_id,
            customer_id=customer_id,
            account_id=str(account.pk),
            mode=mode,
            voided_amount=voided,
            clawed_back_amount=clawed,
            entries=[entry_of(e) for e in plan.entries],
            voided_at=now,
            dry_run=dry_run,
            is_idempotent_replay=False,
        )
        if dry_run:
            return result
        plan.insert(
            Transaction(
                project=project,
                customer=customer,
                kind=Transaction.Kind.VOID,
                transaction_id=void_id,
                state=Transaction.State.VOIDED,
                fingerprint=request,
                amount=voided,
                consumed_amount=clawed if mode == "clawback" else None,
                account=account,
                business_type=account.business_type,
                description=description,
                created_at=now,
                settled_at=now,
            )
        )
        account.voided_at = now
        # Its own statement: the plan updates the same row's counters.
        update_now(account, ["voided_at"])
        apply(plan)
    return result


def entry_of(entry: LedgerEntry) -> VoidEntry:
    if entry.credit_line is not None:
        line: CreditLine = entry.credit_line
        return VoidEntry(entry.operation_type, entry.amount, None, line.wallet)
    return VoidEntry(
        entry.operation_type, entry.amount, str(entry.account.pk), entry.account.wallet
    )


def replay(original: Transaction, customer_id: str) -> VoidResult:
    parts = LedgerEntry.objects.parts_of(
        original.customer_id, original.transaction_id, OperationType.VOID
    )
    entries = [VoidEntry(p.operation_type, p.amount, p.account_id, p.wallet) for p in parts]
    if original.consumed_amount:
        wallet = CreditAccount.objects.values_list("wallet", flat=True).get(pk=original.account_id)
        entries.append(VoidEntry(OperationType.DEBT, original.consumed_amount, None, wallet))
    return VoidResult(
        void_id=original.transaction_id,
        customer_id=customer_id,
        account_id=str(original.account_id),
        mode="clawback" if original.consumed_amount is not None else "remainder",
        voided_amount=original.amount,
        clawed_back_amount=original.consumed_amount or ZERO,
        entries=entries,
        voided_at=original.created_at,
        dry_run=False,
        is_idempotent_replay=True,
    )
