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
from customers.models import CUSTOMER, Customer, Project
from ledger.models import CreditLimitChange, CreditLine, LedgerEntry
from ledger.models.accounts import ACCOUNT, consumption_order_sql
from ledger.money import ZERO
from ledger.results import CustomerBalance
from ledger.rules import LineReplayed, Replayed
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
    on_lines: dict[int, LineReplayed] = defaultdict(LineReplayed)
    entries = LedgerEntry.objects.filter(customer_id=customer.pk, created_at__lte=as_of)
    for entry in entries.order_by("id").only(
        "account_id", "credit_line_id", "operation_type", "amount", "transaction_id"
    ):
        if entry.account_id is not None:
            replayed[entry.account_id].apply(entry)
        if entry.credit_line_id is not None:
            on_lines[entry.credit_line_id].apply(entry)
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for account in accounts:
        then = replayed[account.pk]
        account.total, account.used, account.frozen = then.total, then.used, then.frozen
        if account.total and account.used == account.total and account.is_active_at(as_of):
            spent[account.wallet] += account.total
    still_open = [account for account in accounts if account.used < account.total]
    lines = lines_as_of(customer, as_of, on_lines) if customer.has_credit_line else []
    return summarize(customer, still_open, dict(spent), as_of, lines=lines)


def lines_as_of(
    customer: Customer, as_of: dt.datetime, replayed: dict[int, LineReplayed]
) -> list[CreditLine]:
    """The customer's credit lines as they were at `as_of`: the limit last set by then, and
    what their entries up to then owe and hold."""
    limits: dict[str, Decimal] = {}
    for change in CreditLimitChange.objects.filter(
        customer=customer, created_at__lte=as_of
    ).order_by("created_at", "id"):
        limits[change.wallet] = change.credit_limit
    lines = []
    for line in CreditLine.objects.filter(customer=customer, created_at__lte=as_of).order_by("id"):
        then = replayed[line.pk]
        line.credit_limit = limits.get(line.wallet, ZERO)
        line.debt, line.frozen = then.debt, then.frozen
        lines.append(line)
    return lines
