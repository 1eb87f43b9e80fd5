"""Request fields that validate by the contract's rules and raise its error codes.

A DRF field normally collects `ValidationError`s into a `{"field": [...]}` body; the contract
instead names one stable code per rule. These fields raise our own errors directly, so the first
invalid field (in declaration order) decides the answer. An absent field and `null` both arrive
as `None`.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers
from rest_framework.fields import empty

from credits_project.errors import (
    AmountMustBePositive,
    BadRequest,
    FieldError,
    InvalidAmount,
    InvalidAutoSettlementTtl,
    InvalidBusinessType,
    InvalidLeaseTtl,
    InvalidMetadata,
    InvalidRequest,
    InvalidSlotAmount,
    ServiceError,
)
from credits_project.json import dumps
from ledger.models import BusinessType
from ledger.money import MAX_AMOUNT

MAX_METADATA_BYTES = 16_384


class ContractField(serializers.Field):
    """Base of the contract's request fields. A required field must be present and not null;
    an optional one takes null as absent. `openapi_schema` describes what the field accepts,
    for the OpenAPI description: never stricter than the field, so fuzzers agree with it."""

    def __init__(self, *, required: bool = False, **kwargs: Any):
        super().__init__(required=required, allow_null=not required, **kwargs)
        self._spectacular_annotation = {"field": self.openapi_schema()}

    def openapi_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def run_validation(self, data: Any = empty) -> Any:
        return self.parse(None if data is empty else data)

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def to_representation(self, value: Any) -> Any:
        return value


class TextField(ContractField):
    """An optional string of `min_length`…`max_length` code points; a value of the wrong type
    or length raises `invalid` (with the reason)."""

    def __init__(
        self,
        *,
        min_length: int = 0,
        max_length: int,
        default: str | None = None,
        invalid: type[FieldError] = InvalidRequest,
        **kwargs: Any,
    ):
        self.min_length, self.max_length, self.fallback = min_length, max_length, default
        self.invalid = invalid
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}

    def parse(self, value: Any) -> str | None:
        if value is None:
            return self.fallback
        if not isinstance(value, str):
            raise self.invalid(self.field_name, "must_be_string")
        if not self.min_length <= len(value) <= self.max_length:
            raise self.invalid(
                self.field_name,
                "bad_length",
                min_length=self.min_length,
                max_length=self.max_length,
            )
        return value


class IdField(TextField):
    """A caller-chosen id (or name): 1-255 code points (or `max_length`); missing or empty
    raises `missing_error`."""

    def __init__(
        self,
        *,
        missing_error: type[ServiceError] | None = None,
        max_length: int = 255,
        **kwargs: Any,
    ):
        self.missing_error = missing_error
        super().__init__(
            min_length=1, max_length=max_length, required=missing_error is not None, **kwargs
        )

    def parse(self, value: Any) -> str | None:
        if value in (None, "") and self.missing_error is not None:
            raise self.missing_error()
        return super().parse(value)


class EmailField(TextField):
    def __init__(self, **kwargs: Any):
        super().__init__(max_length=254, **kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {**super().openapi_schema(), "format": "email"}

    def parse(self, value: Any) -> str | None:
        email = super().parse(value)
        if email is not None:
            try:
                validate_email(email)
            except DjangoValidationError:
                raise InvalidRequest(self.field_name, "invalid_email") from None
        return email


class AmountField(ContractField):
    """An exact amount: a JSON number > 0 (or ≥ 0), ≤ 10^12, at most 6 fractional digits."""

    def __init__(
        self,
        *,
        allow_zero: bool = False,
        optional: bool = False,
        not_positive: type[BadRequest] = AmountMustBePositive,
        invalid: type[BadRequest] = InvalidAmount,
        **kwargs: Any,
    ):
        """`allow_zero`: 0 is a value (and the field optional); `optional`: absent is None,
        but a value sent must be positive."""
        self.allow_zero, self.optional = allow_zero, optional
        self.not_positive, self.invalid = not_positive, invalid
        super().__init__(required=not (allow_zero or optional), **kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        # OpenAPI 3.0 spelling: `exclusiveMinimum` is a flag on `minimum`.
        return {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": not self.allow_zero,
            "maximum": int(MAX_AMOUNT),
        }

    def parse(self, value: Any) -> Decimal | None:
        if value is None:
            if self.allow_zero or self.optional:
                return None
            raise self.not_positive(self.field_name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise self.invalid(self.field_name)
        amount = Decimal(value)
        if amount < 0 or (amount == 0 and not self.allow_zero):
            raise self.not_positive(self.field_name)
        if amount > MAX_AMOUNT or not has_at_most_six_fractional_digits(amount):
            raise self.invalid(self.field_name)
        return amount + 0  # drops a negative zero's sign and normalizes the context


def has_at_most_six_fractional_digits(amount: Decimal) -> bool:
    """Decided on the digits: arithmetic in the decimal context would round 29+ digit values
    (`1.0000000000000000000000000000001` would pass as 1) and underflow tiny ones to zero."""
    _, digits, exponent = amount.as_tuple()
    extra = -6 - exponent  # fractional digits beyond the sixth
    return extra <= 0 or not any(digits[-extra:])


class InstantField(ContractField):
    """An ISO-8601 datetime with an offset or `Z`; anything else raises `error`."""

    def __init__(self, *, error: type[BadRequest], **kwargs: Any):
        self.error = error
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def parse(self, value: Any) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(self.field_name)
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            raise self.error(self.field_name) from None
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise self.error(self.field_name)
        try:
            return instant.astimezone(dt.UTC)
        except OverflowError:
            raise self.error(self.field_name) from None


class BooleanField(ContractField):
    """A JSON boolean; absent or null is `default`."""

    def __init__(self, *, default: bool, **kwargs: Any):
        self.fallback = default
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "boolean", "default": self.fallback}

    def parse(self, value: Any) -> bool:
        if value is None:
            return self.fallback
        if not isinstance(value, bool):
            raise InvalidRequest(self.field_name, "must_be_boolean")
        return value


class ChoiceField(ContractField):
    """One of `choices` (a string); absent or null is `default`; anything else raises
    `error`."""

    def __init__(self, *, choices: tuple[str, ...], default: str, error: type[BadRequest], **kw):
        self.choices, self.fallback, self.error = choices, default, error
        super().__init__(**kw)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "default": self.fallback}

    def parse(self, value: Any) -> str:
        if value is None:
            return self.fallback
        if value not in self.choices:
            raise self.error(self.field_name)
        return value


class BusinessTypeField(ContractField):
    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(BusinessType.values)}

    def parse(self, value: Any) -> str:
        if value is None:
            return BusinessType.UNDEFINED
        if value not in BusinessType.values:
            raise InvalidBusinessType(self.field_name)
        return value


class TtlField(ContractField):
    """Seconds until auto-settlement: a JSON integer in 1…`maximum`."""

    def __init__(self, *, maximum: int, **kwargs: Any):
        self.maximum = maximum
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "maximum": self.maximum}

    def parse(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidAutoSettlementTtl(self.field_name, maximum=self.maximum)
        if not 1 <= value <= self.maximum:
            raise InvalidAutoSettlementTtl(self.field_name, maximum=self.maximum)
        return value


class MetadataField(ContractField):
    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": True}

    def parse(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidMetadata(self.field_name)
        if has_huge_number(value) or len(dumps(value).encode("utf-8")) > MAX_METADATA_BYTES:
            raise InvalidMetadata(self.field_name, max_bytes=MAX_METADATA_BYTES)
        return value


def has_huge_number(value: Any) -> bool:
    """True when `value` holds a number whose plain rendering alone would pass the metadata
    limit (`1e999999999` is a few bytes of JSON but a billion digits written out)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Decimal) and abs(item.adjusted()) > MAX_METADATA_BYTES:
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class RawField(ContractField):
    """Passed through as sent; the serializer's `validate` checks it with related fields."""

    def parse(self, value: Any) -> Any:
        return value


class WalletNamesField(RawField):
    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}


class WalletNameField(RawField):
    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}


MAX_SLOTS = 10**9


class SlotAmountField(ContractField):
    """A whole number of slots: a JSON integer in 1…10^9. Absent is `default` (a claim takes
    one slot) or, without a default, `amount_must_be_positive` as for credits."""

    def __init__(self, *, default: int | None = None, **kwargs: Any):
        self.fallback = default
        super().__init__(required=default is None, **kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_SLOTS}
        return schema if self.fallback is None else {**schema, "default": self.fallback}

    def parse(self, value: Any) -> int:
        if value is None:
            if self.fallback is None:
                raise AmountMustBePositive(self.field_name)
            return self.fallback
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidSlotAmount(self.field_name, maximum=MAX_SLOTS)
        if value <= 0:
            raise AmountMustBePositive(self.field_name)
        if value > MAX_SLOTS or value != int(value):  # the bound first: 1e999999 is huge
            raise InvalidSlotAmount(self.field_name, maximum=MAX_SLOTS)
        return int(value)


class LeaseField(ContractField):
    """A holding's lease in seconds: a JSON integer in 1…30 days; absent holds until
    released."""

    maximum = 2_592_000

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "maximum": self.maximum}

    def parse(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.maximum:
            raise InvalidLeaseTtl(self.field_name, maximum=self.maximum)
        return value
