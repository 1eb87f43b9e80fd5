"""Credit limits: how far a customer may spend past its credits, in one wallet or in all.

Setting a limit opens the customer's line for the wallet (or changes its limit); 0 takes the
limit away (the line stays, with what is still owed on it). Every limit set is recorded
(`CreditLimitChange`), under the customer's lock like every charge, so no charge can pass a
limit being lowered.
"""

import datetime as dt
from decimal import Decimal

from django.db import transaction

from customers.models import Project
from ledger.models import CreditLimitChange
from ledger.models.credit_lines import WHOLE_CUSTOMER
from ledger.results import CreditLimitResult
from ledger.services import debts
from ledger.services.locks import lock_customer, now_under_lock
from ledger.services.plan import Plan, apply


def set_credit_limit(
    *,
    project: Project,
    customer_id: str,
    limit: Decimal,
    actor: str,
    wallet: str | None = None,
    now: dt.datetime | None = None,
) -> CreditLimitResult:
    """Set the customer's credit limit in `wallet` (None: across all its wallets). Raises
    `CustomerNotFound` for an unknown customer. Setting the same limit again changes nothing
    but records it once more."""
    scope = wallet or WHOLE_CUSTOMER
    with transaction.atomic():
        locked = lock_customer(project, customer_id, charge_id="")
        now = now_under_lock(now)
        plan = Plan(actor=actor, now=now)
        line = next((x for x in locked.lines if x.wallet == scope), None)
        if line is None:
            line = debts.open_line(plan, locked.customer, scope)
            line.credit_limit = limit
        elif line.credit_limit != limit:
            line.credit_limit = limit
            plan.update(line, ["credit_limit"])
        plan.insert(
            CreditLimitChange(
                customer=locked.customer,
                wallet=scope,
                credit_limit=limit,
                actor=actor,
                created_at=now,
            )
        )
        apply(plan)
    return CreditLimitResult(
        customer_id=customer_id,
        wallet=wallet,
        credit_limit=line.credit_limit,
        debt=line.debt,
        frozen=line.frozen,
        available_on_credit=line.headroom,
        updated_at=now,
    )
