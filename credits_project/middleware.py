"""Request plumbing shared by every API route: request ids, the error envelope, body limits."""

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from credits_project.api.errors import error_response, new_request_id
from credits_project.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServerError,
    ServiceError,
    UnsupportedMediaType,
)
from credits_project.json import require_json_content_type

API_PREFIX = "/v1/"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

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
