"""A freeze's or deduct's current state, for a client that lost track of it."""

from credits_project.errors import TransactionNotFound
from credits_project.sql import fetch
from customers.models import Project
from ledger.models import LedgerEntry, OperationType, Transaction
from ledger.models.transactions import CHARGE_KINDS_SQL, TRANSACTION
from ledger.money import ZERO
from ledger.results import Detail, TransactionState, on_credit

# What `details` lists in each state: the holdings of a frozen freeze, the charges of a
# consumed freeze or a deduct, nothing for an unfrozen freeze; and what the charge drew on
# credit lines in that state.
DETAILS_BY_STATE = {
    Transaction.State.FROZEN: (OperationType.FREEZE, OperationType.FREEZE),
    Transaction.State.CONSUMED: (OperationType.CONSUME, OperationType.DEBT),
    Transaction.State.DEDUCTED: (OperationType.CONSUME, OperationType.DEBT),
}


def transaction_state(project: Project, transaction_id: str) -> TransactionState:
    rows = fetch(
        f"SELECT {TRANSACTION.sql('t')}, c.external_id FROM ledger_transaction t "
        "JOIN customers_customer c ON c.id = t.customer_id "
        f"WHERE t.project_id = %s AND t.transaction_id = %s AND t.kind IN {CHARGE_KINDS_SQL}",
        [project.pk, transaction_id],
    )
    if not rows:
        raise TransactionNotFound({"transaction_id": transaction_id})
    charge = TRANSACTION.load_row(rows[0])
    listed, on_lines = DETAILS_BY_STATE.get(charge.state, (None, None))
    parts = (
        LedgerEntry.objects.parts_of(charge.customer_id, charge.transaction_id, listed, on_lines)
        if listed
        else []
    )
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
        details=Detail.listed(parts, listed) if listed else [],
        created_at=charge.created_at,
        settled_at=charge.settled_at,
        refunded_amount=charge.refunded_amount,
        on_credit_amount=on_credit(parts, on_lines) if on_lines else None,
    )
