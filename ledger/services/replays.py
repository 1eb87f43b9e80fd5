"""The answer to a repeated operation, rebuilt from what the ledger recorded.

An operation's entries carry its `transaction_id`, and its `Transaction` row the amounts and
instants it answered with, so a replay is the original answer (flagged as a replay) without a
stored copy of it.
"""

from credits_project.sql import fetch
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.models.accounts import ACCOUNT
from ledger.models.entries import Part
from ledger.money import from_micros
from ledger.results import (
    ConsumeResult,
    DeductResult,
    DepositResult,
    Detail,
    FreezeResult,
    UnfreezeResult,
    on_credit,
)


def parts(charge: Transaction, *operation_types: str) -> list[Part]:
    return LedgerEntry.objects.parts_of(charge.customer_id, charge.transaction_id, *operation_types)


def deposit(original: Transaction, customer_id: str) -> DepositResult:
    row = fetch(
        f"SELECT {ACCOUNT.sql('a')}, e.id, e.amount, ("
        # What it paid of a debt: its REPAY entries (one per line at most).
        "SELECT SUM(r.amount) FROM ledger_ledgerentry r WHERE r.customer_id = e.customer_id "
        "AND r.transaction_id = e.transaction_id AND r.operation_type = %s) "
        "FROM ledger_ledgerentry e JOIN ledger_creditaccount a ON a.id = e.account_id "
        "WHERE e.customer_id = %s AND e.transaction_id = %s AND e.operation_type = %s",
        [
            OperationType.REPAY,
            original.customer_id,
            original.transaction_id,
            OperationType.GRANT,
        ],
    )[0]
    account: CreditAccount = ACCOUNT.load_row(row)
    record_id, added, repaid = row[ACCOUNT.width :]
    return DepositResult(
        customer_id=customer_id,
        account_id=str(account.pk),
        wallet=account.wallet,
        credit_type=account.wallet,
        source=account.source,
        total_amount=account.total,
        added_amount=from_micros(added),
        starts_at=account.starts_at,
        expires_at=account.expires_at,
        record_id=str(record_id),
        is_idempotent_replay=True,
        repaid_amount=from_micros(int(repaid)) if repaid else None,
    )


def freeze(charge: Transaction) -> FreezeResult:
    held = parts(charge, OperationType.FREEZE)
    return FreezeResult(
        transaction_id=charge.transaction_id,
        frozen_amount=charge.amount,
        freeze_details=Detail.listed(held, OperationType.FREEZE),
        unfreeze_after=charge.unfreeze_after,
        consume_after=charge.consume_after,
        is_idempotent_replay=True,
        on_credit_amount=on_credit(held, OperationType.FREEZE),
    )


def deduct(charge: Transaction) -> DeductResult:
    charged = parts(charge, OperationType.CONSUME, OperationType.DEBT)
    return DeductResult(
        transaction_id=charge.transaction_id,
        deducted_amount=charge.amount,
        deduct_details=Detail.listed(charged, OperationType.CONSUME),
        deducted_at=charge.created_at,
        is_idempotent_replay=True,
        on_credit_amount=on_credit(charged, OperationType.DEBT),
    )


def consume(charge: Transaction) -> ConsumeResult:
    charged = parts(charge, OperationType.CONSUME, OperationType.DEBT)
    return ConsumeResult(
        transaction_id=charge.transaction_id,
        consumed_amount=charge.consumed_amount,
        returned_amount=charge.returned_amount or None,
        overage_amount=charge.overage_amount or None,
        consume_details=Detail.listed(charged, OperationType.CONSUME),
        consumed_at=charge.settled_at,
        is_idempotent_replay=True,
        on_credit_amount=on_credit(charged, OperationType.DEBT),
    )


def unfreeze(charge: Transaction) -> UnfreezeResult:
    # Every credit the freeze held went back: the holdings are the details.
    held = parts(charge, OperationType.FREEZE)
    return UnfreezeResult(
        transaction_id=charge.transaction_id,
        unfrozen_amount=charge.amount,
        unfreeze_details=Detail.listed(held, OperationType.FREEZE),
        unfrozen_at=charge.settled_at,
        is_idempotent_replay=True,
        on_credit_amount=on_credit(held, OperationType.FREEZE),
    )
