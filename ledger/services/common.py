"""Building blocks shared by the service functions: locking, allocation, idempotency."""

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import IntegrityError
from django.db.models import Q

from credits_project.api.json import dumps, loads
from credits_project.errors import (
    CustomerNotFound,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientBalanceInSelectedCreditTypes,
    TransactionConflict,
)
from customers.models import Customer, Project
from ledger.models import CreditAccount, LedgerEntry, Transaction
from ledger.money import ZERO
from ledger.services import statements

P = ParamSpec("P")
R = TypeVar("R")


def retry_on_identity_race(function: Callable[P, R]) -> Callable[P, R]:
    """Run an identified write again once if its identity row lost an insert race.

    Concurrent requests with one identity for one customer serialize on the customer lock, so
    the second simply replays. Requests with one identity for *different* customers hold
    different locks; the loser's insert hits the unique constraint, and on the second run it
    finds the winner's transaction and answers `transaction_conflict` (or replays).
    """

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except IntegrityError:
            return function(*args, **kwargs)

    return wrapper


def active_q(now: dt.datetime, prefix: str = "") -> Q:
    """Accounts active at `now`: started (or no start) and not yet expired (or no expiry)."""
    return (Q(**{f"{prefix}starts_at__isnull": True}) | Q(**{f"{prefix}starts_at__lte": now})) & (
        Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now})
    )


def lock_customer(project: Project, customer_id: str) -> Customer:
    """Lock the customer's row: every writer of one customer serializes here."""
    customer = statements.lock_customer_row(project.pk, customer_id)
    if customer is None:
        raise CustomerNotFound({"customer_id": customer_id})
    return customer


def lock_customer_of_charge(project: Project, transaction_id: str) -> Transaction | None:
    """Lock the customer that owns a freeze/deduct id, then read the transaction afresh.

    The customer is locked before the transaction is read, so the state we read cannot change
    until we commit: concurrent consumes and unfreezes of one freeze execute one at a time.
    """
    customer = statements.lock_customer_of_charge_row(project.pk, transaction_id)
    if customer is None:
        return None
    charge = statements.charge_by_identity(project.pk, transaction_id)
    charge.customer = customer
    return charge


def spendable_accounts(
    customer: Customer, wallets: Sequence[str] | None, now: dt.datetime
) -> list[CreditAccount]:
    """Active accounts with available credits in the eligible wallets, in consumption order:
    soonest expiry first (never-expiring last), then oldest deposit, then lowest id."""
    return statements.open_accounts_in_order(customer.pk, wallets, now)


@dataclass(frozen=True)
class Allocation:
    account: CreditAccount
    amount: Decimal


def allocate(
    accounts: Iterable[CreditAccount],
    amount: Decimal,
    *,
    customer: Customer,
    wallets: Sequence[str] | None,
    now: dt.datetime,
    name_selected_wallets: bool = True,
) -> list[Allocation]:
    """Take `amount` from `accounts` in their order, or raise the insufficient-balance error.

    With `name_selected_wallets`, a shortfall only in the restricted wallets is told apart
    (`insufficient_balance_in_selected_credit_types`, at the cost of one more read).
    """
    allocations: list[Allocation] = []
    remaining = amount
    available = ZERO
    for account in accounts:
        available += account.available
        if remaining > 0:
            take = min(account.available, remaining)
            allocations.append(Allocation(account, take))
            remaining -= take
    if remaining > 0:
        details = {"requested": amount, "available": available, "wallet": wallet_label(wallets)}
        if name_selected_wallets and wallets is not None:
            everywhere = sum((a.available for a in spendable_accounts(customer, None, now)), ZERO)
            if everywhere >= amount:
                raise InsufficientBalanceInSelectedCreditTypes(details)
        raise InsufficientBalance(details)
    return allocations


def wallet_label(wallets: Sequence[str] | None) -> str | list[str] | None:
    """How an error names the eligible wallets: null for all, a name, or the names as sent
    without repeats (a repeated name does not change a restriction, nor how it is named)."""
    if wallets is None:
        return None
    names = list(dict.fromkeys(wallets))
    return names[0] if len(names) == 1 else names


def detail_item(account: CreditAccount, amount: Decimal) -> dict[str, Any]:
    return {
        "account_id": str(account.pk),
        "wallet": account.wallet,
        "credit_type": account.wallet,
        "source": account.source,
        "amount": amount,
    }


def entry(
    account: CreditAccount,
    operation_type: str,
    amount: Decimal,
    *,
    transaction_ref: str | None,
    business_type: str,
    description: str,
    actor: str,
    now: dt.datetime,
) -> LedgerEntry:
    return LedgerEntry(
        customer_id=account.customer_id,
        account=account,
        operation_type=operation_type,
        amount=amount,
        transaction_ref=transaction_ref,
        business_type=business_type,
        description=description,
        actor=actor,
        created_at=now,
    )


def fingerprint(**fields: Any) -> str:
    """A stable digest of the parameters that make two requests "the same request".

    Instants are compared to the microsecond (as stored), not as rendered in responses.
    """
    exact = {
        name: value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else value
        for name, value in sorted(fields.items())
    }
    return hashlib.sha256(dumps(exact).encode()).hexdigest()


def replay(
    original: Transaction, *, customer: Customer, request_fingerprint: str, kind: str
) -> dict[str, Any]:
    """The stored original response of `original`, if this request may replay it."""
    field = "idempotency_key" if kind == Transaction.Kind.DEPOSIT else "transaction_id"
    if original.customer_id != customer.pk or original.kind != kind:
        raise TransactionConflict({"field": field})
    if original.fingerprint != request_fingerprint:
        raise IdempotencyConflict({"field": field})
    return replayed(original.response)


def replayed(response: str) -> dict[str, Any]:
    return {**loads(response), "is_idempotent_replay": True}


def stored(response: dict[str, Any]) -> str:
    return dumps(response)
