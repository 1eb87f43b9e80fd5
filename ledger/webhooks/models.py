"""Webhook endpoints, the outbox of events, and their deliveries.

* A `WebhookEndpoint` is a project's URL, the event types it takes (none listed: all), whether it
  is enabled, and the secret its deliveries are signed with (`whsec_…`).
* A `WebhookEvent` is written in the transaction of the change it tells of, only while its
  project has an enabled endpoint. Its `payload` is the body sent, amounts as exact decimals.
  `dedupe_key` makes once-only events (an account's expiry notice) unique.
* A `WebhookDelivery` is one event to one endpoint, made by the scheduler's fan-out. Its lease
  (`lease_expires_at`, `lease_token`) tells other schedulers it is being sent; a killed
  scheduler's lease simply runs out and the delivery is sent again.
"""

import base64
import secrets
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from credits_project.json import ExactJSONDecoder, ExactJSONEncoder
from customers.models import Customer, Project


class EventType(models.TextChoices):
    DEPOSITED = "credits.deposited"
    LOW_BALANCE = "credits.low_balance"
    EXPIRING = "credits.expiring"
    EXPIRED = "credits.expired"
    AUTO_SETTLED = "freeze.auto_settled"
    REFUNDED = "credits.refunded"
    DEBT_OPENED = "credits.debt_opened"
    DEBT_CLEARED = "credits.debt_cleared"
    SCHEDULE_ENDED = "schedule.ended"


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class WebhookEndpoint(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000, validators=[URLValidator(schemes=["http", "https"])])
    # Event type names (`EventType`); empty takes every type.
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, default=new_signing_secret, editable=False)
    description = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook endpoint"
        indexes = [
            # What a write asks about its project: is any endpoint enabled.
            models.Index(fields=["project"], condition=Q(enabled=True), name="endpoint_enabled"),
        ]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        if not isinstance(self.event_types, list) or not all(
            name in EventType.values for name in self.event_types
        ):
            raise ValidationError(
                {"event_types": f"a list of event types, of: {', '.join(EventType.values)}"}
            )

    def takes(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    event_id = models.CharField(max_length=40, unique=True, default=new_event_id)
    type = models.CharField(max_length=40, choices=EventType.choices)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    payload = models.JSONField(encoder=ExactJSONEncoder, decoder=ExactJSONDecoder)
    created_at = models.DateTimeField(default=timezone.now)
    # Set for events sent at most once for their subject, e.g. "credits.expiring:<account>".
    dedupe_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    # When the scheduler made its deliveries.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "webhook event"
        indexes = [
            models.Index(fields=["id"], condition=Q(fanned_out_at=None), name="event_to_fan_out"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The event's customer, kept here so that "is an earlier delivery still pending" is one
    # indexed look-up: deliveries go out in order per endpoint and customer.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Retries stop here: the delivery is then failed (a re-send from the console starts anew).
    give_up_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="delivery_once_per_endpoint"
            ),
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "customer", "event"],
                condition=Q(status="pending"),
                name="delivery_pending_in_order",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
