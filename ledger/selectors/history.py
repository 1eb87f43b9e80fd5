"""A customer's balance as it was at an earlier instant, replayed from its own ledger.

The accounts that existed then get the counters their entries up to that instant give them
(the replay rules of `ledger.rules.Replayed`), and their validity windows are judged at that
instant; the read is then summed exactly as the live one. Its cost grows with the customer's
entries, never with the whole ledger (`entry_walk` leads with the customer).
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from credits_project.errors import CustomerNotFound
from credits_project.sql import fetch, instant
from customers.models import CUSTOMER, Project
from ledger.models import LedgerEntry
from ledger.models.accounts import ACCOUNT, consumption_order_sql
from ledger.results import CustomerBalance
from ledger.rules import Replayed
from ledger.selectors.balances import summarize


def customer_balance_as_of(
    project: Project, customer_id: str, as_of: dt.datetime
) -> CustomerBalance:
    """The customer read as it was at `as_of`; `CustomerNotFound` if it did not exist yet."""
    rows = fetch(
        f"SELECT {CUSTOMER.sql()} FROM customers_customer "
        "WHERE project_id = %s AND external_id = %s AND created_at <= %s",
        [project.pk, customer_id, instant(as_of)],
    )
    if not rows:
        raise CustomerNotFound({"customer_id": customer_id})
    customer = CUSTOMER.load_row(rows[0])
    accounts = ACCOUNT.load(
        fetch(
            f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount "
            "WHERE customer_id = %s AND created_at <= %s "
            f"ORDER BY {consumption_order_sql()}",
            [customer.pk, instant(as_of)],
        )
    )
    replayed: dict[int, Replayed] = defaultdict(Replayed)
    entries = LedgerEntry.objects.filter(customer_id=customer.pk, created_at__lte=as_of)
    for entry in entries.order_by("id").only(
        "account_id", "operation_type", "amount", "transaction_id"
    ):
        replayed[entry.account_id].apply(entry)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for account in accounts:
        then = replayed[account.pk]
        account.total, account.used, account.frozen = then.total, then.used, then.frozen
        if account.total and account.used == account.total and account.is_active_at(as_of):
            spent[account.wallet] += account.total
    still_open = [account for account in accounts if account.used < account.total]
    return summarize(customer, still_open, dict(spent), as_of)
