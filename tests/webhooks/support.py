"""A webhook receiver on loopback, and delivery driven in this process at a chosen `now`."""

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

from credits_project.json import loads
from ledger.webhooks.delivery import deliver_endpoint, due_endpoints, fan_out
from ledger.webhooks.models import WebhookEndpoint

# How long a blocking receiver holds a request at most: a bound, never waited out in a test
# that passes.
BLOCK_LIMIT_SECONDS = 30


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict:
        """The payload, once `standardwebhooks` has verified its signature; amounts exact."""
        Webhook(secret).verify(self.body, self.headers)
        return loads(self.body)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST. It answers 503 to the
    next `failures` requests, and while `blocking` it holds each request until released."""

    def __init__(self, *, failures: int = 0, blocking: bool = False):
        self.received: list[Received] = []
        self.failures = failures
        self.released = threading.Event()
        if not blocking:
            self.released.set()
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived.set()
                receiver.released.wait(BLOCK_LIMIT_SECONDS)
                with receiver._lock:
                    status = 503 if receiver.failures > 0 else 200
                    receiver.failures = max(receiver.failures - 1, 0)
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (killed): what it sent is recorded all the same

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 200]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(**options) -> Iterator[Receiver]:
    server = Receiver(**options)
    try:
        yield server
    finally:
        server.close()


def deliver_all(now: dt.datetime) -> int:
    """What one scheduler pass does with the outbox at `now`, in this thread: fan out, then
    each due endpoint's deliveries. Returns how many were delivered."""
    while fan_out(now=now):
        pass
    return sum(deliver_endpoint(pk, now=now) for pk in sorted(due_endpoints(now)))


def endpoint(project, url: str, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(project=project, url=url, **fields)
