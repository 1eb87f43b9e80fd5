"""The answer to a repeated operation, rebuilt from what the ledger recorded.

An operation's entries carry its `transaction_id`, and its `Transaction` row the amounts and
instants it answered with, so a replay is the original answer (flagged as a replay) without a
stored copy of it.
"""

from credits_project.sql import fetch
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.models.accounts import ACCOUNT
from ledger.money import from_micros
from ledger.results import (
    ConsumeResult,
    DeductResult,
    DepositResult,
    Detail,
    FreezeResult,
    UnfreezeResult,
)


def details(charge: Transaction, operation_type: str) -> list[Detail]:
    """One item per account the transaction's entries of `operation_type` touched, in order."""
    return Detail.listed(
        LedgerEntry.objects.parts_of(charge.customer_id, charge.transaction_id, operation_type)
    )


def deposit(original: Transaction, customer_id: str) -> DepositResult:
    row = fetch(
        f"SELECT {ACCOUNT.sql('a')}, e.id, e.amount FROM ledger_ledgerentry e "
        "JOIN ledger_creditaccount a ON a.id = e.account_id "
        "WHERE e.customer_id = %s AND e.transaction_id = %s AND e.operation_type = %s",
        [original.customer_id, original.transaction_id, OperationType.GRANT],
    )[0]
    account: CreditAccount = ACCOUNT.load_row(row)
    record_id, added = row[ACCOUNT.width :]
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
    )


def freeze(charge: Transaction) -> FreezeResult:
    return FreezeResult(
        transaction_id=charge.transaction_id,
        frozen_amount=charge.amount,
        freeze_details=details(charge, OperationType.FREEZE),
        unfreeze_after=charge.unfreeze_after,
        consume_after=charge.consume_after,
        is_idempotent_replay=True,
    )


def deduct(charge: Transaction) -> DeductResult:
    return DeductResult(
        transaction_id=charge.transaction_id,
        deducted_amount=charge.amount,
        deduct_details=details(charge, OperationType.CONSUME),
        deducted_at=charge.created_at,
        is_idempotent_replay=True,
    )


def consume(charge: Transaction) -> ConsumeResult:
    return ConsumeResult(
        transaction_id=charge.transaction_id,
        consumed_amount=charge.consumed_amount,
        returned_amount=charge.returned_amount or None,
        overage_amount=charge.overage_amount or None,
        consume_details=details(charge, OperationType.CONSUME),
        consumed_at=charge.settled_at,
        is_idempotent_replay=True,
    )


def unfreeze(charge: Transaction) -> UnfreezeResult:
    # Every credit the freeze held went back: the holdings are the details.
    return UnfreezeResult(
        transaction_id=charge.transaction_id,
        unfrozen_amount=charge.amount,
        unfreeze_details=details(charge, OperationType.FREEZE),
        unfrozen_at=charge.settled_at,
        is_idempotent_replay=True,
    )
