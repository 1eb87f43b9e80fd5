"""The money rules, as pure functions of what was read: which credits a charge may spend, the
draw that takes them, what an account's entries add up to, and when a balance crosses a line.
No database access here: services and selectors hand these the rows they loaded, so a quote
and the deduct it predicts draw by the very same rule.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from credits_project.errors import InsufficientBalance, InsufficientBalanceInSelectedCreditTypes
from ledger.models import CreditAccount, LedgerEntry, OperationType
from ledger.money import ZERO


@dataclass(frozen=True, slots=True)
class Draw:
    """Credits taken from one account."""

    account: CreditAccount
    amount: Decimal


def spendable(
    accounts: Iterable[CreditAccount], wallets: Sequence[str] | None, now: dt.datetime
) -> list[CreditAccount]:
    """The accounts active at `now` in the eligible wallets (all when None), in their order."""
    return [a for a in accounts if a.is_active_at(now) and (wallets is None or a.wallet in wallets)]


def available_in(
    accounts: Iterable[CreditAccount], wallets: Sequence[str] | None, now: dt.datetime
) -> Decimal:
    """What the spendable ones of `accounts` have available, together."""
    return sum((a.available for a in spendable(accounts, wallets, now)), ZERO)


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
        restricted = name_restriction and wallets is not None
        if restricted and available_in(accounts, None, now) >= amount:
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


def crosses_below(before: Decimal, after: Decimal, threshold: Decimal) -> bool:
    """A balance that went from `before` to `after` fell below `threshold` just now (once per
    crossing: it was at or above it before)."""
    return before >= threshold > after


@dataclass
class Replayed:
    """An account's counters as its entries, applied in order, make them.

    GRANT adds to `total`; FREEZE adds to `frozen` and to what its transaction holds on the
    account; UNFREEZE gives held credits back; CONSUME takes first from what its freeze holds
    on the account, the rest from available, and adds to `used`; EXPIRE changes no counter.
    """

    total: Decimal = ZERO
    used: Decimal = ZERO
    frozen: Decimal = ZERO
    expired: Decimal = ZERO
    held: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def apply(self, entry: LedgerEntry) -> None:
        amount, ref = entry.amount, entry.transaction_id
        match entry.operation_type:
            case OperationType.GRANT:
                self.total += amount
            case OperationType.FREEZE:
                self.frozen += amount
                self.held[ref] += amount
            case OperationType.UNFREEZE:
                self.frozen -= amount
                self.held[ref] -= amount
            case OperationType.CONSUME:
                from_hold = min(self.held.get(ref, ZERO), amount)
                if from_hold:
                    self.held[ref] -= from_hold
                    self.frozen -= from_hold
                self.used += amount
            case OperationType.EXPIRE:
                self.expired += amount
