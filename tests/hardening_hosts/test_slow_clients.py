"""Slow clients must not starve the service: connections that send their headers and part of a
body (or part of their headers), then stall, each wait on their own, while other clients are
answered at once. Runs against gunicorn as `gunicorn.conf.py` configures it (the `service`
fixture), on the test database."""

import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from ledger import services

pytestmark = pytest.mark.http

SLOW_CLIENTS = 64
ANSWER_WITHIN_SECONDS = 1.0
DECLARED_BODY_BYTES = 100


def partial_body(key: str) -> bytes:
    """A deduct whose body is declared 100 bytes long, of which only `{` is sent."""
    return (
        "POST /v1/billing/deduct HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BODY_BYTES}\r\n"
        "\r\n"
        "{"
    ).encode()


def partial_headers(key: str) -> bytes:
    """The request line and some of the headers; the blank line that ends them never comes."""
    return (
        f"GET /v1/customers/fast HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
    ).encode()


@pytest.fixture
def stalled(service) -> Iterator[Callable[..., list[socket.socket]]]:
    """Opens connections that each send a first part of a request, then stall; closes them all
    at the end of the test."""
    opened: list[socket.socket] = []

    def open_stalled(first_part: bytes, count: int = SLOW_CLIENTS) -> list[socket.socket]:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", service.port), timeout=5)
            opened.append(sock)
            sock.sendall(first_part)
        # Let the server take them in: a server that reads them one at a time is now stuck.
        time.sleep(0.5)
        return opened

    yield open_stalled
    for sock in opened:
        sock.close()


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


@pytest.mark.parametrize("first_part", [partial_body, partial_headers], ids=["body", "headers"])
def test_health_and_a_deduct_answer_within_a_second_while_64_clients_stall(
    http, project, api_key, stalled, first_part
):
    services.deposit(project=project, customer_id="fast", amount=Decimal(10), actor="test")
    slow = stalled(first_part(api_key))

    health_seconds, health = timed(lambda: http.get("/healthz", timeout=5))
    deduct_seconds, deduct = timed(
        lambda: http.post(
            "/v1/billing/deduct",
            json={"customer_id": "fast", "transaction_id": "t-1", "amount": 1},
            timeout=5,
        )
    )

    assert health.status_code == 200
    assert health_seconds < ANSWER_WITHIN_SECONDS
    assert deduct.status_code == 200, deduct.text
    assert deduct.json()["deducted_amount"] == 1
    assert deduct_seconds < ANSWER_WITHIN_SECONDS
    # The stalled connections were held open, not dropped: the first still gets its answer
    # once its request is complete.
    rest = (
        b'"customer_id":"fast","transaction_id":"t-slow","amount":1}'.ljust(DECLARED_BODY_BYTES - 1)
        if first_part is partial_body
        else b"\r\n"
    )
    slow[0].sendall(rest)
    answer = slow[0].recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
