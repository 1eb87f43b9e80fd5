"""Request validation and response shapes of the credits API.

Request serializers validate only (see `fields`); response serializers describe the bodies the
services return, for the OpenAPI schema.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from credits_project.errors import (
    ActualAmountMustBeNonNegative,
    CustomerIdRequired,
    InvalidAutoSettlement,
    InvalidCreditTypes,
    InvalidDatetimeRange,
    InvalidExpiresAt,
    InvalidStartsAt,
    TransactionIdRequired,
)
from ledger.api.fields import (
    AmountField,
    BusinessTypeField,
    EmailField,
    IdField,
    InstantField,
    MetadataField,
    TextField,
    TtlField,
    WalletNameField,
    WalletNamesField,
)

WALLET_HELP = "Wallet name, 1-64 characters; `credit_type` is its legacy alias."


class DepositRequest(serializers.Serializer):
    customer_id = IdField(missing_error=CustomerIdRequired, help_text="Created if unknown.")
    amount = AmountField()
    wallet = TextField(min_length=1, max_length=64, help_text=WALLET_HELP)
    credit_type = TextField(min_length=1, max_length=64, help_text="Legacy alias of `wallet`.")
    source = TextField(min_length=1, max_length=64, default="default")
    starts_at = InstantField(error=InvalidStartsAt)
    expires_at = InstantField(error=InvalidExpiresAt)
    idempotency_key = IdField(
        help_text="Always send one: clients retry, and a deposit without a key is not "
        "idempotent. Also read from the `Idempotency-Key` header; the body wins."
    )
    name = TextField(max_length=255)
    email = EmailField()
    metadata = MetadataField()
    description = TextField(max_length=1000, default="")
    business_type = BusinessTypeField()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["wallet"] = data.pop("wallet") or data.pop("credit_type") or "default"
        data.pop("credit_type", None)
        starts_at, expires_at = data["starts_at"], data["expires_at"]
        if starts_at and expires_at and expires_at <= starts_at:
            raise InvalidDatetimeRange("expires_at")
        return data


class DeductRequest(serializers.Serializer):
    customer_id = IdField(missing_error=CustomerIdRequired)
    transaction_id = IdField(missing_error=TransactionIdRequired)
    amount = AmountField()
    credit_types = WalletNamesField(help_text="Restrict to these wallets (Python SDK form).")
    wallet = WalletNameField(
        help_text="Restrict to this wallet (JS SDK form); same as credit_types."
    )
    business_type = BusinessTypeField()
    description = TextField(max_length=1000, default="")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        credit_types, wallet = data.pop("credit_types"), data.pop("wallet")
        if credit_types is not None and wallet is not None:
            raise InvalidCreditTypes("credit_types")
        if wallet is not None:
            credit_types = [wallet]
        if credit_types is not None and not (
            isinstance(credit_types, list)
            and credit_types
            and all(isinstance(name, str) and name for name in credit_types)
        ):
            raise InvalidCreditTypes("credit_types" if wallet is None else "wallet")
        data["wallets"] = credit_types
        return data


class FreezeRequest(DeductRequest):
    unfreeze_after_seconds = TtlField(
        maximum=2_592_000, help_text="Auto-unfreeze after this many seconds (≤ 30 days)."
    )
    consume_after_seconds = TtlField(
        maximum=604_800, help_text="Auto-consume in full after this many seconds (≤ 7 days)."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data.get("unfreeze_after_seconds") is not None and (
            data.get("consume_after_seconds") is not None
        ):
            raise InvalidAutoSettlement({"field": "consume_after_seconds"})
        return super().to_internal_value(data)


class ConsumeRequest(serializers.Serializer):
    transaction_id = IdField(missing_error=TransactionIdRequired)
    actual_amount = AmountField(
        allow_zero=True,
        not_positive=ActualAmountMustBeNonNegative,
        help_text="The actual cost; defaults to the whole frozen amount.",
    )


class UnfreezeRequest(serializers.Serializer):
    transaction_id = IdField(missing_error=TransactionIdRequired)


# --- responses (schema only) -------------------------------------------------------------


@extend_schema_field({"type": "number"})
class Amount(serializers.DecimalField):
    """An exact amount in a response: a JSON number, integral values written as integers.
    Sums over many accounts may pass the per-operation maximum, so no bound is declared."""

    def __init__(self, **kwargs: Any):
        super().__init__(max_digits=30, decimal_places=6, coerce_to_string=False, **kwargs)


class DepositResponse(serializers.Serializer):
    customer_id = serializers.CharField()
    account_id = serializers.CharField()
    wallet = serializers.CharField()
    credit_type = serializers.CharField()
    source = serializers.CharField()
    total_amount = Amount()
    added_amount = Amount()
    starts_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    record_id = serializers.CharField()
    is_idempotent_replay = serializers.BooleanField()


class Counters(serializers.Serializer):
    total = Amount()
    used = Amount()
    frozen = Amount()
    available = Amount()


class AccountView(Counters):
    account_id = serializers.CharField()
    account_type = serializers.CharField()
    credit_type = serializers.CharField()
    wallet = serializers.CharField()
    source = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class SourceView(Counters):
    source = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class WalletView(Counters):
    sources = SourceView(many=True)


class CustomerResponse(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()
    balance = Counters()
    accounts = AccountView(many=True)
    wallets = serializers.DictField(child=WalletView())


class DetailItem(serializers.Serializer):
    account_id = serializers.CharField()
    wallet = serializers.CharField()
    credit_type = serializers.CharField()
    source = serializers.CharField()
    amount = Amount()


class FreezeResponse(serializers.Serializer):
    transaction_id = serializers.CharField()
    frozen_amount = Amount()
    freeze_details = DetailItem(many=True)
    unfreeze_after = serializers.DateTimeField(allow_null=True)
    consume_after = serializers.DateTimeField(allow_null=True)
    is_idempotent_replay = serializers.BooleanField()


class ConsumeResponse(serializers.Serializer):
    transaction_id = serializers.CharField()
    consumed_amount = Amount()
    returned_amount = Amount(required=False)
    overage_amount = Amount(required=False)
    consume_details = DetailItem(many=True)
    consumed_at = serializers.DateTimeField()
    is_idempotent_replay = serializers.BooleanField()


class UnfreezeResponse(serializers.Serializer):
    transaction_id = serializers.CharField()
    unfrozen_amount = Amount()
    unfreeze_details = DetailItem(many=True)
    unfrozen_at = serializers.DateTimeField()
    is_idempotent_replay = serializers.BooleanField()


class DeductResponse(serializers.Serializer):
    transaction_id = serializers.CharField()
    deducted_amount = Amount()
    deduct_details = DetailItem(many=True)
    deducted_at = serializers.DateTimeField()
    is_idempotent_replay = serializers.BooleanField()


class TransactionResponse(serializers.Serializer):
    transaction_id = serializers.CharField()
    customer_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=["FREEZE", "DEDUCT"])
    state = serializers.ChoiceField(choices=["FROZEN", "CONSUMED", "UNFROZEN", "DEDUCTED"])
    settled_by = serializers.ChoiceField(choices=["client", "scheduler"], allow_null=True)
    amount = Amount()
    frozen_amount = Amount()
    consumed_amount = Amount()
    returned_amount = Amount()
    overage_amount = Amount()
    unfreeze_after = serializers.DateTimeField(allow_null=True)
    consume_after = serializers.DateTimeField(allow_null=True)
    business_type = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    details = DetailItem(many=True)
    created_at = serializers.DateTimeField()
    settled_at = serializers.DateTimeField(allow_null=True)


class ErrorBody(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.CharField()
    details = serializers.DictField(allow_null=True)
    retryable = serializers.BooleanField()
    request_id = serializers.CharField()


class ErrorResponse(serializers.Serializer):
    error = ErrorBody()


class HealthResponse(serializers.Serializer):
    status = serializers.CharField()
