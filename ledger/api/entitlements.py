"""The entitlement calls of the API (`/v1/entitlement/...`), as the JS SDK makes them."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from credits_project.errors import InvalidFromAt, InvalidToAt
from credits_project.replicas import reads_from_standby
from ledger import selectors, services
from ledger.api import queries
from ledger.api.docs import CUSTOMER_ID, FEATURE_KEY, ID_SCHEMA, LIST_PARAMETERS, READ_ERRORS
from ledger.api.shapes import render
from ledger.api.views import ApiViewSet, responses
from ledger.contract import entitlements as e
from ledger.models import EntitlementEvent
from ledger.results import (
    EntitlementEventPage,
    EntitlementList,
    EntitlementRead,
    EntitlementRemoveResult,
    EntitlementSetResult,
)

EVENT_PARAMETERS = ("feature_key", "cursor", "limit", "types", "from_at", "to_at")


class EntitlementViewSet(ApiViewSet):
    @extend_schema(
        operation_id="entitlement_set",
        summary="Set an entitlement",
        description="Makes `value` the customer's entitlement `feature_key` (an upsert: the "
        "fields sent replace the whole entitlement), creating the customer if unknown. "
        "Validity is judged when read, so a window in the past is accepted.",
        request=e.SetEntitlementRequestSerializer,
        responses=responses(EntitlementSetResult),
        tags=["entitlement"],
    )
    def set(self, request: Request) -> Response:
        data = e.SetEntitlementRequestSerializer.parse(request.data)
        result = services.set_entitlement(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="entitlement_remove",
        summary="Remove an entitlement",
        description="`removed: false` when the customer has no such entitlement.",
        request=e.RemoveEntitlementRequestSerializer,
        responses=responses(EntitlementRemoveResult),
        tags=["entitlement"],
    )
    def remove(self, request: Request) -> Response:
        data = e.RemoveEntitlementRequestSerializer.parse(request.data)
        result = services.remove_entitlement(project=self.project, actor=self.actor, **data)
        return Response(render(result))

    @extend_schema(
        operation_id="entitlement_get",
        summary="Read an active entitlement",
        description='`{"entitlement": null}` when the feature is unset, expired or not '
        "started yet. The feature key `events` cannot be read here (that path lists events).",
        parameters=[CUSTOMER_ID, FEATURE_KEY],
        responses=responses(EntitlementRead, READ_ERRORS),
        tags=["entitlement"],
    )
    def retrieve(self, request: Request, customer_id: str, feature_key: str) -> Response:
        return Response(render(selectors.entitlement_of(self.project, customer_id, feature_key)))

    @extend_schema(
        operation_id="entitlement_list",
        summary="List a customer's entitlements",
        description="Active ones and ones not started yet (`is_active: false`); expired ones "
        "only with `include_expired=true`.",
        parameters=[
            CUSTOMER_ID,
            OpenApiParameter("feature_keys", str, description="Comma-separated: only these."),
            OpenApiParameter("include_expired", bool),
        ],
        responses=responses(EntitlementList, READ_ERRORS),
        tags=["entitlement"],
    )
    def list_entitlements(self, request: Request, customer_id: str) -> Response:
        params = queries.ledger_params(request.query_params, ("feature_keys", "include_expired"))
        result = selectors.entitlements_of(
            self.project,
            customer_id,
            feature_keys=queries.parse_names(params.get("feature_keys"), "feature_keys"),
            include_expired=queries.parse_flag(params.get("include_expired"), "include_expired"),
        )
        return Response(render(result))

    @extend_schema(
        operation_id="entitlement_list_events",
        summary="Page through a customer's entitlement events, newest first",
        parameters=[
            CUSTOMER_ID,
            *LIST_PARAMETERS,
            OpenApiParameter("feature_key", ID_SCHEMA),
            OpenApiParameter(
                "types",
                str,
                description="Comma-separated: " + ", ".join(EntitlementEvent.Type.values),
            ),
        ],
        responses=responses(EntitlementEventPage, READ_ERRORS),
        tags=["entitlement"],
    )
    @reads_from_standby()
    def events(self, request: Request, customer_id: str) -> Response:
        params = queries.ledger_params(request.query_params, EVENT_PARAMETERS)
        types = EntitlementEvent.Type.values
        query = selectors.EntitlementEventQuery(
            customer=selectors.entitlement_customer(self.project, customer_id),
            limit=queries.parse_limit(params.get("limit")),
            cursor=params.get("cursor"),
            feature_key=queries.parse_id(params.get("feature_key"), "feature_key"),
            types=queries.parse_names(params.get("types"), "types", types),
            from_at=queries.parse_instant(params.get("from_at"), "from_at", InvalidFromAt),
            to_at=queries.parse_instant(params.get("to_at"), "to_at", InvalidToAt),
        )
        return Response(render(selectors.entitlement_event_page(query)))
