"""`Authorization: Bearer <api_key>` authentication, checked against the database per request."""

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from credits_project.errors import ApiKeyRevoked, InvalidApiKey, MissingApiKey
from credits_project.sql import fetch
from customers.models import API_KEY, PROJECT, ApiKey, Project

LAST_USED_RESOLUTION = timedelta(minutes=5)
KEY_PATTERN = re.compile(r"(?P<prefix>[A-Za-z0-9]{1,8})\.[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class ApiClient:
    """The caller behind a request: one API key of one project."""

    api_key: ApiKey

    is_authenticated = True

    @property
    def project(self) -> Project:
        return self.api_key.project

    @property
    def actor(self) -> str:
        return f"api_key:{self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request) -> tuple[ApiClient, ApiKey]:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            raise MissingApiKey()
        scheme, _, raw_key = header.partition(" ")
        match = KEY_PATTERN.fullmatch(raw_key) if scheme.lower() == "bearer" else None
        if match is None:
            raise InvalidApiKey()
        api_key = key_with_project(match["prefix"])
        if api_key is None or not api_key.is_valid(raw_key):
            raise InvalidApiKey()
        if api_key.revoked:
            raise ApiKeyRevoked()
        if api_key.has_expired:
            raise InvalidApiKey()
        touch_last_used(api_key)
        return ApiClient(api_key), api_key

    def authenticate_header(self, request) -> str:
        return "Bearer"


def key_with_project(prefix: str) -> ApiKey | None:
    """The key with this prefix and its project, in one statement. Written in SQL because it
    runs on every request and the ORM's query compilation would cost more than the lookup."""
    rows = fetch(
        f"SELECT {API_KEY.sql('k')}, {PROJECT.sql('p')} FROM customers_apikey k "
        "JOIN customers_project p ON p.id = k.project_id WHERE k.prefix = %s",
        [prefix],
    )
    if not rows:
        return None
    api_key = API_KEY.load_row(rows[0])
    api_key.project = PROJECT.load_row(rows[0][API_KEY.width :])
    return api_key


def touch_last_used(api_key: ApiKey) -> None:
    """Record use at most once per `LAST_USED_RESOLUTION`, never a write per request."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=api_key.pk,
    ).update(last_used_at=now)
    api_key.last_used_at = now
