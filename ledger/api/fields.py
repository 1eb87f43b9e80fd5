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
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from credits_project.api.json import dumps
from credits_project.errors import (
    AmountMustBePositive,
    BadRequest,
    InvalidAmount,
    InvalidAutoSettlementTtl,
    InvalidBusinessType,
    InvalidMetadata,
    InvalidRequest,
    ServiceError,
)
from ledger.models import BusinessType
from ledger.money import MAX_AMOUNT, has_at_most_six_decimals

MAX_METADATA_BYTES = 16_384


class ContractField(serializers.Field):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def run_validation(self, data: Any = empty) -> Any:
        return self.parse(None if data is empty else data)

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.STR)
class TextField(ContractField):
    """An optional string of `min_length`…`max_length` code points."""

    def __init__(self, *, min_length: int = 0, max_length: int, default: str | None = None,
                 **kwargs: Any):
        self.min_length, self.max_length, self.fallback = min_length, max_length, default
        super().__init__(**kwargs)

    def parse(self, value: Any) -> str | None:
        if value is None:
            return self.fallback
        if not isinstance(value, str):
            raise InvalidRequest(self.field_name, "must_be_string")
        if not self.min_length <= len(value) <= self.max_length:
            raise InvalidRequest(
                self.field_name, "bad_length", min_length=self.min_length,
                max_length=self.max_length,
            )
        return value


@extend_schema_field(OpenApiTypes.STR)
class IdField(TextField):
    """A caller-chosen id: 1–255 code points; missing or empty raises `missing_error`."""

    def __init__(self, *, missing_error: type[ServiceError] | None = None, **kwargs: Any):
        self.missing_error = missing_error
        super().__init__(min_length=1, max_length=255, **kwargs)

    def parse(self, value: Any) -> str | None:
        if value in (None, "") and self.missing_error is not None:
            raise self.missing_error()
        return super().parse(value)


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailField(TextField):
    def __init__(self, **kwargs: Any):
        super().__init__(max_length=254, **kwargs)

    def parse(self, value: Any) -> str | None:
        email = super().parse(value)
        if email is not None:
            try:
                validate_email(email)
            except DjangoValidationError:
                raise InvalidRequest(self.field_name, "invalid_email") from None
        return email


@extend_schema_field({"type": "number", "exclusiveMinimum": 0, "maximum": 10**12})
class AmountField(ContractField):
    """An exact amount: a JSON number > 0 (or ≥ 0), ≤ 10^12, at most 6 fractional digits."""

    def __init__(self, *, allow_zero: bool = False,
                 not_positive: type[BadRequest] = AmountMustBePositive, **kwargs: Any):
        self.allow_zero, self.not_positive = allow_zero, not_positive
        super().__init__(**kwargs)

    def parse(self, value: Any) -> Decimal | None:
        if value is None:
            if self.allow_zero:
                return None
            raise self.not_positive(self.field_name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidAmount(self.field_name)
        amount = Decimal(value)
        if amount < 0 or (amount == 0 and not self.allow_zero):
            raise self.not_positive(self.field_name)
        if amount > MAX_AMOUNT or not has_at_most_six_decimals(amount):
            raise InvalidAmount(self.field_name)
        return amount + 0  # drops a negative zero's sign and normalizes the context


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(ContractField):
    """An ISO-8601 datetime with an offset or `Z`; anything else raises `error`."""

    def __init__(self, *, error: type[BadRequest], **kwargs: Any):
        self.error = error
        super().__init__(**kwargs)

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


@extend_schema_field({"type": "string", "enum": list(BusinessType.values)})
class BusinessTypeField(ContractField):
    def parse(self, value: Any) -> str:
        if value is None:
            return BusinessType.UNDEFINED
        if value not in BusinessType.values:
            raise InvalidBusinessType(self.field_name)
        return value


@extend_schema_field({"type": "integer", "minimum": 1})
class TtlField(ContractField):
    """Seconds until auto-settlement: a JSON integer in 1…`maximum`."""

    def __init__(self, *, maximum: int, **kwargs: Any):
        self.maximum = maximum
        super().__init__(**kwargs)

    def parse(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidAutoSettlementTtl(self.field_name, maximum=self.maximum)
        if not 1 <= value <= self.maximum:
            raise InvalidAutoSettlementTtl(self.field_name, maximum=self.maximum)
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(ContractField):
    def parse(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise InvalidMetadata(self.field_name)
        if len(dumps(value).encode("utf-8")) > MAX_METADATA_BYTES:
            raise InvalidMetadata(self.field_name, max_bytes=MAX_METADATA_BYTES)
        return value


class RawField(ContractField):
    """Passed through as sent; the serializer's `validate` checks it with related fields."""

    def parse(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1})
class WalletNamesField(RawField):
    pass


@extend_schema_field({"type": "string", "minLength": 1})
class WalletNameField(RawField):
    pass
