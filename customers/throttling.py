from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-key request rate from `API_RATE_LIMIT` (e.g. "100/s"); no limit when unset.

    Counts live in Django's cache: per process with the default local-memory cache, so set a
    shared cache (e.g. Redis) when several workers must share one limit.
    """

    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
