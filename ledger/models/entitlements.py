"""Entitlements: what a customer's plan allows, one string value per feature key.

An `Entitlement` is the current value of one feature of one customer (the database keeps at
most one per key), with an optional validity window judged at read time, like credits: one
whose `valid_until` has passed is expired, one whose `valid_from` is still ahead has not
started. Removing it deletes the row. `EntitlementEvent` is the append-only history (SET with
the old and new values, REMOVE with the old one): the last event of each key names its current
value, which `check_ledger` replays.
"""

import datetime as dt

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from credits_project.json import ExactJSONDecoder, ExactJSONEncoder
from customers.models import Customer


class Entitlement(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="entitlements")
    feature_key = models.CharField(max_length=255)
    value = models.TextField()
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=64, default="default")
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(
        null=True, blank=True, encoder=ExactJSONEncoder, decoder=ExactJSONDecoder
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "feature_key"], name="entitlement_per_feature"
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_from__lt=F("valid_until")),
                name="entitlement_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feature_key} = {self.value}"

    def is_active_at(self, at: dt.datetime) -> bool:
        """Whether the window holds `at`: started (or no start) and not yet ended."""
        started = self.valid_from is None or self.valid_from <= at
        return started and not self.has_expired_at(at)

    def has_expired_at(self, at: dt.datetime) -> bool:
        return self.valid_until is not None and self.valid_until <= at


class EntitlementEvent(models.Model):
    class Type(models.TextChoices):
        SET = "SET"
        REMOVE = "REMOVE"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    feature_key = models.CharField(max_length=255)
    type = models.CharField(max_length=8, choices=Type.choices)
    old_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    new_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    source = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                F("customer"), F("created_at").desc(), F("id").desc(), name="entitlement_event_walk"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.feature_key}: {self.old_value} -> {self.new_value}"
