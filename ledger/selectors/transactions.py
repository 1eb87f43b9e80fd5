"""A freeze's or deduct's current state, for a client that lost track of it."""

from credits_project.errors import TransactionNotFound
from credits_project.sql import fetch
from customers.models import Project
from ledger.models import LedgerEntry, OperationType, Transaction
from ledger.models.transactions import TRANSACTION
from ledger.money import ZERO
from ledger.results import Detail, TransactionState

# What `details` lists in each state: the holdings of a frozen freeze, the charges of a
# consumed freeze or a deduct, nothing for an unfrozen freeze.
DETAILS_BY_STATE = {
    Transaction.State.FROZEN: OperationType.FREEZE,
    Transaction.State.CONSUMED: OperationType.CONSUME,
    Transaction.State.DEDUCTED: OperationType.CONSUME,
}


def transaction_state(project: Project, transaction_id: str) -> TransactionState:
    rows = fetch(
        f"SELECT {TRANSACTION.sql('t')}, c.external_id FROM ledger_transaction t "
        "JOIN customers_customer c ON c.id = t.customer_id "
        "WHERE t.project_id = %s AND t.transaction_id = %s AND t.kind <> 'DEPOSIT'",
        [project.pk, transaction_id],
    )
    if not rows:
        raise TransactionNotFound({"transaction_id": transaction_id})
    charge = TRANSACTION.load_row(rows[0])
    listed = DETAILS_BY_STATE.get(charge.state)
    return TransactionState(
        transaction_id=charge.transaction_id,
        customer_id=rows[0][TRANSACTION.width],
        kind=charge.kind,
        state=charge.state,
        settled_by=charge.settled_by,
        amount=charge.amount,
        frozen_amount=charge.amount if charge.state == Transaction.State.FROZEN else ZERO,
        consumed_amount=charge.consumed_amount or ZERO,
        returned_amount=charge.returned_amount or ZERO,
        overage_amount=charge.overage_amount or ZERO,
        unfreeze_after=charge.unfreeze_after,
        consume_after=charge.consume_after,
        business_type=charge.business_type,
        description=charge.description,
        details=Detail.listed(
            LedgerEntry.objects.parts_of(charge.customer_id, charge.transaction_id, listed)
        )
        if listed
        else [],
        created_at=charge.created_at,
        settled_at=charge.settled_at,
    )
