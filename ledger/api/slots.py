"""The slot calls of the API (`/v1/slot/...`), as the JS SDK makes them: validate, call one
service or selector, render."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from credits_project.errors import InvalidFromAt, InvalidToAt
from credits_project.replicas import reads_from_standby
from ledger import selectors, services
from ledger.api import queries
from ledger.api.docs import CUSTOMER_ID, ID_SCHEMA, LIST_PARAMETERS, READ_ERRORS
from ledger.api.shapes import render
from ledger.api.views import ApiViewSet, responses
from ledger.contract import slots as s
from ledger.models import SlotEvent
from ledger.results import SlotEventPage, SlotHoldingResult, SlotPoolResult, SlotPools

EVENT_PARAMETERS = (
    "wallet",
    "resource_id",
    "cursor",
    "limit",
    "types",
    "sources",
    "from_at",
    "to_at",
)


class SlotViewSet(ApiViewSet):
    @extend_schema(
        operation_id="slot_grant_capacity",
        summary="Grant slot capacity",
        description="Adds slots to the customer's pool (`wallet`, `source`), creating the "
        "customer and the pool on first grant. Idempotent by the body's `idempotency_key`.",
        request=s.CapacityRequestSerializer,
        responses=responses(SlotPoolResult),
        tags=["slot"],
    )
    def grant(self, request: Request) -> Response:
        data = s.CapacityRequestSerializer.parse(request.data)
        result = services.grant_capacity(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="slot_revoke_capacity",
        summary="Revoke slot capacity",
        description="Takes slots from a pool, never below what is in use "
        "(`slot_capacity_below_in_use`). Idempotent by the body's `idempotency_key`.",
        request=s.CapacityRequestSerializer,
        responses=responses(SlotPoolResult),
        tags=["slot"],
    )
    def revoke(self, request: Request) -> Response:
        data = s.CapacityRequestSerializer.parse(request.data)
        result = services.revoke_capacity(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="slot_claim",
        summary="Claim slots for a resource",
        description="Holds `amount` slots (default 1) of a pool of the wallet for "
        "`resource_id`: of the pool `source`, or of the wallet's oldest pool with room. "
        "Idempotent per customer, wallet and resource: a repeat answers the same holding. "
        "`ttl_seconds` makes the holding a lease, released by the scheduler when it runs out "
        "and renewed by a repeat.",
        request=s.ClaimRequestSerializer,
        responses=responses(SlotHoldingResult),
        tags=["slot"],
    )
    def claim(self, request: Request) -> Response:
        data = s.ClaimRequestSerializer.parse(request.data)
        result = services.claim(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="slot_release",
        summary="Release a resource's slots",
        description="Gives back the slots the resource holds in the wallet. A repeat of the "
        "last release answers it again, with `is_idempotent_replay`.",
        request=s.ReleaseRequestSerializer,
        responses=responses(SlotHoldingResult),
        tags=["slot"],
    )
    def release(self, request: Request) -> Response:
        data = s.ReleaseRequestSerializer.parse(request.data)
        result = services.release(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="slot_get_customer",
        summary="A customer's slot pools",
        parameters=[CUSTOMER_ID, OpenApiParameter("wallet", str, description="Only this wallet.")],
        responses=responses(SlotPools, READ_ERRORS),
        tags=["slot"],
    )
    def pools(self, request: Request, customer_id: str) -> Response:
        params = queries.ledger_params(request.query_params, ("wallet",))
        return Response(
            render(selectors.customer_pools(self.project, customer_id, params.get("wallet")))
        )

    @extend_schema(
        operation_id="slot_list_events",
        summary="Page through a customer's slot events, newest first",
        parameters=[
            CUSTOMER_ID,
            *LIST_PARAMETERS,
            OpenApiParameter("wallet", str),
            OpenApiParameter("resource_id", ID_SCHEMA),
            OpenApiParameter(
                "types", str, description="Comma-separated: " + ", ".join(SlotEvent.Type.values)
            ),
            OpenApiParameter("sources", str, description="Comma-separated sources."),
        ],
        responses=responses(SlotEventPage, READ_ERRORS),
        tags=["slot"],
    )
    @reads_from_standby()
    def events(self, request: Request, customer_id: str) -> Response:
        params = queries.ledger_params(request.query_params, EVENT_PARAMETERS)
        query = selectors.SlotEventQuery(
            customer=selectors.customer_of(self.project, customer_id),
            limit=queries.parse_limit(params.get("limit")),
            cursor=params.get("cursor"),
            wallet=params.get("wallet"),
            resource_id=queries.parse_id(params.get("resource_id"), "resource_id"),
            types=queries.parse_names(params.get("types"), "types", SlotEvent.Type.values),
            sources=queries.parse_names(params.get("sources"), "sources"),
            from_at=queries.parse_instant(params.get("from_at"), "from_at", InvalidFromAt),
            to_at=queries.parse_instant(params.get("to_at"), "to_at", InvalidToAt),
        )
        return Response(render(selectors.slot_event_page(query)))
