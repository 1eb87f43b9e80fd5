"""Sending the outbox: fan each event out to its endpoints, then deliver, retry and give up.

* `fan_out` turns new events into one `WebhookDelivery` per enabled endpoint that takes the
  event's type (at most one per event and endpoint, whoever runs it).
* A delivery is sent by whoever claims it: `claim_next` leases the endpoint's oldest due
  delivery whose customer has no earlier delivery still pending there, so each customer's
  events reach an endpoint in order. The lease outlives the request's timeout; a scheduler
  killed mid-send leaves a lease that runs out, and the delivery is sent again (at least once:
  receivers deduplicate by the `webhook-id` header, the event id).
* Each attempt goes only to an address `addresses` allows, and gets a whole answer within
  `WEBHOOK_TIMEOUT_SECONDS` or fails; an endpoint at a refused address fails at once.
* A failed attempt (no 2xx answer within the timeout) is retried with exponential backoff
  until `give_up_at` (24 hours after fan-out by default), then the delivery is failed.
* `Dispatcher` sends each endpoint's deliveries in a task of its own on a bounded thread pool,
  so a slow or dead endpoint holds one worker for at most its timeout per attempt and never
  the other endpoints, nor the API, which only ever writes the outbox.
"""

import datetime as dt
import http.client
import logging
import secrets
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from standardwebhooks import Webhook

from credits_project.json import dumps
from credits_project.sql import Columns, database, fetch, instant
from ledger.webhooks.addresses import (
    CheckedHTTPConnection,
    CheckedHTTPSConnection,
    RefusedAddress,
)
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger("credits.webhooks")

PENDING = WebhookDelivery.Status.PENDING
# What is kept of an error or a response: enough to tell what went wrong, in the console.
ERROR_CHARS = 500
RESPONSE_BYTES = 64 * 1024


def fan_out(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Make the deliveries of up to `batch_size` new events, oldest first. Returns how many
    events it fanned out. Events are locked while fanned out, so concurrent schedulers take
    turns and each customer's deliveries are made in the order of its events."""
    now = now or timezone.now()
    with transaction.atomic():
        new = list(
            WebhookEvent.objects.filter(fanned_out_at=None)
            .order_by("id")
            .select_for_update()
            .only("id", "type", "project_id", "customer_id")[:batch_size]
        )
        if not new:
            return 0
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            project_id__in={event.project_id for event in new}, enabled=True
        ).order_by("id"):
            endpoints.setdefault(endpoint.project_id, []).append(endpoint)
        give_up_at = now + dt.timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    event_id=event.pk,
                    endpoint=endpoint,
                    customer_id=event.customer_id,
                    next_attempt_at=now,
                    give_up_at=give_up_at,
                    created_at=now,
                )
                for event in new
                for endpoint in endpoints.get(event.project_id, [])
                if endpoint.takes(event.type)
            ],
            ignore_conflicts=True,
        )
        WebhookEvent.objects.filter(pk__in=[event.pk for event in new]).update(fanned_out_at=now)
    return len(new)


DELIVERY = Columns(WebhookDelivery)
EVENT = Columns(WebhookEvent)
ENDPOINT = Columns(WebhookEndpoint)


@dataclass(frozen=True)
class Claim:
    """One delivery leased to this sender: what to send, where, and the lease's token."""

    delivery: WebhookDelivery
    event_id: str
    payload: Any
    url: str
    secret: str
    token: str


def due_endpoints(now: dt.datetime) -> set[int]:
    """Enabled endpoints with a delivery due and not leased."""
    return {
        pk
        for (pk,) in fetch(
            "SELECT DISTINCT d.endpoint_id FROM ledger_webhookdelivery d "
            "JOIN ledger_webhookendpoint p ON p.id = d.endpoint_id "
            "WHERE d.status = %s AND d.next_attempt_at <= %s "
            "AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= %s) AND p.enabled = %s",
            [PENDING, instant(now), instant(now), True],
        )
    }


def claim_next(endpoint_pk: int, now: dt.datetime) -> Claim | None:
    """Lease the endpoint's oldest due delivery that is first in line for its customer."""
    skip_locked = (
        " FOR UPDATE OF d SKIP LOCKED"
        if database().features.has_select_for_update_skip_locked
        else ""
    )
    with transaction.atomic():
        rows = fetch(
            f"SELECT {DELIVERY.sql('d')}, {EVENT.sql('e')}, {ENDPOINT.sql('p')} "
            "FROM ledger_webhookdelivery d "
            "JOIN ledger_webhookevent e ON e.id = d.event_id "
            "JOIN ledger_webhookendpoint p ON p.id = d.endpoint_id "
            "WHERE d.endpoint_id = %s AND d.status = %s AND d.next_attempt_at <= %s "
            "AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= %s) AND p.enabled = %s "
            "AND NOT EXISTS (SELECT 1 FROM ledger_webhookdelivery b "
            "WHERE b.endpoint_id = d.endpoint_id AND b.customer_id = d.customer_id "
            "AND b.status = %s AND b.event_id < d.event_id) "
            "ORDER BY d.event_id LIMIT 1" + skip_locked,
            [endpoint_pk, PENDING, instant(now), instant(now), True, PENDING],
        )
        if not rows:
            return None
        row = rows[0]
        delivery = DELIVERY.load_row(row)
        event = EVENT.load_row(row[DELIVERY.width :])
        endpoint = ENDPOINT.load_row(row[DELIVERY.width + EVENT.width :])
        token = secrets.token_hex(16)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            lease_expires_at=now + dt.timedelta(seconds=lease_seconds()), lease_token=token
        )
    return Claim(delivery, event.event_id, event.payload, endpoint.url, endpoint.secret, token)


def lease_seconds() -> float:
    """Long enough for one request to time out and its result to be written."""
    return settings.WEBHOOK_TIMEOUT_SECONDS + settings.WEBHOOK_LEASE_MARGIN_SECONDS


def signed_headers(claim: Claim, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of the event's payload. The signature's timestamp is the
    real clock's, whatever `now` the scheduler was given: receivers check that it is recent."""
    sent_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "Content-Type": "application/json",
        "User-Agent": "credits-webhooks",
        "webhook-id": claim.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(claim.secret).sign(claim.event_id, sent_at, body),
    }


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the response's status (None when none came), what went wrong
    unless it is a 2xx, and whether trying again is pointless (a refused address)."""

    status: int | None
    error: str = ""
    final: bool = False


def send(claim: Claim) -> Outcome:
    """POST the delivery, straight to the endpoint: no proxy, no redirect followed (a redirect
    is an answer that is not 2xx: the endpoint's URL is the one to fix), only to addresses
    the rule allows (`addresses`), and all of it within `WEBHOOK_TIMEOUT_SECONDS`."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    body = dumps(claim.payload)
    try:
        parts = urlsplit(iri_to_uri(claim.url))  # non-ASCII characters, percent-encoded
        https = parts.scheme == "https"
        connection_class = CheckedHTTPSConnection if https else CheckedHTTPConnection
        conn = connection_class(
            parts.hostname or "",
            parts.port or (443 if https else 80),
            timeout=timeout,
            deadline=time.monotonic() + timeout,
        )
    except ValueError as error:  # a port out of range
        return Outcome(None, f"ValueError: {error}"[:ERROR_CHARS])
    watchdog = threading.Timer(timeout, conn.cut)
    watchdog.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=body.encode(), headers=signed_headers(claim, body))
        response = conn.getresponse()
        response.read(RESPONSE_BYTES)
        if conn.cut_off:  # what was read so far, and then an end cut short
            return Outcome(None, f"no complete answer within {timeout:g} seconds")
        if 200 <= response.status < 300:
            return Outcome(response.status)
        return Outcome(response.status, f"HTTP {response.status} {response.reason}"[:ERROR_CHARS])
    except RefusedAddress as error:
        return Outcome(None, f"refused address: {error}"[:ERROR_CHARS], final=True)
    except (OSError, http.client.HTTPException, ValueError) as error:
        if conn.cut_off:
            return Outcome(None, f"no complete answer within {timeout:g} seconds")
        return Outcome(None, f"{type(error).__name__}: {error}"[:ERROR_CHARS])
    finally:
        watchdog.cancel()
        conn.close()


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from the base, capped."""
    seconds = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30)
    return dt.timedelta(seconds=min(seconds, settings.WEBHOOK_RETRY_MAX_SECONDS))


def record(claim: Claim, outcome: Outcome, now: dt.datetime) -> bool:
    """Write the attempt's outcome, unless the lease was lost meanwhile (another sender took
    the delivery over). Returns whether the endpoint took it. A final failure is not retried."""
    status, error = outcome.status, outcome.error
    delivery = claim.delivery
    attempts = delivery.attempts + 1
    delivered = status is not None and 200 <= status < 300
    fields: dict[str, Any] = {
        "attempts": attempts,
        "response_code": status,
        "lease_expires_at": None,
        "lease_token": "",
    }
    if delivered:
        fields |= {
            "status": WebhookDelivery.Status.DELIVERED,
            "delivered_at": now,
            "last_error": "",
        }
    else:
        retry_at = now + backoff(attempts)
        fields["last_error"] = error
        if outcome.final or retry_at > delivery.give_up_at:
            fields["status"] = WebhookDelivery.Status.FAILED
        else:
            fields["next_attempt_at"] = retry_at
    WebhookDelivery.objects.filter(pk=delivery.pk, lease_token=claim.token).update(**fields)
    if not delivered:
        logger.warning("webhook %s to %s: %s", claim.event_id, claim.url, error)
    return delivered


def deliver_endpoint(endpoint_pk: int, *, now: dt.datetime | None = None) -> int:
    """Send the endpoint's due deliveries one by one, in order, up to
    `WEBHOOK_DELIVERIES_PER_TASK`; stop at the first failure (the rest wait for their next
    attempt rather than for a failing endpoint). Returns how many it delivered."""
    delivered = 0
    for _ in range(settings.WEBHOOK_DELIVERIES_PER_TASK):
        claim = claim_next(endpoint_pk, now or timezone.now())
        if claim is None:
            break
        if not record(claim, send(claim), now or timezone.now()):
            break
        delivered += 1
    return delivered


def _deliver_in_worker(endpoint_pk: int, now: dt.datetime | None) -> int:
    try:
        return deliver_endpoint(endpoint_pk, now=now)
    except Exception:
        logger.exception("webhook deliveries to endpoint %s", endpoint_pk)
        return 0
    finally:
        connection.close()  # this worker thread's own connection


class Dispatcher:
    """Runs one delivery task per endpoint with due deliveries on a bounded thread pool; an
    endpoint whose task still runs is left to it."""

    def __init__(self, workers: int | None = None):
        self.pool = futures.ThreadPoolExecutor(
            max_workers=workers or settings.WEBHOOK_WORKERS, thread_name_prefix="webhooks"
        )
        self.running: dict[int, futures.Future] = {}

    def dispatch(self, *, now: dt.datetime | None = None) -> int:
        """Start the tasks of endpoints with deliveries due. Returns how many it started."""
        self.running = {pk: task for pk, task in self.running.items() if not task.done()}
        started = due_endpoints(now or timezone.now()) - set(self.running)
        for pk in started:
            self.running[pk] = self.pool.submit(_deliver_in_worker, pk, now)
        return len(started)

    def wait(self) -> int:
        """Wait for the running tasks; returns how many deliveries they made."""
        done, _ = futures.wait(list(self.running.values()))
        self.running = {}
        return sum(task.result() for task in done)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
