"""The credits API. Each action validates its input, calls one service or selector, and
renders the result (`shapes`); errors are raised, never built here (see
`credits_project.api.errors`). Routes bind the actions in `ledger.api.routes`.
"""

import datetime as dt
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from credits_project.errors import IdempotencyKeyConflict
from credits_project.replicas import reads_from_standby
from customers.models import Project
from ledger import selectors, services
from ledger.api import queries
from ledger.api.docs import (
    ACCOUNT_ID,
    CUSTOMER_ID,
    ERRORS,
    ID_SCHEMA,
    IDEMPOTENCY_KEY,
    QUOTE_ERRORS,
    READ_ERRORS,
    SCHEDULE_ID,
    TRANSACTION_ID,
)
from ledger.api.shapes import render, response_serializer
from ledger.contract import requests as r
from ledger.contract import schedules as s
from ledger.models import OperationType
from ledger.results import (
    ConsumeResult,
    CreditLimitResult,
    CustomerBalance,
    DeductResult,
    DepositResult,
    FreezeResult,
    Health,
    LedgerPage,
    QuoteResult,
    RefundResult,
    ScheduleList,
    ScheduleResult,
    TransactionState,
    UnfreezeResult,
    VoidResult,
)

# An `as_of` this close ahead reads as now: a clock a little ahead of the server's asks for now.
PRESENT = dt.timedelta(seconds=1)


def responses(result_type: type, errors: dict = ERRORS) -> dict[int, Any]:
    return {200: response_serializer(result_type), **errors}


class ApiViewSet(ViewSet):
    @property
    def project(self) -> Project:
        return self.request.user.project

    @property
    def actor(self) -> str:
        return self.request.user.actor


DEPOSIT_DOCS = {
    "summary": "Deposit credits",
    "description": "Adds credits to a customer's wallet as one new credit account, creating "
    "the customer on first deposit. **Always send an idempotency key**, in the body or the "
    "`Idempotency-Key` header: clients retry, and a deposit without one is not idempotent.",
    "request": r.DepositRequestSerializer,
    "responses": responses(DepositResult),
    "parameters": [IDEMPOTENCY_KEY],
    "tags": ["customers"],
}


class CustomersViewSet(ApiViewSet):
    @extend_schema(operation_id="deposit", **DEPOSIT_DOCS)
    def deposit(self, request: Request) -> Response:
        data = r.DepositRequestSerializer.parse(request.data)
        header_key = None
        if "Idempotency-Key" in request.headers:
            # The body's field validates it, so its errors name `idempotency_key`.
            key_field = r.DepositRequestSerializer().fields["idempotency_key"]
            header_key = key_field.run_validation(request.headers["Idempotency-Key"])
        key = data.pop("idempotency_key") or header_key
        if header_key is not None and key != header_key:
            raise IdempotencyKeyConflict()
        given = {field: data.pop(field) for field in ("name", "email", "metadata")}
        profile = services.Profile(**{k: v for k, v in given.items() if v is not None})
        result = services.deposit(
            project=self.project, actor=self.actor, idempotency_key=key, profile=profile, **data
        )
        return Response(render(result))

    @extend_schema(
        operation_id="get_customer",
        parameters=[
            CUSTOMER_ID,
            OpenApiParameter(
                "as_of",
                {"type": "string", "format": "date-time"},
                description="Read the customer as it was at this instant, from its ledger, "
                "with validity windows judged at that instant; or, more than a second ahead "
                "(at most ten years), as it will be if nothing else is charged: schedules' "
                "grants, expiries and rollovers, and open freezes settled at their deadlines "
                "(`projected: true`). Without it, the read is of now.",
            ),
        ],
        summary="Read a customer's balance",
        responses=responses(CustomerBalance, READ_ERRORS),
        tags=["customers"],
    )
    def retrieve(self, request: Request, customer_id: str) -> Response:
        as_of = queries.parse_as_of(request.query_params)
        now = timezone.now()
        if as_of is None or now < as_of <= now + PRESENT:
            return Response(render(selectors.customer_balance(self.project, customer_id)))
        if as_of > now:
            projected = selectors.customer_balance_projected(self.project, customer_id, as_of)
            return Response(render(projected))
        with reads_from_standby():
            balance = selectors.customer_balance_as_of(self.project, customer_id, as_of)
        return Response(render(balance))

    @extend_schema(
        operation_id="get_customer_ledger",
        summary="Page through a customer's ledger, newest first",
        parameters=[
            CUSTOMER_ID,
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": queries.MAX_LIMIT},
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
        responses=responses(LedgerPage, READ_ERRORS),
        tags=["customers"],
    )
    @reads_from_standby()
    def ledger(self, request: Request, customer_id: str) -> Response:
        params = queries.ledger_params(request.query_params)
        query = selectors.LedgerQuery(
            customer=selectors.customer_of(self.project, customer_id),
            limit=queries.parse_limit(params.get("limit")),
            cursor=params.get("cursor"),
            operation_type=queries.parse_operation_type(params.get("operation_type")),
            transaction_id=queries.parse_transaction_id(params.get("transaction_id")),
        )
        return Response(render(selectors.ledger_page(query)))

    @extend_schema(
        operation_id="void_account",
        summary="Void a credit account",
        description="Ends the account's unused credits now (`remainder`), or also takes back "
        "what was consumed from it as debt (`clawback`). `dry_run` answers the entries it "
        "would write. Idempotent by `void_id`.",
        parameters=[CUSTOMER_ID, ACCOUNT_ID],
        request=r.VoidRequestSerializer,
        responses=responses(VoidResult),
        tags=["customers"],
    )
    def void(self, request: Request, customer_id: str, account_id: str) -> Response:
        data = r.VoidRequestSerializer.parse(request.data)
        result = services.void(
            project=self.project,
            customer_id=customer_id,
            account_id=queries.parse_account_id(account_id),
            actor=self.actor,
            **data,
        )
        return Response(render(result))

    @extend_schema(
        operation_id="set_credit_limit",
        summary="Set a customer's credit limit",
        description="How far the customer may spend past its credits, in one wallet or (no "
        "`wallet`) in all; 0 removes the limit. Charges past the credits become debt, which "
        "the next deposits into the wallet pay back first.",
        parameters=[CUSTOMER_ID],
        request=r.CreditLimitRequestSerializer,
        responses=responses(CreditLimitResult),
        tags=["customers"],
    )
    def credit_limit(self, request: Request, customer_id: str) -> Response:
        data = r.CreditLimitRequestSerializer.parse(request.data)
        result = services.set_credit_limit(
            project=self.project, customer_id=customer_id, actor=self.actor, **data
        )
        return Response(render(result))

    @extend_schema(
        operation_id="list_customer_schedules",
        summary="List a customer's grant schedules",
        parameters=[CUSTOMER_ID],
        responses=responses(ScheduleList, READ_ERRORS),
        tags=["schedules"],
    )
    def schedules(self, request: Request, customer_id: str) -> Response:
        return Response(render(selectors.customer_schedules(self.project, customer_id)))


class BillingDepositViewSet(CustomersViewSet):
    """The same deposit, also served under /v1/billing/."""

    @extend_schema(operation_id="billing_deposit", **DEPOSIT_DOCS)
    def deposit(self, request: Request) -> Response:
        return super().deposit(request)


class BillingViewSet(ApiViewSet):
    @extend_schema(
        operation_id="freeze",
        summary="Freeze credits",
        description="Reserves credits before work whose final cost is unknown. Settle with "
        "consume or unfreeze, or set an auto-settlement deadline.",
        request=r.FreezeRequestSerializer,
        responses=responses(FreezeResult),
        tags=["billing"],
    )
    def freeze(self, request: Request) -> Response:
        data = r.FreezeRequestSerializer.parse(request.data)
        result = services.freeze(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="consume",
        summary="Consume a freeze",
        request=r.ConsumeRequestSerializer,
        responses=responses(ConsumeResult),
        tags=["billing"],
    )
    def consume(self, request: Request) -> Response:
        data = r.ConsumeRequestSerializer.parse(request.data)
        result = services.consume(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="unfreeze",
        summary="Unfreeze a freeze",
        request=r.UnfreezeRequestSerializer,
        responses=responses(UnfreezeResult),
        tags=["billing"],
    )
    def unfreeze(self, request: Request) -> Response:
        data = r.UnfreezeRequestSerializer.parse(request.data)
        result = services.unfreeze(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="deduct",
        summary="Deduct credits",
        description="Charges credits at once when the cost is known.",
        request=r.DeductRequestSerializer,
        responses=responses(DeductResult),
        tags=["billing"],
    )
    def deduct(self, request: Request) -> Response:
        data = r.DeductRequestSerializer.parse(request.data)
        result = services.deduct(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="refund",
        summary="Refund a charge",
        description="Puts back a deduct's or a consumed freeze's credits onto the accounts "
        "they came from, the last drawn first (all not yet refunded, or `amount`). "
        "Idempotent by `refund_id`.",
        request=r.RefundRequestSerializer,
        responses=responses(RefundResult),
        tags=["billing"],
    )
    def refund(self, request: Request) -> Response:
        data = r.RefundRequestSerializer.parse(request.data)
        result = services.refund(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="quote",
        summary="Quote a deduct",
        description="Answers which accounts and wallets a deduct with this body would draw, "
        "in order, and the balance after it, or the error it would get; records nothing. A "
        "deduct with the same body draws the same accounts unless the credits change first.",
        request=r.QuoteRequestSerializer,
        responses=responses(QuoteResult, QUOTE_ERRORS),
        tags=["billing"],
    )
    def quote(self, request: Request) -> Response:
        data = r.QuoteRequestSerializer.parse(request.data)
        result = selectors.quote(self.project, data["customer_id"], data["amount"], data["wallets"])
        return Response(render(result))

    @extend_schema(
        operation_id="get_transaction",
        parameters=[TRANSACTION_ID],
        summary="Read a freeze's or deduct's state",
        responses=responses(TransactionState, READ_ERRORS),
        tags=["billing"],
    )
    def transaction(self, request: Request, transaction_id: str) -> Response:
        return Response(render(selectors.transaction_state(self.project, transaction_id)))


class SchedulesViewSet(ApiViewSet):
    @extend_schema(
        operation_id="create_schedule",
        summary="Create a grant schedule",
        description="Grants the customer `amount` credits at the start of every period, "
        "exactly once per period, each grant a deposit under the key "
        "`schedule:{schedule_id}:{n}`. Periods that have started are granted at once (the "
        "first prorated with `prorate_first_period`). Idempotent by `schedule_id`.",
        request=s.ScheduleRequestSerializer,
        responses=responses(ScheduleResult),
        tags=["schedules"],
    )
    def create(self, request: Request) -> Response:
        data = s.ScheduleRequestSerializer.parse(request.data)
        result = services.create_schedule(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="get_schedule",
        summary="Read a grant schedule",
        parameters=[SCHEDULE_ID],
        responses=responses(ScheduleResult, READ_ERRORS),
        tags=["schedules"],
    )
    def retrieve(self, request: Request, schedule_id: str) -> Response:
        return Response(render(selectors.schedule(self.project, schedule_id)))

    @extend_schema(
        operation_id="update_schedule",
        summary="Update a grant schedule from its next period",
        description="New `amount`, `rollover`, `expires_after_periods` apply from the next "
        "period on; `ends_at` moves the end. Fields not sent stay as they are.",
        parameters=[SCHEDULE_ID],
        request=s.ScheduleUpdateRequestSerializer,
        responses=responses(ScheduleResult),
        tags=["schedules"],
    )
    def update(self, request: Request, schedule_id: str) -> Response:
        data = s.ScheduleUpdateRequestSerializer.parse(request.data)
        result = services.update_schedule(
            project=self.project, schedule_id=schedule_id, actor=self.actor, **data
        )
        return Response(render(result))

    @extend_schema(
        operation_id="cancel_schedule",
        summary="Cancel a grant schedule",
        description="`at: now` grants nothing more; `at: period_end` lets the current period "
        "run. What was granted stays.",
        parameters=[SCHEDULE_ID],
        request=s.ScheduleCancelRequestSerializer,
        responses=responses(ScheduleResult),
        tags=["schedules"],
    )
    def cancel(self, request: Request, schedule_id: str) -> Response:
        data = s.ScheduleCancelRequestSerializer.parse(request.data)
        result = services.cancel_schedule(
            project=self.project, schedule_id=schedule_id, actor=self.actor, **data
        )
        return Response(render(result))


class ServiceViewSet(ApiViewSet):
    @extend_schema(
        operation_id="health", responses=responses(Health, READ_ERRORS), tags=["service"]
    )
    def health(self, request: Request) -> Response:
        return Response(render(Health(status="ok")))
