"""Request plumbing shared by every API route: request ids, the error envelope, body limits,
and customer ids taken from the undecoded request target."""

import re
from collections.abc import Callable
from urllib.parse import quote, unquote_to_bytes, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from credits_project.api.errors import error_response, new_request_id
from credits_project.api.json import require_json_content_type
from credits_project.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServerError,
    ServiceError,
    UnsupportedMediaType,
)

API_PREFIX = "/v1/"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_ID_LENGTH = 255

# Statuses that Django itself (not our handler) may produce under /v1/, e.g. a 400 from a
# malformed Content-Length; each is rewritten into the envelope.
FALLBACK_ERRORS: dict[int, type[ServiceError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: RequestTooLarge,
    415: UnsupportedMediaType,
}


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class ApiEnvelopeMiddleware:
    """Outermost layer: gives every response an `X-Request-Id`, enforces the API body limits,
    and guarantees that every error under `/v1/` is the JSON envelope, whatever raised it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else None
        if request.request_id is None:
            request.request_id = new_request_id()

        if is_api_path(request):
            try:
                self.check_body(request)
            except ServiceError as error:
                return self.finish(request, error_response(error, request))
            response = self.get_response(request)
            if response.status_code >= 400 and not getattr(response, "is_envelope", False):
                response = self.as_envelope(request, response)
        else:
            response = self.get_response(request)
        return self.finish(request, response)

    @staticmethod
    def check_body(request: HttpRequest) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_BODY_BYTES:
            raise RequestTooLarge({"limit_bytes": settings.API_MAX_BODY_BYTES})
        if request.method == "POST":
            require_json_content_type(request.content_type, request.body)

    @staticmethod
    def as_envelope(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        error_class = FALLBACK_ERRORS.get(status)
        if error_class is not None:
            error = error_class()
        elif status >= 500:
            error = ServerError()
        else:
            error = InvalidRequest("body")
        return error_response(error, request)

    @staticmethod
    def finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["X-Request-Id"] = request.request_id
        return response


# Routes holding a caller's id: (segments before the id, segment after it or None, field).
ID_ROUTES = [
    (("v1", "customers"), None, "customer_id"),
    (("v1", "customers"), "ledger", "customer_id"),
    (("v1", "billing", "transactions"), None, "transaction_id"),
]
ID_ROUTE_PREFIXES = ("/v1/customers/", "/v1/billing/transactions/")


class RawPathMiddleware:
    """Routes that take an id (`/v1/customers/{customer_id}[/ledger]`,
    `/v1/billing/transactions/{transaction_id}`) are resolved from the undecoded request target.

    The WSGI server has already decoded `%2F` to `/` in `PATH_INFO`, so an id holding a slash
    would look like two segments. gunicorn keeps the request target as sent in `RAW_URI`: split
    it on literal slashes, decode the id's segment as strict UTF-8, then hand Django a
    `PATH_INFO` whose id segment is percent-encoded again, so the URL converter sees one segment.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ID_ROUTE_PREFIXES):
            try:
                self.rewrite_id_path(request)
            except ServiceError as error:
                return error_response(error, request)
        return self.get_response(request)

    @staticmethod
    def rewrite_id_path(request: HttpRequest) -> None:
        raw = request.META.get("RAW_URI")
        if raw:
            path = urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]
        else:  # not under gunicorn: the decoded path is all there is
            path = quote(request.path_info, safe="/")
        segments = path.split("/")[1:]
        for before, after, field in ID_ROUTES:
            shape = len(before) + 1 + (after is not None)
            if (
                len(segments) != shape
                or tuple(segments[: len(before)]) != before
                or segments[len(before)] == ""
                or (after is not None and segments[-1] != after)
            ):
                continue
            raw_id = segments[len(before)]
            is_deposit_route = before[-1] == "customers" and after is None and raw_id == "deposit"
            if is_deposit_route and request.method == "POST":
                return
            value = decode_id(raw_id, field)
            encoded = quote(value, safe="")
            if encoded == "deposit":
                # A read of the customer named "deposit": off the POST-only deposit route.
                encoded = "%64eposit"
            request.path_info = "/" + "/".join([*before, encoded, *([after] if after else [])])
            return


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
