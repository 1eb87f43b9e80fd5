"""The service's one error hierarchy.

Every error a client can see is a subclass of `ServiceError`, carrying the HTTP status, the
envelope `type`, a stable `code` and a human `message` that is stable per code. Services,
validators and middleware raise these; one handler renders the envelope (docs/api.md, section
6).
"""

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every client-visible error; rendered as the error envelope."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "server_error"
    message: ClassVar[str] = "internal server error"
    retryable: ClassVar[bool] = False

    def __init__(self, details: dict[str, Any] | None = None, *, message: str | None = None):
        self.details = details
        if message is not None:
            self.message = message
        super().__init__(self.message)


# --- 400 -----------------------------------------------------------------------------------


class BadRequest(ServiceError):
    """A request the service understood but will not carry out; nothing changed."""

    status = 400
    type = "bad_request"


class FieldError(BadRequest):
    """A request field is invalid; `details.field` names it."""

    def __init__(self, field: str, **details: Any):
        super().__init__({"field": field, **details})


class InvalidRequest(FieldError):
    """A field error without a more specific code (wrong type, too long, NUL, ...)."""

    code = "invalid_request"
    message = "invalid request"

    def __init__(self, field: str, reason: str | None = None, **details: Any):
        if reason:
            details["reason"] = reason
        super().__init__(field, **details)


class CustomerIdRequired(FieldError):
    code = "customer_id_required"
    message = "customer_id is required"

    def __init__(self) -> None:
        super().__init__("customer_id")


class TransactionIdRequired(FieldError):
    code = "transaction_id_required"
    message = "transaction_id is required"

    def __init__(self) -> None:
        super().__init__("transaction_id")


class AmountMustBePositive(FieldError):
    code = "amount_must_be_positive"
    message = "amount must be a positive number"


class InvalidAmount(FieldError):
    code = "invalid_amount"
    message = "amount must be a number with at most 6 decimal places and at most 10^12"


class ActualAmountMustBeNonNegative(FieldError):
    code = "actual_amount_must_be_non_negative"
    message = "actual_amount must be zero or a positive number"


class InvalidAsOf(FieldError):
    code = "invalid_as_of"
    message = "as_of must be an ISO-8601 datetime with a timezone, at most ten years ahead"


class InvalidStartsAt(FieldError):
    code = "invalid_starts_at"
    message = "starts_at must be an ISO-8601 datetime with a timezone"


class InvalidExpiresAt(FieldError):
    code = "invalid_expires_at"
    message = "expires_at must be an ISO-8601 datetime with a timezone"


class InvalidDatetimeRange(FieldError):
    code = "invalid_datetime_range"
    message = "expires_at must be later than starts_at"


class InvalidCreditTypes(FieldError):
    code = "invalid_credit_types"
    message = "credit_types must be a non-empty list of wallet names, or wallet a wallet name"


class IdempotencyKeyConflict(FieldError):
    """A deposit sent two different idempotency keys, in its body and its `Idempotency-Key`
    header: which one the client retries with cannot be known, so neither is taken."""

    code = "idempotency_key_conflict"
    message = "the idempotency_key field and the Idempotency-Key header differ"

    def __init__(self) -> None:
        super().__init__("idempotency_key")


class InvalidBusinessType(FieldError):
    code = "invalid_business_type"
    message = "business_type is not one of the known values"


class InvalidMetadata(FieldError):
    code = "invalid_metadata"
    message = "metadata must be a JSON object of at most 16384 bytes"


class InvalidLimit(FieldError):
    code = "invalid_limit"
    message = "limit must be an integer from 1 to 100"


class InvalidCursor(FieldError):
    code = "invalid_cursor"
    message = "cursor is not valid for this query"


class InvalidOperationType(FieldError):
    code = "invalid_operation_type"
    message = "operation_type is not one of the known values"


class InvalidAutoSettlement(BadRequest):
    code = "invalid_auto_settlement"
    message = "send at most one of unfreeze_after_seconds and consume_after_seconds"


class InvalidAutoSettlementTtl(FieldError):
    code = "invalid_auto_settlement_ttl"
    message = "the auto-settlement delay must be an integer number of seconds within range"


class InsufficientBalance(BadRequest):
    """Not enough available credits; `details` has `requested`, `available`, `wallet`."""

    code = "insufficient_balance"
    message = "insufficient balance"


class InsufficientBalanceInSelectedCreditTypes(InsufficientBalance):
    """Enough credits overall, but not in the wallets the request was restricted to."""

    code = "insufficient_balance_in_selected_credit_types"
    message = "insufficient balance in the selected wallets"


class NoConsumableFreezeRecords(BadRequest):
    code = "no_consumable_freeze_records"
    message = "no frozen credits to consume for this transaction"


class FreezeRecordsAlreadyConsumed(BadRequest):
    code = "freeze_records_already_consumed"
    message = "the frozen credits of this transaction were already consumed"


class NoUnfreezableRecords(BadRequest):
    code = "no_unfreezable_records"
    message = "no frozen credits to unfreeze for this transaction"


class FreezeAutoUnfrozen(BadRequest):
    code = "freeze_auto_unfrozen"
    message = "the freeze passed its deadline and was unfrozen automatically"


class AccountNotExpirable(BadRequest):
    """An operator asked to expire an account that has already expired or not started yet."""

    code = "account_not_expirable"
    message = "the account has already expired or has not started yet"


class NotRefundable(BadRequest):
    """A refund of a charge that consumed nothing for good: a freeze still open, or released
    by its client or the scheduler; `details` has the charge's `state`."""

    code = "not_refundable"
    message = "only a deduct or a consumed freeze can be refunded"


class RefundExceedsCharge(BadRequest):
    """A refund of more than the charge has left to refund (or of a charge fully refunded);
    `details` has `requested` and `remaining_refundable`."""

    code = "refund_exceeds_charge"
    message = "the refund exceeds what the charge has left to refund"


class AccountAlreadyVoided(BadRequest):
    """A void of an account that an earlier void (under another `void_id`) ended."""

    code = "account_already_voided"
    message = "the account was already voided"


class DebtTooLarge(BadRequest):
    """A clawback that would take a credit line's debt past what the ledger can hold
    (9 * 10^12 credits); `details` has `debt` and `maximum`."""

    code = "debt_too_large"
    message = "the clawback would take the debt past what a credit line can hold"


class InvalidVoidMode(FieldError):
    code = "invalid_void_mode"
    message = "mode must be remainder or clawback"


class InvalidCreditLimit(FieldError):
    code = "invalid_credit_limit"
    message = "limit must be a number from 0 to 10^12 with at most 6 decimal places"


class RefundIdRequired(FieldError):
    code = "refund_id_required"
    message = "refund_id is required"

    def __init__(self) -> None:
        super().__init__("refund_id")


class VoidIdRequired(FieldError):
    code = "void_id_required"
    message = "void_id is required"

    def __init__(self) -> None:
        super().__init__("void_id")


class ScheduleIdRequired(FieldError):
    code = "schedule_id_required"
    message = "schedule_id is required"

    def __init__(self) -> None:
        super().__init__("schedule_id")


class InvalidPeriod(FieldError):
    code = "invalid_period"
    message = "period must be one of day, week, month, year"


class InvalidEvery(FieldError):
    code = "invalid_every"
    message = "every must be an integer from 1 to 1000"


class InvalidAnchor(FieldError):
    code = "invalid_anchor"
    message = "anchor must be an ISO-8601 datetime with a timezone, in the years 1970 to 2999"


class InvalidTimezone(FieldError):
    code = "invalid_timezone"
    message = "timezone must be an IANA timezone name"


class InvalidEndsAt(FieldError):
    code = "invalid_ends_at"
    message = "ends_at must be an ISO-8601 datetime with a timezone, later than the anchor"


class InvalidExpiresAfterPeriods(FieldError):
    code = "invalid_expires_after_periods"
    message = "expires_after_periods must be an integer from 1 to 1000, or null for never"


class InvalidRollover(FieldError):
    """A rollover that is not one cap (`max_amount` > 0, or `max_percent` in (0, 100]), or
    one on credits that never expire."""

    code = "invalid_rollover"
    message = (
        "rollover must be {max_amount: N} or {max_percent: P} with 0 < P <= 100, "
        "on credits that expire"
    )


class InvalidCancelAt(FieldError):
    code = "invalid_cancel_at"
    message = "at must be now or period_end"


class ScheduleNotActive(BadRequest):
    """An update of a schedule that has ended or was canceled; `details` has its `status`."""

    code = "schedule_not_active"
    message = "the schedule has ended or was canceled"


class InvalidJson(BadRequest):
    code = "invalid_json"
    message = "the request body must be a JSON object"


class InvalidGrantFile(BadRequest):
    """A bulk grant file that cannot be read as a whole (no header, unknown, missing or
    repeated columns); `details` names what is wrong. Nothing in it is granted."""

    code = "invalid_grant_file"
    message = "the grant file's columns are not valid"


# Slots and entitlements


class WalletRequired(FieldError):
    code = "wallet_required"
    message = "wallet is required"

    def __init__(self) -> None:
        super().__init__("wallet")


class ResourceIdRequired(FieldError):
    code = "resource_id_required"
    message = "resource_id is required"

    def __init__(self) -> None:
        super().__init__("resource_id")


class InvalidSlotAmount(FieldError):
    code = "invalid_slot_amount"
    message = "amount must be a whole number of slots, at most 10^9"


class InvalidLeaseTtl(FieldError):
    code = "invalid_ttl_seconds"
    message = "ttl_seconds must be an integer number of seconds from 1 to 2592000"


class InvalidFromAt(FieldError):
    code = "invalid_from_at"
    message = "from_at must be an ISO-8601 datetime with a timezone"


class InvalidToAt(FieldError):
    code = "invalid_to_at"
    message = "to_at must be an ISO-8601 datetime with a timezone"


class SlotInsufficientCapacity(BadRequest):
    """A claim that no pool it may take has room for; `details` has `requested` and
    `available` (summed over those pools)."""

    code = "slot_insufficient_capacity"
    message = "not enough slot capacity available"


class SlotSplitRequired(BadRequest):
    """A claim without `source` that the wallet's pools could hold together but no one of
    them alone; `details` has `requested`, `available` and `largest_available`."""

    code = "slot_split_required"
    message = "no single pool of the wallet can hold the claim; claim per source"


class SlotCapacityBelowInUse(BadRequest):
    """A revoke that would leave the pool less capacity than it has in use; `details` has
    `requested`, `capacity` and `in_use`."""

    code = "slot_capacity_below_in_use"
    message = "the revoke would take the capacity below what is in use"


class FeatureKeyRequired(FieldError):
    code = "feature_key_required"
    message = "feature_key is required"

    def __init__(self) -> None:
        super().__init__("feature_key")


class ValueRequired(FieldError):
    code = "value_required"
    message = "value is required"

    def __init__(self) -> None:
        super().__init__("value")


class EntitlementValidationError(FieldError):
    """An entitlement field of the wrong kind (a value that is not a string, a key or value
    too long, a NUL); `details` names the field and the reason."""

    code = "entitlement_validation_error"
    message = "the entitlement is not valid"

    def __init__(self, field: str, reason: str, **details: Any):
        super().__init__(field, reason=reason, **details)


class InvalidValidFrom(FieldError):
    code = "invalid_valid_from"
    message = "valid_from must be an ISO-8601 datetime with a timezone, or null"


class InvalidValidUntil(FieldError):
    code = "invalid_valid_until"
    message = "valid_until must be an ISO-8601 datetime with a timezone, or null"


class UnreadableGrantFile(BadRequest):
    """A bulk grant file that is not text in UTF-8 (compressed, UTF-16, binary, another
    encoding); `details.reason` says what it looks like. Nothing in it is granted."""

    code = "unreadable_grant_file"
    message = "the grant file is not text: save it as CSV or JSON Lines in UTF-8"


# --- 401 -----------------------------------------------------------------------------------


class AuthError(ServiceError):
    """Authentication failed; answered with `WWW-Authenticate: Bearer`."""

    status = 401
    type = "auth_error"


class MissingApiKey(AuthError):
    code = "missing_api_key"
    message = "missing API key: send Authorization: Bearer <api_key>"


class InvalidApiKey(AuthError):
    code = "invalid_api_key"
    message = "invalid API key"


class ApiKeyRevoked(AuthError):
    code = "api_key_revoked"
    message = "this API key has been revoked"


# --- 404 / 405 / 409 / 413 / 415 / 429 / 5xx --------------------------------------------


class NotFound(ServiceError):
    status = 404
    type = "not_found"
    code = "not_found"
    message = "no such route"


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    message = "customer not found"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    message = "transaction not found"


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "account not found"


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"
    message = "schedule not found"


class SlotPoolNotFound(NotFound):
    code = "slot_pool_not_found"
    message = "the customer has no slot pool in this wallet"


class SlotHoldingNotFound(NotFound):
    code = "slot_holding_not_found"
    message = "the resource holds no slot in this wallet"


class EntitlementNotFound(NotFound):
    """An operator's remove of an entitlement the customer does not have (the API's remove
    answers `removed: false` instead, so that a retry is harmless)."""

    code = "entitlement_not_found"
    message = "the customer has no such entitlement"


class EntitlementCustomerNotFound(NotFound):
    code = "entitlement_customer_not_found"
    message = "customer not found"


class MethodNotAllowed(ServiceError):
    status = 405
    type = "bad_request"
    code = "method_not_allowed"
    message = "method not allowed on this route"


class Conflict(ServiceError):
    status = 409
    type = "conflict"


class TransactionConflict(Conflict):
    """The identity is already used by another customer or another kind of operation."""

    code = "transaction_conflict"
    message = "this transaction id is already used by another customer or operation"


class IdempotencyConflict(Conflict):
    """The identity was already used with other parameters."""

    code = "idempotency_conflict"
    message = "this idempotency key was already used with different parameters"


class RequestTooLarge(ServiceError):
    status = 413
    type = "bad_request"
    code = "request_too_large"
    message = "request body too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    type = "bad_request"
    code = "unsupported_media_type"
    message = "request body must be sent as application/json"


class RateLimited(ServiceError):
    status = 429
    type = "rate_limited"
    code = "rate_limited"
    message = "too many requests"
    retryable = True

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__({"retry_after": retry_after})


class ServerError(ServiceError):
    retryable = True


class ServiceUnavailable(ServiceError):
    status = 503
    code = "service_unavailable"
    message = "the database is unavailable"
    retryable = True
