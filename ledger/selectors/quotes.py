"""What a deduct would draw, worked out without writing or locking anything."""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils import timezone

from customers.models import Project
from ledger.models import CreditLine
from ledger.results import Counters, Detail, QuoteResult
from ledger.rules import take
from ledger.selectors.balances import (
    customer_with_open_accounts,
    spent_by_wallet,
    summarize,
)


def quote(
    project: Project,
    customer_id: str,
    amount: Decimal,
    wallets: Sequence[str] | None = None,
    *,
    at: dt.datetime | None = None,
) -> QuoteResult:
    """The accounts a deduct of `amount` would draw now, in order, and the balance after it;
    or the error that deduct would get (`insufficient_balance`, `customer_not_found`, ...).

    The draw is the deduct's own (`take`) over the same accounts, read in one statement; a
    deduct made later draws the same accounts unless the customer's credits change meanwhile.
    """
    at = at or timezone.now()
    customer, accounts = customer_with_open_accounts(project, customer_id)
    lines = CreditLine.objects.of(customer)
    # What a charge may draw on: credits neither used nor frozen, expiry not yet recorded.
    with_credits = [a for a in accounts if a.available > 0 and a.expiry_recorded_at is None]
    taken = take(with_credits, amount, wallets, at, lines=lines)
    spent = spent_by_wallet(customer.pk, at)
    before = summarize(customer, accounts, spent, at, lines=lines).balance
    on_credit = taken.on_credit
    return QuoteResult(
        customer_id=customer_id,
        amount=amount,
        quote_details=[Detail.of(part.account, part.amount) for part in taken.draws],
        balance_before=before,
        balance_after=Counters(
            total=before.total,
            used=before.used + amount - on_credit,
            frozen=before.frozen,
            available=before.available - amount,
            credit_limit=before.credit_limit,
            debt=None if before.debt is None else before.debt + on_credit,
        ),
        quoted_at=at,
        on_credit_amount=on_credit or None,
    )
