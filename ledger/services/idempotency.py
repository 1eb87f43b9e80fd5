"""Retries: which earlier operation a request repeats, and whether it may replay it.

Every operation that carries an identity (a freeze's or deduct's `transaction_id`, a deposit's
idempotency key) is recorded as a `Transaction` with a fingerprint of the parameters that make
two requests the same request. A repeat with the same fingerprint gets the original answer,
rebuilt from the ledger (`replays`); any other use of the identity is a conflict.
"""

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import IntegrityError

from credits_project.errors import IdempotencyConflict, TransactionConflict
from credits_project.json import dumps
from customers.models import Customer
from ledger.models import SlotEvent, Transaction

P = ParamSpec("P")
R = TypeVar("R")


def fingerprint(**fields: Any) -> str:
    """A stable digest of the parameters that make two requests "the same request".

    Instants are compared to the microsecond (as stored), not as rendered in responses.
    """
    exact = {
        name: value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else value
        for name, value in sorted(fields.items())
    }
    return hashlib.sha256(dumps(exact).encode()).hexdigest()


# The request field that carries each kind's identity.
IDENTITY_FIELDS = {
    Transaction.Kind.DEPOSIT: "idempotency_key",
    Transaction.Kind.REFUND: "refund_id",
    Transaction.Kind.VOID: "void_id",
    "GRANT_CAPACITY": "idempotency_key",
    "REVOKE_CAPACITY": "idempotency_key",
}


def check_repeat(
    original: Transaction | SlotEvent, *, customer: Customer, request: str, kind: str
) -> None:
    """Raise unless this request, with fingerprint `request`, repeats `original`: another
    customer or another kind of operation is `transaction_conflict`, other parameters are
    `idempotency_conflict`."""
    field = IDENTITY_FIELDS.get(kind, "transaction_id")
    if original.customer_id != customer.pk or original.kind != kind:
        raise TransactionConflict({"field": field})
    if original.fingerprint != request:
        raise IdempotencyConflict({"field": field})


def retry_on_identity_race(function: Callable[P, R]) -> Callable[P, R]:
    """Run an identified write again once if its transaction row lost an insert race.

    Two first requests with one identity both find no transaction, and the second one's insert
    breaks the unique constraint (they may be for different customers, which lock different
    rows, or one may have committed while the other waited for the customer's lock). On the
    second run it finds the winner's transaction and replays it or answers with a conflict.
    """

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except IntegrityError:
            return function(*args, **kwargs)

    return wrapper
