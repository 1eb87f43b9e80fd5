"""Delivery: retries with backoff until the receiver recovers, in order per endpoint and
customer; failed after the retry window; a slow endpoint holds up no other."""

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings

from ledger import services
from ledger.webhooks.delivery import Dispatcher, backoff, deliver_endpoint, fan_out
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.support import T0, deposit
from tests.webhooks.support import deliver_all, endpoint, receiver

SECOND = dt.timedelta(seconds=1)


def statuses() -> list[tuple[str, int]]:
    return list(WebhookDelivery.objects.order_by("event_id").values_list("status", "attempts"))


def next_attempt() -> dt.datetime:
    """When the next delivery can go: the soonest of each customer's first pending one."""
    first_in_line = {}
    for delivery in WebhookDelivery.objects.filter(status="pending").order_by("event_id"):
        first_in_line.setdefault((delivery.endpoint_id, delivery.customer_id), delivery)
    return min(delivery.next_attempt_at for delivery in first_in_line.values())


@pytest.mark.django_db
def test_a_receiver_failing_for_a_while_gets_every_event_in_order_once_it_recovers(project):
    with receiver(failures=3) as hooks:
        secret = endpoint(project, hooks.url).secret
        for amount in (1, 2, 3):
            deposit(project, amount, customer_id="c1", now=T0)
        deposit(project, 4, customer_id="c2", now=T0)
        events = list(WebhookEvent.objects.order_by("id").values_list("event_id", flat=True))

        assert deliver_all(T0) == 0  # 503: the endpoint's task stops at its first failure
        assert next_attempt() == T0  # c2's, not tried yet
        # c1's first is not due again yet, c2's is; c1's later ones wait behind c1's first.
        assert deliver_all(T0 + 4 * SECOND) == 0
        assert next_attempt() == T0 + backoff(1)
        now = T0
        for _ in range(10):  # bounded: three failures, then everything goes through
            if not WebhookDelivery.objects.filter(status="pending").exists():
                break
            now = next_attempt()
            deliver_all(now)
        accepted = hooks.accepted()

    assert backoff(1) < backoff(2) < backoff(3)
    assert [r.status for r in hooks.received] == [503, 503, 503, 200, 200, 200, 200]
    # Each customer's events in order; the failing head was the first of c1's.
    assert [r.event_id for r in hooks.received[:3]] == [events[0], events[3], events[0]]
    c1 = [r.event_id for r in accepted if r.verified(secret)["customer_id"] == "c1"]
    assert c1 == events[:3]
    assert sorted(r.event_id for r in accepted) == sorted(events)
    assert statuses() == [("delivered", 3), ("delivered", 1), ("delivered", 1), ("delivered", 2)]
    first = WebhookDelivery.objects.get(event__event_id=events[0])
    assert (first.response_code, first.last_error) == (200, "")


@pytest.mark.django_db
def test_a_later_event_waits_while_an_earlier_one_of_the_customer_backs_off(project):
    with receiver(failures=1) as hooks:
        endpoint(project, hooks.url)
        deposit(project, 1, customer_id="c1", now=T0)
        fan_out(now=T0)
        deposit(project, 2, customer_id="c1", now=T0)  # fanned out after the first
        deliver_all(T0)
        deliver_all(T0 + SECOND)
        assert [r.status for r in hooks.received] == [503]
        deliver_all(T0 + backoff(1))
        amounts = [r.body.split(b'"amount":')[1][:1] for r in hooks.received]

    assert amounts == [b"1", b"1", b"2"]


@pytest.mark.django_db
@override_settings(WEBHOOK_RETRY_HOURS=24)
def test_a_delivery_is_failed_after_24_hours_of_retries_and_the_next_one_goes(project):
    with receiver(failures=10**6) as hooks:
        endpoint(project, hooks.url)
        deposit(project, 1, now=T0)
        deposit(project, 2, now=T0)
        deliver_all(T0)
        now = T0
        for _ in range(200):  # bounded
            head = WebhookDelivery.objects.order_by("event_id").first()
            if head.status != "pending":
                break
            now = head.next_attempt_at
            deliver_all(now)
        failed = WebhookDelivery.objects.order_by("event_id").first()
        hooks.failures = 0
        deliver_all(now)

    assert failed.status == "failed"
    assert failed.attempts == len(hooks.received) - 1 > 10
    assert failed.last_error == "HTTP 503 Service Unavailable"
    assert failed.response_code == 503
    assert T0 + dt.timedelta(hours=23) < now <= T0 + dt.timedelta(hours=24)
    assert statuses()[1] == ("delivered", 1)


@pytest.mark.django_db
def test_a_dead_endpoint_is_retried_with_the_error_kept(project):
    endpoint(project, "http://127.0.0.1:9/nothing-listens")
    deposit(project, 1, now=T0)
    deliver_all(T0)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, None)
    assert "refused" in delivery.last_error.lower()
    assert delivery.next_attempt_at == T0 + backoff(1)


@pytest.mark.django_db
def test_an_address_with_non_ascii_characters_is_sent_percent_encoded(project):
    endpoint(project, "http://127.0.0.1:9/hook/\u00fc")
    deposit(project, 1, now=T0)
    deliver_all(T0)

    delivery = WebhookDelivery.objects.get()  # attempted (nothing listens), not stuck leased
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "refused" in delivery.last_error.lower()


def test_endpoints_take_http_and_https_addresses_only(project):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        WebhookEndpoint(project=project, url="ftp://example.com/hook").full_clean()
    WebhookEndpoint(project=project, url="https://example.com/hook").full_clean()


@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_TIMEOUT_SECONDS=10)
def test_a_slow_endpoint_does_not_hold_up_another(project):
    dispatcher = Dispatcher(workers=4)
    with receiver(blocking=True) as slow, receiver() as fast:
        endpoint(project, slow.url)
        endpoint(project, fast.url)
        services.deposit(project=project, customer_id="c1", amount=Decimal(1), actor="test")
        fan_out()
        started = time.monotonic()
        assert dispatcher.dispatch() == 2
        assert slow.arrived.wait(10)
        deadline = time.monotonic() + 10
        while not fast.accepted() and time.monotonic() < deadline:
            time.sleep(0.05)
        fast_took = time.monotonic() - started
        assert fast.accepted() and not slow.received  # the slow one is still held
        slow.released.set()
        assert dispatcher.wait() == 2  # both tasks, one delivery each
        dispatcher.close()

    assert fast_took < 5
    assert [r.status for r in slow.received] == [200]
    assert statuses() == [("delivered", 1), ("delivered", 1)]


@pytest.mark.django_db(transaction=True)
def test_senders_racing_on_one_endpoint_send_each_event_once_and_in_order(project):
    with receiver() as hooks:
        secret = endpoint(project, hooks.url).secret
        for n in range(12):
            services.deposit(
                project=project, customer_id=f"c{n % 3}", amount=Decimal(n + 1), actor="t"
            )
        fan_out()
        endpoint_pk = WebhookDelivery.objects.values_list("endpoint_id", flat=True).first()

        def sender():
            try:
                return deliver_endpoint(endpoint_pk)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=4) as pool:
            sent = sum(pool.map(lambda _: sender(), range(4)))
        received = [r.verified(secret) for r in hooks.received]

    assert sent == 12
    assert sorted(r["id"] for r in received) == sorted(
        WebhookEvent.objects.values_list("event_id", flat=True)
    )
    for customer in ("c0", "c1", "c2"):
        amounts = [r["data"]["amount"] for r in received if r["customer_id"] == customer]
        assert amounts == sorted(amounts)
    assert set(statuses()) == {("delivered", 1)}
