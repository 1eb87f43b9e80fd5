"""Query parameters of the customer and ledger reads, checked by the contract's rules."""

import datetime as dt

from django.http import QueryDict
from django.utils import timezone

from credits_project.errors import (
    AccountNotFound,
    BadRequest,
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


def ledger_params(query: QueryDict, names: tuple[str, ...] = NAMES) -> dict[str, str]:
    """The parameters of `names` (the ledger's by default) that were sent, each free of NUL
    and surrogates."""
    params = {}
    for name in names:
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
    return parse_id(raw, "transaction_id")


def parse_id(raw: str | None, name: str) -> str | None:
    """An id filter (`transaction_id`, `resource_id`, `feature_key`), checked like a body's
    id: 1-255 code points; None when not sent."""
    if raw is None:
        return None
    field = IdField()
    field.field_name = name
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


def parse_instant(raw: str | None, name: str, error: type[BadRequest]) -> dt.datetime | None:
    """An ISO-8601 instant with an offset (`from_at`, `to_at`); None when not sent."""
    if raw is None:
        return None
    field = InstantField(error=error)
    field.field_name = name
    return field.parse(raw)


def parse_names(raw: str | None, name: str, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A comma-separated list (`types`, `sources`, `feature_keys`), empty items dropped; with
    `allowed`, each item must be one of them (else `invalid_request`, reason `unknown_value`)."""
    if raw is None:
        return ()
    items = tuple(dict.fromkeys(item for item in raw.split(",") if item))
    unknown = [item for item in items if allowed and item not in allowed]
    if unknown:
        raise InvalidRequest(name, "unknown_value", allowed=list(allowed))
    return items


def parse_flag(raw: str | None, name: str) -> bool:
    """`true` or `false` (absent is false)."""
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise InvalidRequest(name, "must_be_boolean")
    return raw == "true"
