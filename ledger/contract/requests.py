"""Request bodies of the credits API: validated by the contract's fields (see `fields`), and
documented from the same declarations in the OpenAPI schema.
"""

from functools import cache
from typing import Any

from rest_framework import serializers

from credits_project.errors import (
    ActualAmountMustBeNonNegative,
    CustomerIdRequired,
    InvalidAutoSettlement,
    InvalidCreditLimit,
    InvalidCreditTypes,
    InvalidDatetimeRange,
    InvalidExpiresAt,
    InvalidStartsAt,
    InvalidVoidMode,
    RefundIdRequired,
    TransactionIdRequired,
    VoidIdRequired,
)
from ledger.contract.fields import (
    AmountField,
    BooleanField,
    BusinessTypeField,
    ChoiceField,
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


class RequestSerializer(serializers.Serializer):
    """Validation only, by the contract's fields, which raise its errors directly."""

    @classmethod
    def parse(cls, data: Any) -> dict[str, Any]:
        """The validated fields of a request body.

        Runs a prototype built once per class: binding the fields of a fresh serializer
        (DRF deep-copies them per instance) would cost more than validating them. Validation
        keeps no state on the serializer, so the prototype serves every request.
        """
        return _prototype(cls).run_validation(data)


@cache
def _prototype(cls: type[RequestSerializer]) -> RequestSerializer:
    prototype = cls()
    prototype.fields  # noqa: B018 (binds the fields once)
    return prototype


class DepositRequestSerializer(RequestSerializer):
    customer_id = IdField(missing_error=CustomerIdRequired, help_text="Created if unknown.")
    amount = AmountField()
    wallet = TextField(min_length=1, max_length=64, help_text=WALLET_HELP)
    credit_type = TextField(min_length=1, max_length=64, help_text="Legacy alias of `wallet`.")
    source = TextField(min_length=1, max_length=64, default="default")
    starts_at = InstantField(error=InvalidStartsAt)
    expires_at = InstantField(error=InvalidExpiresAt)
    idempotency_key = IdField(
        help_text="Always send one: clients retry, and a deposit without a key is not "
        "idempotent. Also read from the `Idempotency-Key` header; sending both with different "
        "values is `idempotency_key_conflict`."
    )
    name = TextField(max_length=255)
    email = EmailField()
    metadata = MetadataField()
    description = TextField(max_length=1000, default="")
    business_type = BusinessTypeField()
    repays_debt = BooleanField(
        default=True,
        help_text="Whether the credits first pay what the customer owes on its credit lines in "
        "their wallet (REPAY entries); false for a grant that should not pay for usage.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["wallet"] = data.pop("wallet") or data.pop("credit_type") or "default"
        data.pop("credit_type", None)
        starts_at, expires_at = data["starts_at"], data["expires_at"]
        if starts_at and expires_at and expires_at <= starts_at:
            raise InvalidDatetimeRange("expires_at")
        return data


class CustomerProfileSerializer(RequestSerializer):
    """A customer's profile as a deposit sets it: what the console's customer form saves too,
    so that every stored profile is one the API can render."""

    name = TextField(max_length=255)
    email = EmailField()
    metadata = MetadataField()


class ProjectNoticesSerializer(RequestSerializer):
    """A project's webhook notice settings, as the console edits them: the threshold an amount
    the API would take (or none), the wallet a wallet name (or none, all wallets)."""

    low_balance_threshold = AmountField(optional=True)
    low_balance_wallet = TextField(min_length=1, max_length=64)


class DeductRequestSerializer(RequestSerializer):
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


class QuoteRequestSerializer(DeductRequestSerializer):
    """A deduct's body without its `transaction_id`: nothing is recorded under an id."""

    transaction_id = None


class FreezeRequestSerializer(DeductRequestSerializer):
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


class ConsumeRequestSerializer(RequestSerializer):
    transaction_id = IdField(missing_error=TransactionIdRequired)
    actual_amount = AmountField(
        allow_zero=True,
        not_positive=ActualAmountMustBeNonNegative,
        help_text="The actual cost; defaults to the whole frozen amount.",
    )


class UnfreezeRequestSerializer(RequestSerializer):
    transaction_id = IdField(missing_error=TransactionIdRequired)


class RefundRequestSerializer(RequestSerializer):
    transaction_id = IdField(
        missing_error=TransactionIdRequired, help_text="The deduct or consumed freeze to refund."
    )
    refund_id = IdField(
        missing_error=RefundIdRequired,
        help_text="The refund's own idempotency key: a repeat replays the original answer.",
    )
    amount = AmountField(optional=True, help_text="Defaults to all not yet refunded.")
    description = TextField(max_length=1000, default="")


class VoidRequestSerializer(RequestSerializer):
    void_id = IdField(
        missing_error=VoidIdRequired,
        help_text="The void's idempotency key: a repeat replays the original answer.",
    )
    mode = ChoiceField(
        choices=("remainder", "clawback"),
        default="remainder",
        error=InvalidVoidMode,
        help_text="`remainder` ends the unused credits; `clawback` also takes back what was "
        "consumed from the account, as debt.",
    )
    description = TextField(max_length=1000, default="")
    dry_run = BooleanField(default=False, help_text="Answer the entries, write nothing.")


class CreditLimitRequestSerializer(RequestSerializer):
    wallet = TextField(
        min_length=1, max_length=64, help_text="The wallet; absent for all the customer's wallets."
    )
    limit = AmountField(
        allow_zero=True,
        not_positive=InvalidCreditLimit,
        invalid=InvalidCreditLimit,
        help_text="How far the customer may spend past its credits; 0 removes the limit.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["limit"] is None:
            raise InvalidCreditLimit("limit")
        return data
