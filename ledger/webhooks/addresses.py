"""Where a webhook may be sent, checked where it matters: on the connection.

An endpoint is a tenant's URL, and the scheduler POSTs to it from inside the service's
network. By default every address that is not a public one is refused: loopback, private,
link-local (the cloud metadata service at 169.254.169.254), multicast, reserved, unspecified
(0.0.0.0), and the IPv4 addresses written as IPv6 (`::ffff:127.0.0.1`).
`WEBHOOK_ALLOW_PRIVATE_ADDRESSES` lifts the rule, for development and tests.

The rule is checked on every address the endpoint's name resolves to, and the connection is
then made to an address so checked, never to the name again: a name that resolves to a public
address when checked and to a private one a moment later (DNS rebinding) cannot slip through.
`CheckedHTTPConnection` and `CheckedHTTPSConnection` are http.client's own connections (TLS,
certificate and host name checks included) with only the step that opens the TCP connection
replaced. Adding an endpoint checks its URL as well (`check_endpoint_url`), for a clear error
early; a delivery is checked again whatever the name resolves to by then.

Each connection also carries a deadline for the whole exchange: a socket timeout bounds each
read, but a receiver that trickles one byte at a time would reset it for ever; at the deadline
`cut` shuts the socket down, whatever the sender is waiting for. (Name resolution itself is
bounded by the system's resolver settings.)
"""

import contextlib
import http.client
import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

# Most specific first: `is_private` holds for most of the others too.
REFUSED_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")


class RefusedAddress(Exception):
    """The endpoint's host is, or resolves to, an address webhooks are not sent to."""


def refused_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes `address` one webhooks are not sent to, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for kind in REFUSED_KINDS:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared (100.64.0.0/10), documentation and the like
        return "non-public"
    return None


def allowed_addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    """Every address `host` resolves to (`getaddrinfo`'s entries), once each has passed the
    rule; `RefusedAddress` naming the first that does not."""
    entries = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for *_, sockaddr in entries:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])  # no IPv6 zone
            kind = refused_kind(address)
            if kind is None:
                continue
            if ipaddress_or_none(host) == address:
                raise RefusedAddress(f"{host} is a {kind} address")
            raise RefusedAddress(f"{host} resolves to {address}, a {kind} address")
    return entries


def ipaddress_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_endpoint_url(url: str) -> None:
    """`RefusedAddress` when the URL's host is, or now resolves to, a refused address. A name
    that does not resolve yet passes: each delivery checks it again."""
    parts = urlsplit(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES or not parts.hostname:
        return
    try:
        allowed_addresses(parts.hostname, parts.port or 443)
    except (OSError, UnicodeError):
        return


class _Checked:
    """Opens the TCP connection to an address `allowed_addresses` passed, within the
    deadline; `cut` ends the exchange when the deadline passes."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.cut_off = False
        # The TCP socket itself: http.client lets go of `sock` once a response that closes
        # the connection is under way, but the response still reads from it.
        self.tcp: socket.socket | None = None
        # http.client's one hook for opening the socket (`socket.create_connection` by
        # default); its `connect` then wraps the socket in TLS for HTTPS.
        self._create_connection = self._connect_checked

    def _connect_checked(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        failure: OSError | None = None
        for family, kind, protocol, _, sockaddr in allowed_addresses(host, port):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
                sock.connect(sockaddr)
                self.tcp = sock
                return sock
            except OSError as error:
                sock.close()
                failure = error
        raise failure or OSError(f"no address for {host}")

    def cut(self) -> None:
        """Shut the socket down (from another thread): the exchange ends with an error."""
        self.cut_off = True
        if self.tcp is not None:
            # Under TLS too: the TCP socket is what a blocked read waits on.
            with contextlib.suppress(OSError):
                self.tcp.shutdown(socket.SHUT_RDWR)


class CheckedHTTPConnection(_Checked, http.client.HTTPConnection):
    pass


class CheckedHTTPSConnection(_Checked, http.client.HTTPSConnection):
    pass
