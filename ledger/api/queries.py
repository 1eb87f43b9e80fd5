"""Query parameters of the customer and ledger reads, checked by the contract's rules."""

import datetime as dt

from django.http import QueryDict
from django.utils import timezone

from credits_project.errors import (
    AccountNotFound,
    InvalidAsOf,
    InvalidLimit,
    InvalidOperationType,
    InvalidRequest,
)
from credits_project.json import first_bad_string
from ledger.contract.fields import IdField, InstantField
from ledger.models import OperationType

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
OPERATION_TYPE_ALIASES = {"DEPOSIT": OperationType.GRANT}
NAMES = ("limit", "cursor", "operation_type", "transaction_id")


def ledger_params(query: QueryDict) -> dict[str, str]:
    """The ledger's parameters that were sent, each free of NUL and surrogates."""
    params = {}
    for name in NAMES:
        value = query.get(name)
        if value is None:
            continue
        if first_bad_string(value):
            raise InvalidRequest(name, "bad_string")
        params[name] = value
    return params


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise InvalidLimit("limit", minimum=1, maximum=MAX_LIMIT)
    return int(raw)


def parse_operation_type(raw: str | None) -> str | None:
    if raw is None:
        return None
    operation_type = OPERATION_TYPE_ALIASES.get(raw, raw)
    if operation_type not in OperationType.values:
        raise InvalidOperationType("operation_type")
    return operation_type


def parse_transaction_id(raw: str | None) -> str | None:
    """Checked like a body's `transaction_id`: 1-255 code points."""
    if raw is None:
        return None
    field = IdField()
    field.field_name = "transaction_id"
    return field.parse(raw)


MAX_PROJECTION = dt.timedelta(days=3660)


def parse_as_of(query: QueryDict) -> dt.datetime | None:
    """The instant a customer read is asked for (`as_of`), at most ten years ahead; None when
    not sent."""
    raw = query.get("as_of")
    if raw is None:
        return None
    field = InstantField(error=InvalidAsOf)
    field.field_name = "as_of"
    as_of = field.parse(raw)
    if as_of > timezone.now() + MAX_PROJECTION:
        raise InvalidAsOf("as_of")
    return as_of


def parse_account_id(raw: str) -> int:
    """An account id from a path: the decimal id the API answers with; anything else names no
    account (`account_not_found`)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise AccountNotFound({"account_id": raw})
    return int(raw)
