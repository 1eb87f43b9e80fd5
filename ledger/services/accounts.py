"""Which credits an operation takes: accounts in consumption order, and the draw from them.

Consumption order: among active accounts with available credits in the eligible wallets,
soonest `expires_at` first (never-expiring last), then oldest deposit, then lowest id.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from credits_project.errors import InsufficientBalance, InsufficientBalanceInSelectedCreditTypes
from credits_project.sql import Columns, fetch
from ledger.models import CreditAccount, OperationType
from ledger.money import ZERO, from_micros

ACCOUNT = Columns(
    CreditAccount,
    [
        "id",
        "customer",
        "wallet",
        "source",
        "total",
        "used",
        "frozen",
        "starts_at",
        "expires_at",
        "business_type",
        "created_at",
        "expiry_recorded_at",
    ],
)


@dataclass(frozen=True, slots=True)
class Draw:
    """Credits taken from one account."""

    account: CreditAccount
    amount: Decimal


def open_accounts(customer_pk: int) -> list[CreditAccount]:
    """The customer's accounts with credits to spend, in consumption order, whatever their
    wallet and validity window (see `spendable`): a charge reads them once it holds the
    customer's lock.

    An account whose expiry is recorded is never spent again, whatever the clock says: its
    remainder already has its EXPIRE entry.
    """
    return ACCOUNT.load(
        fetch(
            f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount WHERE customer_id = %s "
            # `used < total` is implied, but spelled out so that the partial index on open
            # accounts (`account_open_in_order`) applies.
            "AND used < total AND used + frozen < total AND expiry_recorded_at IS NULL "
            "ORDER BY expires_at IS NULL, expires_at, created_at, id",
            [customer_pk],
        )
    )


def spendable(
    accounts: Iterable[CreditAccount], wallets: Sequence[str] | None, now: dt.datetime
) -> list[CreditAccount]:
    """The accounts active at `now` in the eligible wallets (all when None), in their order."""
    return [
        a
        for a in accounts
        if (a.starts_at is None or a.starts_at <= now)
        and (a.expires_at is None or a.expires_at > now)
        and (wallets is None or a.wallet in wallets)
    ]


def held_by(customer_pk: int, transaction_id: str) -> list[tuple[CreditAccount, Decimal]]:
    """The accounts a freeze holds credits on, and how many: its FREEZE entries, in order."""
    rows = fetch(
        f"SELECT {ACCOUNT.sql('a')}, e.amount FROM ledger_ledgerentry e "
        "JOIN ledger_creditaccount a ON a.id = e.account_id "
        "WHERE e.customer_id = %s AND e.transaction_id = %s AND e.operation_type = %s "
        "ORDER BY e.id",
        [customer_pk, transaction_id, OperationType.FREEZE],
    )
    return [(ACCOUNT.load_row(row), from_micros(row[ACCOUNT.width])) for row in rows]


def draw(accounts: Iterable[CreditAccount], amount: Decimal) -> tuple[list[Draw], Decimal]:
    """Take `amount` from `accounts` in their order. Returns the draws and what is left
    untaken (zero when the accounts cover it)."""
    draws = []
    remaining = amount
    for account in accounts:
        if remaining <= 0:
            break
        take = min(account.available, remaining)
        draws.append(Draw(account, take))
        remaining -= take
    return draws, remaining


def take(
    accounts: list[CreditAccount],
    amount: Decimal,
    wallets: Sequence[str] | None,
    now: dt.datetime,
    *,
    name_restriction: bool = True,
) -> list[Draw]:
    """Draw `amount` from the spendable ones of `accounts` (the customer's open accounts), or
    raise `insufficient_balance`.

    With `name_restriction`, a shortfall only in the restricted wallets is told apart
    (`insufficient_balance_in_selected_credit_types`).
    """
    eligible_accounts = spendable(accounts, wallets, now)
    draws, missing = draw(eligible_accounts, amount)
    if missing > 0:
        available = sum((a.available for a in eligible_accounts), ZERO)
        details = {"requested": amount, "available": available, "wallet": wallet_label(wallets)}
        if name_restriction and wallets is not None:
            everywhere = sum((a.available for a in spendable(accounts, None, now)), ZERO)
            if everywhere >= amount:
                raise InsufficientBalanceInSelectedCreditTypes(details)
        raise InsufficientBalance(details)
    return draws


def wallet_label(wallets: Sequence[str] | None) -> str | list[str] | None:
    """How an error names the eligible wallets: null for all, a name, or the names as sent
    without repeats (a repeated name does not change a restriction, nor how it is named)."""
    if wallets is None:
        return None
    names = list(dict.fromkeys(wallets))
    return names[0] if len(names) == 1 else names


def eligible(wallets: Sequence[str] | None) -> list[str] | None:
    """The eligible wallets as a set: order and repeats do not change a restriction."""
    return sorted(set(wallets)) if wallets is not None else None
