"""Admin login throttling, with django-axes: the authentication backend that refuses a locked-out
login, and the client address that lockouts are counted by."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class AdminLoginThrottle(AxesStandaloneBackend):
    """Refuses a login whose username and address are locked out; authenticates nobody itself.

    Lockouts count logins made over HTTP, the admin's login page, which always pass the request.
    A call without one (the shell, the test client) comes from code running inside the service,
    has no address to count, and goes on to the next backend instead of failing.
    """

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def client_address(request: HttpRequest) -> str | None:
    """The address a login came from: the peer, or behind `TRUSTED_PROXY_COUNT` proxies that
    each append to `X-Forwarded-For`, the entry the outermost of them appended.

    Entries further left were written by the client and prove nothing.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")
