"""GET /v1/customers/{customer_id}/ledger."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from credits_project.api.json import first_bad_string
from credits_project.errors import InvalidLimit, InvalidOperationType, InvalidRequest
from ledger import selectors
from ledger.api.serializers import Amount
from ledger.api.views import CUSTOMER_ID, ID_SCHEMA, READ_ERRORS, ApiView, path_id
from ledger.ledger_pages import OPERATION_TYPE_ALIASES, LedgerQuery, ledger_page
from ledger.models import OperationType

MAX_LIMIT = 100


class LedgerEntryView(serializers.Serializer):
    id = serializers.CharField()
    operation_type = serializers.ChoiceField(choices=OperationType.values)
    amount = Amount()
    wallet = serializers.CharField()
    credit_type = serializers.CharField()
    source = serializers.CharField()
    account_id = serializers.CharField()
    transaction_id = serializers.CharField(allow_null=True)
    business_type = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=["ACTIVE", "PENDING", "EXPIRED"])
    created_at = serializers.DateTimeField()


class LedgerPageView(serializers.Serializer):
    items = LedgerEntryView(many=True)
    total_count = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


def query_params(request: Request) -> dict[str, str]:
    params = {}
    for name in ("limit", "cursor", "operation_type", "transaction_id"):
        value = request.query_params.get(name)
        if value is None:
            continue
        if first_bad_string(value):
            raise InvalidRequest(name, "bad_string")
        params[name] = value
    return params


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise InvalidLimit("limit", minimum=1, maximum=MAX_LIMIT)
    return int(raw)


def parse_operation_type(raw: str | None) -> str | None:
    if raw is None:
        return None
    operation_type = OPERATION_TYPE_ALIASES.get(raw, raw)
    if operation_type not in OperationType.values:
        raise InvalidOperationType("operation_type")
    return operation_type


class CustomerLedgerView(ApiView):
    @extend_schema(
        operation_id="get_customer_ledger",
        summary="Page through a customer's ledger, newest first",
        parameters=[
            CUSTOMER_ID,
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                description="1-100, default 20.",
            ),
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
            OpenApiParameter(
                "operation_type",
                str,
                enum=[*OperationType.values, "DEPOSIT"],
                description="`DEPOSIT` is accepted as `GRANT`.",
            ),
            OpenApiParameter("transaction_id", ID_SCHEMA),
        ],
        responses={200: LedgerPageView, **READ_ERRORS},
        tags=["customers"],
    )
    def get(self, request: Request, customer_id: str) -> Response:
        params: dict[str, Any] = query_params(request)
        limit = parse_limit(params.get("limit"))
        operation_type = parse_operation_type(params.get("operation_type"))
        transaction_id = params.get("transaction_id")
        if transaction_id is not None:
            path_id(transaction_id, "transaction_id")
        customer = selectors.get_customer(self.project, path_id(customer_id, "customer_id"))
        query = LedgerQuery(
            customer=customer,
            limit=limit,
            cursor=params.get("cursor"),
            operation_type=operation_type,
            transaction_id=transaction_id,
        )
        return Response(ledger_page(query))
