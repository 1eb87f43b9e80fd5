"""Exact JSON in and out.

Amounts never pass through `float`: numbers with a fraction or exponent parse as `Decimal`, and
the renderer writes a `Decimal` verbatim (integral values as JSON integers, others in plain
notation). Timestamps render as UTC ISO-8601 with milliseconds and `Z`.
"""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from credits_project.errors import InvalidJson, InvalidRequest, UnsupportedMediaType


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


# Python refuses to convert integers of more than 4300 digits; such a number is still valid JSON
# (an amount "over 10^12", say), so it is read as a `Decimal` instead.
MAX_INT_DIGITS = 4000
# Deeper JSON is refused: rendering and storing it recurse once per level.
MAX_JSON_DEPTH = 64


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= MAX_INT_DIGITS else Decimal(text)


def loads(raw: bytes | str) -> Any:
    """Parse JSON exactly: decimals as `Decimal`, no NaN/Infinity, no repeated keys."""
    return json.loads(
        raw,
        parse_float=Decimal,
        parse_int=_parse_int,
        parse_constant=_reject_constant,
        object_pairs_hook=_object_without_duplicate_keys,
    )


def is_bad_string(value: str) -> bool:
    return "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)


def json_depth_exceeded(value: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when objects and arrays in `value` nest more than `max_depth` levels deep."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return True
            pending.extend(
                (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return False


def first_bad_string(value: Any) -> bool:
    """True when `value` holds, at any depth (keys included), a string with NUL or a surrogate."""
    pending = [value]
    while pending:  # iterative: a deeply nested body must not exhaust the stack
        item = pending.pop()
        if isinstance(item, str):
            if is_bad_string(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def format_decimal(value: Decimal) -> str:
    """Exactly, in plain notation: integral values as integers, no exponent, no trailing zeros.

    Works on the digits, so no context precision rounds the value and no huge exponent goes
    through `int`.
    """
    sign, digits, exponent = value.as_tuple()
    coefficient = "".join(map(str, digits))
    if exponent >= 0:
        integer, fraction = coefficient + "0" * exponent, ""
    else:
        coefficient = coefficient.rjust(1 - exponent, "0")
        integer, fraction = coefficient[:exponent], coefficient[exponent:].rstrip("0")
    integer = integer.lstrip("0") or "0"
    text = f"{integer}.{fraction}" if fraction else integer
    return f"-{text}" if sign and text != "0" else text


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: Any) -> str:
    """Render `value` as compact JSON, writing decimals and datetimes exactly (see module doc).

    orjson writes it, each `Decimal` spliced in verbatim as a fragment; what orjson refuses
    (an integer past 64 bits, in some metadata) is written by the plain writer instead.
    """
    try:
        return orjson.dumps(
            value, default=_exactly, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except orjson.JSONEncodeError:
        parts: list[str] = []
        _write(value, parts.append)
        return "".join(parts)


def _exactly(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format_decimal(value))
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _write(value: Any, out: Any) -> None:
    if value is None or isinstance(value, bool | str):
        out(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, Decimal):
        out(format_decimal(value))
    elif isinstance(value, dt.datetime):
        out(json.dumps(format_datetime(value)))
    elif isinstance(value, dict):
        out("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out(",")
            out(json.dumps(str(key), ensure_ascii=False))
            out(":")
            _write(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _write(item, out)
        out("]")
    else:
        raise TypeError(f"cannot render {type(value).__name__} as JSON")


class StrictJSONParser(BaseParser):
    """Parses a request body that must be one JSON object (see `loads`)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any]:
        raw = stream.read() if stream is not None else b""
        return parse_object(raw)


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        data = loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidJson() from None
    if not isinstance(data, dict):
        raise InvalidJson()
    check_fields(data)
    return data


def check_fields(data: dict[str, Any]) -> None:
    """Refuse a body's field holding NUL or a surrogate, or nested too deep; raises
    `invalid_request` naming it (`body` when it is a key)."""
    for key, item in data.items():
        field = "body" if is_bad_string(key) else key
        if field == "body" or first_bad_string(item):
            raise InvalidRequest(field, "bad_string")
        if json_depth_exceeded(item, MAX_JSON_DEPTH - 1):
            raise InvalidRequest(field, "too_deep", max_depth=MAX_JSON_DEPTH)


def is_json_media_type(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def require_json_content_type(content_type: str | None, body: bytes) -> None:
    if body and not is_json_media_type(content_type or ""):
        raise UnsupportedMediaType()


class ExactJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return dumps(data).encode("utf-8")


class ExactJSONEncoder(json.JSONEncoder):
    """For `JSONField(encoder=...)`: stores decimals (and all else) exactly as `dumps` does."""

    def encode(self, o: Any) -> str:
        return dumps(o)


class ExactJSONDecoder(json.JSONDecoder):
    """For `JSONField(decoder=...)`: reads numbers with a fraction back as `Decimal`."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("parse_float", Decimal)
        kwargs.setdefault("parse_int", _parse_int)
        super().__init__(**kwargs)
