"""Renders every error under `/v1/` as the envelope of docs/api.md, section 6."""

import logging
import secrets

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.views import set_rollback

from credits_project.errors import (
    AuthError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    ServerError,
    ServiceError,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from credits_project.json import dumps

logger = logging.getLogger("credits.api")

# SQLSTATE of a write in a read-only transaction: the connection reached a standby (one being
# promoted, or a URL that leads to one). As retryable as a database that does not answer.
READ_ONLY_SQL_TRANSACTION = "25006"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def request_id_of(request: HttpRequest) -> str:
    request_id = getattr(request, "request_id", None)
    if request_id is None:
        request_id = request.request_id = new_request_id()
    return request_id


def error_response(error: ServiceError, request: HttpRequest) -> HttpResponse:
    body = {
        "error": {
            "message": error.message,
            "type": error.type,
            "code": error.code,
            "details": error.details,
            "retryable": error.retryable,
            "request_id": request_id_of(request),
        }
    }
    response = HttpResponse(dumps(body), status=error.status, content_type="application/json")
    response.is_envelope = True
    if isinstance(error, AuthError):
        response["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def as_service_error(exc: BaseException, request: HttpRequest) -> ServiceError:
    """Translate framework and database exceptions into our hierarchy."""
    match exc:
        case ServiceError():
            return exc
        case drf.MethodNotAllowed():
            return MethodNotAllowed()
        case drf.UnsupportedMediaType():
            return UnsupportedMediaType()
        case drf.ParseError():
            return InvalidJson()
        case drf.Throttled():
            return RateLimited(retry_after=max(1, int(exc.wait or 1)))
        case drf.NotFound() | Http404():
            return NotFound()
        case OperationalError() | InterfaceError():
            logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
            return ServiceUnavailable()
        case DatabaseError() if sqlstate_of(exc) == READ_ONLY_SQL_TRANSACTION:
            logger.warning("read-only database on %s %s: %s", request.method, request.path, exc)
            return ServiceUnavailable()
    if isinstance(exc, DatabaseError):
        logger.exception("database error on %s %s", request.method, request.path)
    else:
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return ServerError()


def sqlstate_of(exc: DatabaseError) -> str | None:
    """The SQLSTATE of the driver's error that Django's error wraps, if any."""
    return getattr(exc.__cause__, "sqlstate", None)


def exception_handler(exc: Exception, context: dict) -> HttpResponse:
    """DRF's EXCEPTION_HANDLER: every exception in an API view becomes the envelope."""
    set_rollback()
    request = context["request"]
    return error_response(as_service_error(exc, request), request)
