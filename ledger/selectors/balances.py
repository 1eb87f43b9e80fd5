"""A customer's balance: totals, open accounts and the per-wallet breakdown, at one instant."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from credits_project.errors import CustomerNotFound
from credits_project.sql import fetch, instant
from customers.models import CUSTOMER, Customer, Project
from ledger.models import CreditAccount, CreditLine, SpentCredits
from ledger.models.accounts import ACCOUNT, consumption_order_sql
from ledger.money import ZERO, from_micros
from ledger.results import (
    AccountBalance,
    Counters,
    CustomerBalance,
    SourceBalance,
    WalletBalance,
)


def customer_balance(
    project: Project, customer_id: str, *, at: dt.datetime | None = None
) -> CustomerBalance:
    """The customer with its balance, open accounts and per-wallet breakdown at `at` (now).

    Totals cover every active account. The open ones (credits left to spend or frozen) are
    read one by one and listed; the used-up ones count through their wallet's `SpentCredits`,
    so the read costs the same however many deposits the customer has spent. Sums are exact
    `Decimal` additions in Python, never SQL integer sums.
    """
    at = at or timezone.now()
    customer, accounts = customer_with_open_accounts(project, customer_id)
    return summarize(
        customer,
        accounts,
        spent_by_wallet(customer.pk, at),
        at,
        lines=CreditLine.objects.of(customer),
    )


def customer_with_open_accounts(
    project: Project, customer_id: str
) -> tuple[Customer, list[CreditAccount]]:
    """The customer and its accounts with credits not used up (whatever their validity
    window), in consumption order, in one statement; `CustomerNotFound` when there is none."""
    rows = fetch(
        f"SELECT {CUSTOMER.sql('c')}, {ACCOUNT.sql('a')} FROM customers_customer c "
        "LEFT JOIN ledger_creditaccount a ON a.customer_id = c.id AND a.used < a.total "
        "WHERE c.project_id = %s AND c.external_id = %s "
        f"ORDER BY {consumption_order_sql('a')}",
        [project.pk, customer_id],
    )
    if not rows:
        raise CustomerNotFound({"customer_id": customer_id})
    accounts = [ACCOUNT.load_row(row[CUSTOMER.width :]) for row in rows if row[CUSTOMER.width]]
    return CUSTOMER.load_row(rows[0]), accounts


def renderable_metadata(stored: object) -> dict:
    """The stored metadata when it is what the API takes (an object), else none: a value the
    API never writes (put there by hand, or by an older console) must not fail the read."""
    return stored if isinstance(stored, dict) else {}


def summarize(
    customer: Customer,
    open_accounts: list[CreditAccount],
    spent: dict[str, Decimal],
    at: dt.datetime,
    *,
    lines: list[CreditLine] = (),
) -> CustomerBalance:
    """The customer read from its open accounts (those active at `at` count and are listed),
    the credits of its used-up active accounts per wallet (`spent`) and its credit `lines`:
    each line's limit and debt are given with the balance, and with its wallet's sums for a
    wallet's line; what freezes hold on it counts as frozen, and its headroom as available."""
    active = [account for account in open_accounts if account.is_active_at(at)]
    balance = Counters(ZERO, ZERO, ZERO, ZERO)
    wallets: dict[str, WalletBalance] = {}
    groups: dict[tuple, SourceBalance] = {}
    for name, total in spent.items():
        wallets[name] = WalletBalance(total, total, ZERO, ZERO, [])
        add(balance, total, total, ZERO)
    for account in active:
        wallet = wallets.setdefault(account.wallet, WalletBalance(ZERO, ZERO, ZERO, ZERO, []))
        key = (account.wallet, account.source, account.starts_at, account.expires_at)
        if key not in groups:
            groups[key] = SourceBalance(
                account.source, ZERO, ZERO, ZERO, ZERO, account.starts_at, account.expires_at
            )
            wallet.sources.append(groups[key])
        for sums in (balance, wallet, groups[key]):
            add(sums, account.total, account.used, account.frozen)

    if lines:
        add_lines(balance, wallets, lines)
    listed = sorted(active, key=lambda a: a.wallet != "default")  # stable: keeps order
    return CustomerBalance(
        id=customer.external_id,
        name=customer.name,
        email=customer.email,
        metadata=renderable_metadata(customer.metadata),
        created_at=customer.created_at,
        balance=balance,
        accounts=[
            AccountBalance(
                account_id=str(a.pk),
                account_type="CREDIT",
                credit_type=a.wallet,
                wallet=a.wallet,
                source=a.source,
                total=a.total,
                used=a.used,
                frozen=a.frozen,
                available=a.available,
                starts_at=a.starts_at,
                expires_at=a.expires_at,
            )
            for a in listed
        ],
        wallets=dict(sorted(wallets.items())),
    )


def add_lines(
    balance: Counters, wallets: dict[str, WalletBalance], lines: list[CreditLine]
) -> None:
    balance.credit_limit = balance.debt = ZERO
    for line in lines:
        sums: list[Counters | WalletBalance] = [balance]
        if not line.covers_every_wallet:
            wallet = wallets.setdefault(line.wallet, WalletBalance(ZERO, ZERO, ZERO, ZERO, []))
            wallet.credit_limit = (wallet.credit_limit or ZERO) + line.credit_limit
            wallet.debt = (wallet.debt or ZERO) + line.debt
            sums.append(wallet)
        balance.credit_limit += line.credit_limit
        balance.debt += line.debt
        for counters in sums:
            counters.frozen += line.frozen
            counters.available += line.headroom


def add(sums: Counters | WalletBalance | SourceBalance, total, used, frozen) -> None:
    sums.total += total
    sums.used += used
    sums.frozen += frozen
    sums.available += total - used - frozen


def spent_by_wallet(customer_pk: int, at: dt.datetime) -> dict[str, Decimal]:
    """Credits of used-up accounts still active at `at`, per wallet: the customer's
    `SpentCredits` less the used-up accounts already past `expires_at` whose expiry the
    scheduler has not recorded yet (a handful at most, found by `account_spent_expiring`)."""
    rows = fetch(
        "SELECT wallet, total, 1 FROM ledger_spentcredits WHERE customer_id = %s "
        "UNION ALL SELECT wallet, CAST(total AS TEXT), 0 FROM ledger_creditaccount "
        "WHERE customer_id = %s AND used = total AND expiry_recorded_at IS NULL "
        "AND expires_at IS NOT NULL AND expires_at <= %s",
        [customer_pk, customer_pk, instant(at)],
    )
    total = SpentCredits._meta.get_field("total")
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for wallet, amount, is_sum in rows:
        if is_sum:
            spent[wallet] += total.from_db_value(amount, None, connection)
        else:
            spent[wallet] -= from_micros(int(amount))
    return {wallet: amount for wallet, amount in spent.items() if amount}
