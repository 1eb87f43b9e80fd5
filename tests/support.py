"""Helpers shared by the whole test suite: projects and keys (factories), deposits made
through the real service, and the one assertion on the error envelope."""

import datetime as dt
from decimal import Decimal

import factory

from customers.models import ApiKey, Project
from ledger import services
from ledger.results import DepositResult

T0 = dt.datetime(2026, 4, 7, 12, 0, tzinfo=dt.UTC)
"""A fixed "now" for tests that move the clock through the services' `now=` arguments."""

DAY = dt.timedelta(days=1)

# Every error code of docs/api.md with its type and message, written out here rather than read
# from the code, so that a changed message or type fails a test.
ERRORS = {
    "invalid_request": ("bad_request", "invalid request"),
    "customer_id_required": ("bad_request", "customer_id is required"),
    "transaction_id_required": ("bad_request", "transaction_id is required"),
    "amount_must_be_positive": ("bad_request", "amount must be a positive number"),
    "invalid_amount": (
        "bad_request",
        "amount must be a number with at most 6 decimal places and at most 10^12",
    ),
    "actual_amount_must_be_non_negative": (
        "bad_request",
        "actual_amount must be zero or a positive number",
    ),
    "invalid_as_of": (
        "bad_request",
        "as_of must be an ISO-8601 datetime with a timezone, at most ten years ahead",
    ),
    "invalid_starts_at": ("bad_request", "starts_at must be an ISO-8601 datetime with a timezone"),
    "invalid_expires_at": (
        "bad_request",
        "expires_at must be an ISO-8601 datetime with a timezone",
    ),
    "invalid_datetime_range": ("bad_request", "expires_at must be later than starts_at"),
    "invalid_credit_types": (
        "bad_request",
        "credit_types must be a non-empty list of wallet names, or wallet a wallet name",
    ),
    "idempotency_key_conflict": (
        "bad_request",
        "the idempotency_key field and the Idempotency-Key header differ",
    ),
    "invalid_business_type": ("bad_request", "business_type is not one of the known values"),
    "invalid_metadata": ("bad_request", "metadata must be a JSON object of at most 16384 bytes"),
    "invalid_limit": ("bad_request", "limit must be an integer from 1 to 100"),
    "invalid_cursor": ("bad_request", "cursor is not valid for this query"),
    "invalid_operation_type": ("bad_request", "operation_type is not one of the known values"),
    "invalid_auto_settlement_ttl": (
        "bad_request",
        "the auto-settlement delay must be an integer number of seconds within range",
    ),
    "invalid_auto_settlement": (
        "bad_request",
        "send at most one of unfreeze_after_seconds and consume_after_seconds",
    ),
    "insufficient_balance": ("bad_request", "insufficient balance"),
    "insufficient_balance_in_selected_credit_types": (
        "bad_request",
        "insufficient balance in the selected wallets",
    ),
    "no_consumable_freeze_records": (
        "bad_request",
        "no frozen credits to consume for this transaction",
    ),
    "freeze_records_already_consumed": (
        "bad_request",
        "the frozen credits of this transaction were already consumed",
    ),
    "no_unfreezable_records": ("bad_request", "no frozen credits to unfreeze for this transaction"),
    "freeze_auto_unfrozen": (
        "bad_request",
        "the freeze passed its deadline and was unfrozen automatically",
    ),
    "not_refundable": ("bad_request", "only a deduct or a consumed freeze can be refunded"),
    "refund_exceeds_charge": (
        "bad_request",
        "the refund exceeds what the charge has left to refund",
    ),
    "account_already_voided": ("bad_request", "the account was already voided"),
    "invalid_void_mode": ("bad_request", "mode must be remainder or clawback"),
    "debt_too_large": (
        "bad_request",
        "the clawback would take the debt past what a credit line can hold",
    ),
    "invalid_credit_limit": (
        "bad_request",
        "limit must be a number from 0 to 10^12 with at most 6 decimal places",
    ),
    "refund_id_required": ("bad_request", "refund_id is required"),
    "void_id_required": ("bad_request", "void_id is required"),
    "account_not_found": ("not_found", "account not found"),
    "wallet_required": ("bad_request", "wallet is required"),
    "resource_id_required": ("bad_request", "resource_id is required"),
    "invalid_slot_amount": ("bad_request", "amount must be a whole number of slots, at most 10^9"),
    "invalid_ttl_seconds": (
        "bad_request",
        "ttl_seconds must be an integer number of seconds from 1 to 2592000",
    ),
    "invalid_from_at": ("bad_request", "from_at must be an ISO-8601 datetime with a timezone"),
    "invalid_to_at": ("bad_request", "to_at must be an ISO-8601 datetime with a timezone"),
    "slot_insufficient_capacity": ("bad_request", "not enough slot capacity available"),
    "slot_split_required": (
        "bad_request",
        "no single pool of the wallet can hold the claim; claim per source",
    ),
    "slot_capacity_below_in_use": (
        "bad_request",
        "the revoke would take the capacity below what is in use",
    ),
    "feature_key_required": ("bad_request", "feature_key is required"),
    "value_required": ("bad_request", "value is required"),
    "entitlement_validation_error": ("bad_request", "the entitlement is not valid"),
    "invalid_valid_from": (
        "bad_request",
        "valid_from must be an ISO-8601 datetime with a timezone, or null",
    ),
    "invalid_valid_until": (
        "bad_request",
        "valid_until must be an ISO-8601 datetime with a timezone, or null",
    ),
    "slot_pool_not_found": ("not_found", "the customer has no slot pool in this wallet"),
    "slot_holding_not_found": ("not_found", "the resource holds no slot in this wallet"),
    "entitlement_customer_not_found": ("not_found", "customer not found"),
    "entitlement_not_found": ("not_found", "the customer has no such entitlement"),
    "invalid_json": ("bad_request", "the request body must be a JSON object"),
    "schedule_id_required": ("bad_request", "schedule_id is required"),
    "invalid_period": ("bad_request", "period must be one of day, week, month, year"),
    "invalid_every": ("bad_request", "every must be an integer from 1 to 1000"),
    "invalid_anchor": (
        "bad_request",
        "anchor must be an ISO-8601 datetime with a timezone, in the years 1970 to 2999",
    ),
    "invalid_timezone": ("bad_request", "timezone must be an IANA timezone name"),
    "invalid_ends_at": (
        "bad_request",
        "ends_at must be an ISO-8601 datetime with a timezone, later than the anchor",
    ),
    "invalid_expires_after_periods": (
        "bad_request",
        "expires_after_periods must be an integer from 1 to 1000, or null for never",
    ),
    "invalid_rollover": (
        "bad_request",
        "rollover must be {max_amount: N} or {max_percent: P} with 0 < P <= 100, "
        "on credits that expire",
    ),
    "invalid_cancel_at": ("bad_request", "at must be now or period_end"),
    "schedule_not_active": ("bad_request", "the schedule has ended or was canceled"),
    "schedule_not_found": ("not_found", "schedule not found"),
    "missing_api_key": ("auth_error", "missing API key: send Authorization: Bearer <api_key>"),
    "invalid_api_key": ("auth_error", "invalid API key"),
    "api_key_revoked": ("auth_error", "this API key has been revoked"),
    "not_found": ("not_found", "no such route"),
    "customer_not_found": ("not_found", "customer not found"),
    "transaction_not_found": ("not_found", "transaction not found"),
    "method_not_allowed": ("bad_request", "method not allowed on this route"),
    "transaction_conflict": (
        "conflict",
        "this transaction id is already used by another customer or operation",
    ),
    "idempotency_conflict": (
        "conflict",
        "this idempotency key was already used with different parameters",
    ),
    "request_too_large": ("bad_request", "request body too large"),
    "unsupported_media_type": ("bad_request", "request body must be sent as application/json"),
    "rate_limited": ("rate_limited", "too many requests"),
    "service_unavailable": ("server_error", "the database is unavailable"),
    "server_error": ("server_error", "internal server error"),
}
RETRYABLE = {"rate_limited", "service_unavailable", "server_error"}


def envelope(response, code: str, details=None) -> dict:
    """The exact error envelope `response` should carry for `code`."""
    error_type, message = ERRORS[code]
    return {
        "error": {
            "message": message,
            "type": error_type,
            "code": code,
            "details": details,
            "retryable": code in RETRYABLE,
            "request_id": response.headers["X-Request-Id"],
        }
    }


def assert_error(response, status: int, code: str, details=None) -> None:
    """`response` (Django's test client's or httpx's) is exactly the envelope of `code`."""
    assert response.status_code == status, response.text
    assert response.json() == envelope(response, code, details)


def deposit(
    project: Project, amount: int | str | Decimal, *, customer_id: str = "c1", **fields
) -> DepositResult:
    """A deposit through the real service, as the actor `test` unless told otherwise."""
    fields.setdefault("actor", "test")
    return services.deposit(
        project=project, customer_id=customer_id, amount=Decimal(amount), **fields
    )


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n + 1}")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key of a project; the raw key, shown once in production, is on `.raw_key`."""

    class Meta:
        model = ApiKey

    project = factory.SubFactory(ProjectFactory)
    name = "test"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        api_key, raw_key = model_class.objects.create_key(*args, **kwargs)
        api_key.raw_key = raw_key
        return api_key
