"""The API's one route table: every path under /v1/, the viewset action each method runs, and
how a path that carries a client's id is read from the request as sent.

Ids may hold `/` (sent as `%2F`). The WSGI server has already decoded `PATH_INFO`, where such an
id looks like two segments, so `RawTargetMiddleware` matches the undecoded request target
(gunicorn's `RAW_URI`) against this table instead: a literal `/` always separates segments,
`%2F` is part of an id, and each id segment is percent-decoded as strict UTF-8. It then hands
Django a `PATH_INFO` with each id percent-encoded again, in one segment, which the URL patterns
built from the same table resolve to the same route.

Query parameters are held to the same rule: Django decodes them leniently (bytes that are not
UTF-8 become U+FFFD), so the middleware first checks the raw query string, and a parameter that
is not UTF-8 gets the same 400 `invalid_request` as such an id.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, register_converter

from credits_project.api.errors import error_response
from credits_project.errors import InvalidRequest, ServiceError
from ledger.api import views
from ledger.api.entitlements import EntitlementViewSet
from ledger.api.slots import SlotViewSet

PREFIX = "/v1/"
MAX_ID_LENGTH = 255
PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    template: str  # under /v1/; `{name}` is one segment holding a client's id
    viewset: type[views.ApiViewSet]
    actions: dict[str, str]  # HTTP method -> the viewset's action
    name: str
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.split("/")))

    def pattern(self) -> URLPattern:
        return path(
            PARAMETER.sub(r"<segment:\1>", self.template),
            self.viewset.as_view(self.actions),
            name=self.name,
        )

    def ids(self, raw: list[str]) -> dict[int, str] | None:
        """The id segments of a raw path of this route's shape, by position; else None."""
        if len(raw) != len(self.segments):
            return None
        found = {}
        for position, (expected, segment) in enumerate(zip(self.segments, raw, strict=True)):
            parameter = PARAMETER.fullmatch(expected)
            if parameter is None:
                if segment != expected:
                    return None
            elif segment:
                found[position] = parameter[1]
            else:
                return None
        return found


ROUTES = [
    Route("customers/deposit", views.CustomersViewSet, {"post": "deposit"}, "deposit"),
    Route("billing/deposit", views.BillingDepositViewSet, {"post": "deposit"}, "billing-deposit"),
    Route("customers/{customer_id}", views.CustomersViewSet, {"get": "retrieve"}, "customer"),
    Route(
        "customers/{customer_id}/ledger",
        views.CustomersViewSet,
        {"get": "ledger"},
        "customer-ledger",
    ),
    Route(
        "customers/{customer_id}/accounts/{account_id}/void",
        views.CustomersViewSet,
        {"post": "void"},
        "void-account",
    ),
    Route(
        "customers/{customer_id}/credit-limit",
        views.CustomersViewSet,
        {"post": "credit_limit"},
        "credit-limit",
    ),
    Route(
        "customers/{customer_id}/schedules",
        views.CustomersViewSet,
        {"get": "schedules"},
        "customer-schedules",
    ),
    Route("schedules", views.SchedulesViewSet, {"post": "create"}, "schedules"),
    Route("schedules/{schedule_id}", views.SchedulesViewSet, {"get": "retrieve"}, "schedule"),
    Route(
        "schedules/{schedule_id}/update",
        views.SchedulesViewSet,
        {"post": "update"},
        "update-schedule",
    ),
    Route(
        "schedules/{schedule_id}/cancel",
        views.SchedulesViewSet,
        {"post": "cancel"},
        "cancel-schedule",
    ),
    Route("billing/freeze", views.BillingViewSet, {"post": "freeze"}, "freeze"),
    Route("billing/consume", views.BillingViewSet, {"post": "consume"}, "consume"),
    Route("billing/unfreeze", views.BillingViewSet, {"post": "unfreeze"}, "unfreeze"),
    Route("billing/deduct", views.BillingViewSet, {"post": "deduct"}, "deduct"),
    Route("billing/quote", views.BillingViewSet, {"post": "quote"}, "quote"),
    Route("billing/refund", views.BillingViewSet, {"post": "refund"}, "refund"),
    Route(
        "billing/transactions/{transaction_id}",
        views.BillingViewSet,
        {"get": "transaction"},
        "transaction",
    ),
    Route("slot/grant", SlotViewSet, {"post": "grant"}, "slot-grant"),
    Route("slot/revoke", SlotViewSet, {"post": "revoke"}, "slot-revoke"),
    Route("slot/claim", SlotViewSet, {"post": "claim"}, "slot-claim"),
    Route("slot/release", SlotViewSet, {"post": "release"}, "slot-release"),
    Route("slot/customer/{customer_id}", SlotViewSet, {"get": "pools"}, "slot-customer"),
    Route("slot/events/{customer_id}", SlotViewSet, {"get": "events"}, "slot-events"),
    Route("entitlement/set", EntitlementViewSet, {"post": "set"}, "entitlement-set"),
    Route("entitlement/remove", EntitlementViewSet, {"post": "remove"}, "entitlement-remove"),
    # Before the feature-key route of the same shape: the literal `events` wins (a feature
    # named `events` cannot be read one by one), see `resolve_raw`.
    Route(
        "entitlement/{customer_id}/events",
        EntitlementViewSet,
        {"get": "events"},
        "entitlement-events",
    ),
    Route(
        "entitlement/{customer_id}/{feature_key}",
        EntitlementViewSet,
        {"get": "retrieve"},
        "entitlement",
    ),
    Route(
        "entitlement/{customer_id}",
        EntitlementViewSet,
        {"get": "list_entitlements"},
        "entitlements",
    ),
    Route("health", views.ServiceViewSet, {"get": "health"}, "health"),
]


class PercentEncodedSegment:
    """One path segment that `RawTargetMiddleware` percent-encoded; the view gets it decoded."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: str) -> str:
        return quote(value, safe="")


register_converter(PercentEncodedSegment, "segment")
urlpatterns = [route.pattern() for route in ROUTES]

# Literal segments by position: an id encoded for Django must never read as one of them.
LITERALS = {
    (position, segment)
    for route in ROUTES
    for position, segment in enumerate(route.segments)
    if not PARAMETER.fullmatch(segment)
}


def resolve_raw(method: str, raw_path: str) -> str | None:
    """The `PATH_INFO` Django should resolve for a raw request path, when its route takes an
    id; None when it takes none (or no route has the path's shape).

    The first route of the path's shape that accepts the method wins, so
    `GET /v1/customers/deposit` reads the customer named `deposit` (the deposit route is POST
    only); when none accepts it, the first of that shape answers (405).
    """
    if not raw_path.startswith(PREFIX):
        return None
    raw = raw_path[len(PREFIX) :].split("/")
    shaped = [(route, ids) for route in ROUTES if (ids := route.ids(raw)) is not None]
    if not shaped:
        return None
    _, ids = next(((r, i) for r, i in shaped if method.lower() in r.actions), shaped[0])
    if not ids:
        return None
    segments = list(raw)
    for position, name in ids.items():
        segments[position] = encode_id(position, decode_id(raw[position], name))
    return PREFIX + "/".join(segments)


def decode_id(segment: str, field: str) -> str:
    """A path segment as an id: strict UTF-8, no NUL, at most `MAX_ID_LENGTH` code points."""
    try:
        value = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(field, "not_utf8") from None
    if "\x00" in value:
        raise InvalidRequest(field, "nul_character")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(field, "too_long", max_length=MAX_ID_LENGTH)
    return value


def encode_id(position: int, value: str) -> str:
    encoded = quote(value, safe="")
    if (position, encoded) in LITERALS:
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"  # a customer named "deposit"
    return encoded


class RawTargetMiddleware:
    """Resolves the routes that take an id from the undecoded request target (see module)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(PREFIX):
            try:
                check_query_string(request.META.get("QUERY_STRING", ""))
                rewritten = resolve_raw(request.method or "GET", raw_path(request))
            except ServiceError as error:
                return error_response(error, request)
            if rewritten is not None:
                request.path_info = rewritten
        return self.get_response(request)


def check_query_string(query_string: str) -> None:
    """Every parameter of a raw query string, name and value, percent-decodes to UTF-8; else
    `InvalidRequest` naming the first that does not."""
    # The WSGI server hands the query string over as bytes read as Latin-1: encode them back.
    raw = query_string.encode("latin-1", errors="replace")
    for parameter in raw.split(b"&"):
        name, _, value = parameter.partition(b"=")
        try:
            field = form_decode(name)
        except UnicodeDecodeError:
            raise InvalidRequest("query", "not_utf8") from None
        try:
            form_decode(value)
        except UnicodeDecodeError:
            raise InvalidRequest(field, "not_utf8") from None


def form_decode(part: bytes) -> str:
    """One name or value of a query string, as strict UTF-8 (`+` is a space)."""
    return unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")


def raw_path(request: HttpRequest) -> str:
    """The request target's path as the client sent it (gunicorn's `RAW_URI`). Elsewhere (the
    development server, Django's test client) the decoded path is all there is."""
    raw = request.META.get("RAW_URI")
    if not raw:
        return quote(request.path_info, safe="/")
    target = raw.split("?", 1)[0]
    return urlsplit(raw).path if "://" in target else target
