"""OpenAPI descriptions shared by the API's operations: the error answers and path ids."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255}


class ErrorBodySerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.CharField()
    details = serializers.DictField(allow_null=True)
    retryable = serializers.BooleanField()
    request_id = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERRORS = {
    status: OpenApiResponse(ErrorSerializer, description=text)
    for status, text in {
        400: "Invalid request (see `error.code`); nothing changed.",
        401: "Missing, invalid or revoked API key.",
        404: "Unknown customer or transaction.",
        409: "The transaction id or idempotency key was used for something else.",
        413: "Request body too large.",
        415: "Request body is not application/json.",
        429: "Rate limited; retry after `Retry-After` seconds.",
        500: "Unexpected error; safe to retry with the same identity.",
        503: "Database unavailable; safe to retry with the same identity.",
    }.items()
}
READ_ERRORS = {status: ERRORS[status] for status in (400, 401, 404, 429, 500, 503)}
QUOTE_ERRORS = {status: error for status, error in ERRORS.items() if status != 409}

CUSTOMER_ID = OpenApiParameter(
    "customer_id",
    ID_SCHEMA,
    OpenApiParameter.PATH,
    description="Percent-encoded; may hold any character but NUL, `/` included (as `%2F`).",
)
TRANSACTION_ID = OpenApiParameter("transaction_id", ID_SCHEMA, OpenApiParameter.PATH)
SCHEDULE_ID = OpenApiParameter(
    "schedule_id", ID_SCHEMA, OpenApiParameter.PATH, description="Percent-encoded."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", ID_SCHEMA, OpenApiParameter.HEADER, required=False
)
ACCOUNT_ID = OpenApiParameter(
    "account_id",
    {"type": "string", "pattern": "^[0-9]+$"},
    OpenApiParameter.PATH,
    description="The `account_id` a deposit answered with.",
)
FEATURE_KEY = OpenApiParameter(
    "feature_key",
    ID_SCHEMA,
    OpenApiParameter.PATH,
    description="Percent-encoded, as a customer id.",
)
LIST_PARAMETERS = [
    OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": 100}, description="1-100, default 20."
    ),
    OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
    OpenApiParameter(
        "from_at",
        {"type": "string", "format": "date-time"},
        description="From this instant on (inclusive).",
    ),
    OpenApiParameter(
        "to_at",
        {"type": "string", "format": "date-time"},
        description="Before this instant (exclusive).",
    ),
]
