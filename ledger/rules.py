"""The money rules, as pure functions of what was read: which credits a charge may spend, the
draw that takes them, what an account's entries add up to, and when a balance crosses a line.
No database access here: services and selectors hand these the rows they loaded, so a quote
and the deduct it predicts draw by the very same rule.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from credits_project.errors import InsufficientBalance, InsufficientBalanceInSelectedCreditTypes
from ledger.models import CreditAccount, CreditLine, LedgerEntry, OperationType
from ledger.money import ZERO


@dataclass(frozen=True, slots=True)
class Draw:
    """Credits taken from one account."""

    account: CreditAccount
    amount: Decimal


@dataclass(frozen=True, slots=True)
class LineDraw:
    """Credits drawn on a credit line: what the customer will owe."""

    line: CreditLine
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Taken:
    """What a charge takes: credits from accounts first, then on credit lines."""

    draws: list[Draw]
    on_lines: list[LineDraw] = field(default_factory=list)

    @property
    def on_credit(self) -> Decimal:
        return sum((part.amount for part in self.on_lines), ZERO)


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


def usable_lines(lines: Iterable[CreditLine], wallets: Sequence[str] | None) -> list[CreditLine]:
    """The lines a charge restricted to `wallets` (all when None) may draw on, in the order it
    draws them: a restricted charge draws on the lines of its wallets first (by name), then
    on the whole customer's line; an unrestricted one on the whole customer's line first,
    then on the wallets' lines by name."""
    eligible_wallets = list(wallets) if wallets is not None else None
    whole_first = wallets is None
    return sorted(
        (line for line in lines if line.takes(eligible_wallets) and line.headroom > 0),
        key=lambda line: (line.covers_every_wallet != whole_first, line.wallet),
    )


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
    lines: Sequence[CreditLine] = (),
    name_restriction: bool = True,
) -> Taken:
    """Draw `amount` from the spendable ones of `accounts` (the customer's open accounts), in
    their order, and what they do not cover on the customer's usable `lines`; or raise
    `insufficient_balance`, with what was available (credits and headroom together).

    With `name_restriction`, a shortfall only in the restricted wallets is told apart
    (`insufficient_balance_in_selected_credit_types`).
    """
    eligible_accounts = spendable(accounts, wallets, now)
    draws, missing = draw(eligible_accounts, amount)
    on_lines = []
    for line in usable_lines(lines, wallets):
        if missing <= 0:
            break
        part = min(line.headroom, missing)
        on_lines.append(LineDraw(line, part))
        missing -= part
    if missing > 0:
        available = spending_power(accounts, lines, wallets, now)
        details = {"requested": amount, "available": available, "wallet": wallet_label(wallets)}
        restricted = name_restriction and wallets is not None
        if restricted and spending_power(accounts, lines, None, now) >= amount:
            raise InsufficientBalanceInSelectedCreditTypes(details)
        raise InsufficientBalance(details)
    return Taken(draws, on_lines)


def spending_power(
    accounts: Iterable[CreditAccount],
    lines: Iterable[CreditLine],
    wallets: Sequence[str] | None,
    now: dt.datetime,
) -> Decimal:
    """What a charge restricted to `wallets` could take at most: the spendable credits and the
    headroom of the usable lines."""
    headroom = sum((line.headroom for line in usable_lines(lines, wallets)), ZERO)
    return available_in(accounts, wallets, now) + headroom


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
class Holds:
    """What freezes hold, as their FREEZE and UNFREEZE entries make it: `frozen` in all, and
    per transaction."""

    frozen: Decimal = ZERO
    held: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def hold(self, ref: str, amount: Decimal) -> None:
        self.frozen += amount
        self.held[ref] += amount

    def release(self, ref: str, amount: Decimal) -> None:
        self.frozen -= amount
        self.held[ref] -= amount

    def spend_held(self, ref: str, amount: Decimal) -> None:
        """A settlement takes first from what its freeze holds here."""
        from_hold = min(self.held.get(ref, ZERO), amount)
        if from_hold:
            self.release(ref, from_hold)


@dataclass
class Replayed(Holds):
    """An account's counters as its entries, applied in order, make them.

    GRANT adds to `total`; FREEZE adds to `frozen` and to what its transaction holds on the
    account; UNFREEZE gives held credits back; CONSUME takes first from what its freeze holds
    on the account, the rest from available, and adds to `used`; REPAY (the account pays a
    debt) adds to `used` and REFUND takes from it; EXPIRE and VOID change no counter (the
    credits stop counting) and add to what ended unused.
    """

    total: Decimal = ZERO
    used: Decimal = ZERO
    expired: Decimal = ZERO

    def apply(self, entry: LedgerEntry) -> None:
        amount, ref = entry.amount, entry.transaction_id
        match entry.operation_type:
            case OperationType.GRANT:
                self.total += amount
            case OperationType.FREEZE:
                self.hold(ref, amount)
            case OperationType.UNFREEZE:
                self.release(ref, amount)
            case OperationType.CONSUME:
                self.spend_held(ref, amount)
                self.used += amount
            case OperationType.REPAY:
                self.used += amount
            case OperationType.REFUND:
                self.used -= amount
            case OperationType.EXPIRE | OperationType.VOID:
                self.expired += amount


@dataclass
class LineReplayed(Holds):
    """A credit line's `debt` and `frozen` as its entries, applied in order, make them.

    FREEZE and UNFREEZE as on an account; DEBT takes first from what its freeze holds on the
    line and adds to `debt`; REPAY and REFUND take from `debt`.
    """

    debt: Decimal = ZERO

    def apply(self, entry: LedgerEntry) -> None:
        amount, ref = entry.amount, entry.transaction_id
        match entry.operation_type:
            case OperationType.FREEZE:
                self.hold(ref, amount)
            case OperationType.UNFREEZE:
                self.release(ref, amount)
            case OperationType.DEBT:
                self.spend_held(ref, amount)
                self.debt += amount
            case OperationType.REPAY | OperationType.REFUND:
                self.debt -= amount


def refund_slices(
    slices: Sequence[tuple[object, Decimal]], refunded: Decimal, amount: Decimal
) -> list[tuple[object, Decimal]]:
    """Which parts of a charge's slices (what it drew, in the order it drew them) a refund of
    `amount` puts back, when its earlier refunds put back `refunded`: the last slice drawn
    comes back first, so what earlier refunds took is the tail, and this one continues
    before it."""
    parts = []
    skip, left = refunded, amount
    for target, drawn in reversed(slices):
        from_earlier = min(skip, drawn)
        skip -= from_earlier
        part = min(drawn - from_earlier, left)
        if part > 0:
            parts.append((target, part))
            left -= part
        if left <= 0:
            break
    return parts


def repayments(
    lines: Sequence[CreditLine],
    wallet: str,
    credits: Decimal,
    *,
    debt_of: Callable[[CreditLine], Decimal] = lambda line: line.debt,
) -> list[tuple[CreditLine, Decimal]]:
    """What `credits` deposited in `wallet` pay of the debts on these lines, line by line, in
    the order they are paid: the wallet's own line first, then the whole customer's."""
    paid = ZERO
    parts = []
    owed = [line for line in lines if line.wallet == wallet or line.covers_every_wallet]
    for line in sorted(owed, key=lambda line: line.covers_every_wallet):
        part = min(debt_of(line), credits - paid)
        if part > 0:
            parts.append((line, part))
            paid += part
    return parts
