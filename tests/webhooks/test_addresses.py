"""Webhooks go to public addresses only, checked on every address a name resolves to when the
connection is made; no redirect is followed; each delivery has a deadline for its whole answer.
These tests turn the address rule back on (the package's conftest lifts it for the loopback
receivers); the system resolver is swapped for one that answers what a test needs."""

import io
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from ledger.webhooks.addresses import refused_kind
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.support import T0, deposit
from tests.webhooks.support import deliver_all, endpoint, receiver

pytestmark = pytest.mark.django_db

REFUSED = {
    "169.254.169.254": "link-local",
    "10.0.0.1": "private",
    "192.168.1.1": "private",
    "::1": "loopback",
    "0.0.0.0": "unspecified",
    "127.0.0.1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "link-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "100.64.0.1": "non-public",
}


@pytest.fixture
def rule_on(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


class Resolver:
    """Names resolved as `answers` says: per name, one list of addresses per lookup (the last
    repeats); every other name as the system resolves it. `lookups` lists the names asked."""

    def __init__(self, system):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.system = system

    def __setitem__(self, name: str, answers: list[list[str]]) -> None:
        self.answers[name] = answers

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self.system(host, port, *args, **kwargs)
        self.lookups.append(host)
        queue = self.answers[host]
        return [entry(address, port) for address in (queue.pop(0) if len(queue) > 1 else queue[0])]


def entry(address: str, port: int) -> tuple:
    if ipaddress.ip_address(address).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def resolver(monkeypatch) -> Resolver:
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.mark.parametrize(("address", "kind"), REFUSED.items())
def test_every_address_that_is_not_public_is_refused_by_its_kind(address, kind):
    assert refused_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address):
    assert refused_kind(ipaddress.ip_address(address)) is None


def add_webhook(url: str, project) -> str:
    out = io.StringIO()
    call_command("add_webhook", "--project", project.name, "--url", url, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hooks",
        "http://[::1]:8080/hooks",
        "http://0.0.0.0/hooks",
        "http://localhost:8080/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
    ],
)
def test_add_webhook_refuses_an_endpoint_at_a_refused_address(project, rule_on, url):
    with pytest.raises(CommandError, match=r"refused address: .*(is|resolves to) .* address"):
        add_webhook(url, project)
    assert not WebhookEndpoint.objects.exists()


def test_add_webhook_refuses_a_name_with_any_refused_address(project, rule_on, resolver):
    resolver["mixed.test"] = [["93.184.216.34", "10.1.2.3"]]

    with pytest.raises(CommandError, match=r"mixed.test resolves to 10.1.2.3, a private"):
        add_webhook("https://mixed.test/hooks", project)

    resolver["public.test"] = [["93.184.216.34"]]
    assert "public.test" in add_webhook("https://public.test/hooks", project)


def test_the_console_refuses_an_endpoint_at_a_refused_address(project, rule_on, client):
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-12345678"))
    form = {"project": project.pk, "url": "http://169.254.169.254/x", "event_types": "[]"}

    response = client.post("/admin/ledger/webhookendpoint/add/", form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["url"]
    assert errors == [
        "Refused address: 169.254.169.254 is a link-local address. "
        "Webhooks go to public addresses only."
    ]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_delivery_to_a_refused_address_fails_at_once_without_a_retry(project, rule_on, scheme):
    with receiver() as hooks:
        # Added before the rule, or straight in the database; over TLS, refused before it.
        endpoint(project, hooks.url.replace("http", scheme, 1))
        deposit(project, 3, now=T0)

        assert deliver_all(T0) == 0

        assert hooks.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, None)
    assert delivery.last_error == "refused address: 127.0.0.1 is a loopback address"


def test_a_name_that_rebinds_to_loopback_after_it_was_added_is_refused_when_sent(
    project, rule_on, resolver
):
    with receiver() as hooks:
        port = hooks.server.server_address[1]
        resolver["rebind.test"] = [["93.184.216.34"], ["127.0.0.1"]]
        add_webhook(f"http://rebind.test:{port}/hooks", project)  # public when added
        deposit(project, 3, now=T0)

        deliver_all(T0)

        assert hooks.received == []
    assert resolver.lookups == ["rebind.test", "rebind.test"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert (
        delivery.last_error
        == "refused address: rebind.test resolves to 127.0.0.1, a loopback address"
    )


def test_with_the_rule_lifted_a_name_is_connected_to_at_the_address_resolved(project, resolver):
    with receiver() as hooks:
        port = hooks.server.server_address[1]
        resolver["dev.test"] = [["127.0.0.1"]]
        endpoint(project, f"http://dev.test:{port}/hooks")
        deposit(project, 3, now=T0)

        assert deliver_all(T0) == 1

        [received] = hooks.received
    assert received.headers["host"] == f"dev.test:{port}"


@contextmanager
def server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/hooks"
    finally:
        http.shutdown()
        http.server_close()


class Trickling(BaseHTTPRequestHandler):
    """Answers 200 with a body it sends one byte every 0.2 s, for at most 20 s."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(project, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    with server(Trickling) as url:
        endpoint(project, url)
        deposit(project, 3, now=T0)

        started = time.monotonic()
        deliver_all(T0)
        took = time.monotonic() - started

    assert took < 3, took  # the deadline, not 100 reads each within the socket timeout
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)  # retried later
    assert delivery.last_error == "no complete answer within 1 seconds"


def test_a_redirect_is_not_followed(project):
    with receiver() as target:

        class Redirecting(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(307)
                self.send_header("Location", target.url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        with server(Redirecting) as url:
            endpoint(project, url)
            deposit(project, 3, now=T0)
            deliver_all(T0)

        assert target.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.response_code, delivery.last_error) == (307, "HTTP 307 Temporary Redirect")
