"""The credits API: each view validates its input, calls one service or selector, and returns
the result. Errors are raised, never built here (see `credits_project.api.errors`)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from credits_project.api.json import first_bad_string
from credits_project.errors import InvalidRequest
from credits_project.middleware import MAX_ID_LENGTH
from ledger import selectors, services
from ledger.api import serializers as s

ERRORS = {
    code: OpenApiResponse(s.ErrorResponse, description=text)
    for code, text in {
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
READ_ERRORS = {code: ERRORS[code] for code in (400, 401, 404, 429, 500, 503)}
ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255}
CUSTOMER_ID = OpenApiParameter(
    "customer_id",
    ID_SCHEMA,
    OpenApiParameter.PATH,
    description="Percent-encoded; may hold any character but NUL, `/` included (as `%2F`).",
)
TRANSACTION_ID = OpenApiParameter("transaction_id", ID_SCHEMA, OpenApiParameter.PATH)


def path_id(value: str, field: str) -> str:
    """Validate an id taken from the path by the rules of the same id in a body."""
    if first_bad_string(value):
        raise InvalidRequest(field, "bad_string")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidRequest(field, "bad_length", min_length=1, max_length=MAX_ID_LENGTH)
    return value


class ApiView(APIView):
    def validated(self, serializer_class: type[Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @property
    def project(self):
        return self.request.user.project

    @property
    def actor(self) -> str:
        return self.request.user.actor


DEPOSIT_DOCS = {
    "summary": "Deposit credits",
    "description": "Adds credits to a customer's wallet as one new credit account, creating "
    "the customer on first deposit. **Always send an idempotency key**, in the body or the "
    "`Idempotency-Key` header: clients retry, and a deposit without one is not idempotent.",
    "request": s.DepositRequest,
    "responses": {200: s.DepositResponse, **ERRORS},
    "parameters": [
        OpenApiParameter("Idempotency-Key", ID_SCHEMA, OpenApiParameter.HEADER, required=False)
    ],
    "tags": ["customers"],
}


class DepositView(ApiView):
    @extend_schema(operation_id="deposit", **DEPOSIT_DOCS)
    def post(self, request: Request) -> Response:
        data = self.validated(s.DepositRequest)
        header_key = None
        if "Idempotency-Key" in request.headers:
            # Checked even when the body's key wins: a malformed header is bad input too. The
            # body's field validates it, so its errors name `idempotency_key`.
            key_field = s.DepositRequest().fields["idempotency_key"]
            header_key = key_field.run_validation(request.headers["Idempotency-Key"])
        key = data.pop("idempotency_key") or header_key
        given = {field: data.pop(field) for field in ("name", "email", "metadata")}
        profile = services.Profile(**{k: v for k, v in given.items() if v is not None})
        result = services.deposit(
            project=self.project,
            actor=self.actor,
            idempotency_key=key,
            profile=profile,
            **data,
        )
        return Response(result)


class BillingDepositView(DepositView):
    """The same deposit, also served under /v1/billing/."""

    @extend_schema(operation_id="billing_deposit", **DEPOSIT_DOCS)
    def post(self, request: Request) -> Response:
        return super().post(request)


class CustomerView(ApiView):
    @extend_schema(
        operation_id="get_customer",
        parameters=[CUSTOMER_ID],
        summary="Read a customer's balance",
        responses={200: s.CustomerResponse, **READ_ERRORS},
        tags=["customers"],
    )
    def get(self, request: Request, customer_id: str) -> Response:
        customer = selectors.get_customer(self.project, path_id(customer_id, "customer_id"))
        return Response(selectors.customer_balance(customer))


class FreezeView(ApiView):
    @extend_schema(
        operation_id="freeze",
        summary="Freeze credits",
        description="Reserves credits before work whose final cost is unknown. Settle with "
        "consume or unfreeze, or set an auto-settlement deadline.",
        request=s.FreezeRequest,
        responses={200: s.FreezeResponse, **ERRORS},
        tags=["billing"],
    )
    def post(self, request: Request) -> Response:
        return Response(
            services.freeze(
                project=self.project, actor=self.actor, **self.validated(s.FreezeRequest)
            )
        )


class ConsumeView(ApiView):
    @extend_schema(
        operation_id="consume",
        summary="Consume a freeze",
        request=s.ConsumeRequest,
        responses={200: s.ConsumeResponse, **ERRORS},
        tags=["billing"],
    )
    def post(self, request: Request) -> Response:
        return Response(
            services.consume(
                project=self.project, actor=self.actor, **self.validated(s.ConsumeRequest)
            )
        )


class UnfreezeView(ApiView):
    @extend_schema(
        operation_id="unfreeze",
        summary="Unfreeze a freeze",
        request=s.UnfreezeRequest,
        responses={200: s.UnfreezeResponse, **ERRORS},
        tags=["billing"],
    )
    def post(self, request: Request) -> Response:
        return Response(
            services.unfreeze(
                project=self.project, actor=self.actor, **self.validated(s.UnfreezeRequest)
            )
        )


class DeductView(ApiView):
    @extend_schema(
        operation_id="deduct",
        summary="Deduct credits",
        description="Charges credits at once when the cost is known.",
        request=s.DeductRequest,
        responses={200: s.DeductResponse, **ERRORS},
        tags=["billing"],
    )
    def post(self, request: Request) -> Response:
        return Response(
            services.deduct(
                project=self.project, actor=self.actor, **self.validated(s.DeductRequest)
            )
        )


class TransactionView(ApiView):
    @extend_schema(
        operation_id="get_transaction",
        parameters=[TRANSACTION_ID],
        summary="Read a freeze's or deduct's state",
        responses={200: s.TransactionResponse, **READ_ERRORS},
        tags=["billing"],
    )
    def get(self, request: Request, transaction_id: str) -> Response:
        transaction_id = path_id(transaction_id, "transaction_id")
        return Response(selectors.transaction_state(self.project, transaction_id))


class HealthView(ApiView):
    @extend_schema(
        operation_id="health", responses={200: s.HealthResponse, **READ_ERRORS}, tags=["service"]
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
