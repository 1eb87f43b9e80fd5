"""Request bodies of the entitlement calls (`/v1/entitlement/...`)."""

from typing import Any

from credits_project.errors import (
    CustomerIdRequired,
    EntitlementValidationError,
    FeatureKeyRequired,
    InvalidDatetimeRange,
    InvalidValidFrom,
    InvalidValidUntil,
    ValueRequired,
)
from ledger.contract.fields import IdField, InstantField, MetadataField, TextField
from ledger.contract.requests import RequestSerializer

MAX_VALUE_LENGTH = 4096


class FeatureKeyField(IdField):
    """A feature key: any 1-255 code points (`/` and spaces included)."""

    def __init__(self, **kwargs: Any):
        super().__init__(
            missing_error=FeatureKeyRequired, invalid=EntitlementValidationError, **kwargs
        )


class SetEntitlementRequestSerializer(RequestSerializer):
    customer_id = IdField(missing_error=CustomerIdRequired, help_text="Created if unknown.")
    feature_key = FeatureKeyField()
    value = IdField(
        missing_error=ValueRequired,
        max_length=MAX_VALUE_LENGTH,
        invalid=EntitlementValidationError,
        help_text="A string, 1-4096 code points.",
    )
    valid_from = InstantField(error=InvalidValidFrom, help_text="Null or absent: from now on.")
    valid_until = InstantField(
        error=InvalidValidUntil, help_text="Null or absent: for good. A past instant is kept."
    )
    source = TextField(
        min_length=1, max_length=64, default="default", invalid=EntitlementValidationError
    )
    description = TextField(max_length=1000, invalid=EntitlementValidationError)
    metadata = MetadataField()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        valid_from, valid_until = data["valid_from"], data["valid_until"]
        if valid_from and valid_until and valid_until <= valid_from:
            raise InvalidDatetimeRange("valid_until")
        return data


class RemoveEntitlementRequestSerializer(RequestSerializer):
    customer_id = IdField(missing_error=CustomerIdRequired)
    feature_key = FeatureKeyField()
