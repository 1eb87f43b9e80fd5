"""Slots: concurrency capacity, per customer, in pools keyed by (wallet, source).

A `SlotPool` holds a whole number of slots (`capacity`, the sum of its grants less its revokes)
and how many of them are taken (`in_use`); the database keeps `0 <= in_use <= capacity`, so no
claim can take more than a pool has and no revoke can take capacity below what is held,
however requests race. A `SlotHolding` is one resource's claim on a pool (`amount` slots) until
it is released, or until its lease (`expires_at`, when the claim set a TTL) runs out and the
scheduler releases it. A wallet holds at most one holding per resource, whichever pool it is in.

`SlotEvent` is the append-only history (GRANT_CAPACITY, REVOKE_CAPACITY, CLAIM, RELEASE):
replaying a pool's events gives its capacity and in_use (`check_ledger` does), and a keyed
grant or revoke is found again by its `idempotency_key`, with the request's fingerprint.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from customers.models import Customer, Project


class SlotPool(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        SUSPENDED = "SUSPENDED"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="slot_pools")
    wallet = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    capacity = models.BigIntegerField(default=0)
    in_use = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "wallet", "source"], name="slot_pool_per_wallet_source"
            ),
            models.CheckConstraint(
                condition=Q(in_use__gte=0), name="slot_pool_in_use_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(in_use__lte=F("capacity")), name="slot_pool_in_use_within_capacity"
            ),
        ]

    def __str__(self) -> str:
        return f"slot pool {self.wallet}/{self.source}: {self.in_use} of {self.capacity}"

    @property
    def available(self) -> int:
        return self.capacity - self.in_use


class SlotHolding(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    pool = models.ForeignKey(SlotPool, on_delete=models.PROTECT, related_name="holdings")
    wallet = models.CharField(max_length=64)  # the pool's, so one resource holds once per wallet
    resource_id = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    claimed_at = models.DateTimeField(default=timezone.now)
    # The lease: when the scheduler releases the holding (null: held until released).
    expires_at = models.DateTimeField(null=True, blank=True)
    ttl_seconds = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "wallet", "resource_id"], name="slot_holding_per_resource"
            ),
            models.UniqueConstraint(
                fields=["pool", "resource_id"], name="slot_holding_per_pool_resource"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="slot_holding_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(expires_at__isnull=False),
                name="slot_holding_lease_due",
            ),
        ]

    def __str__(self) -> str:
        return f"holding {self.pk} of {self.resource_id}: {self.amount}"


class SlotEvent(models.Model):
    class Type(models.TextChoices):
        GRANT_CAPACITY = "GRANT_CAPACITY"
        REVOKE_CAPACITY = "REVOKE_CAPACITY"
        CLAIM = "CLAIM"
        RELEASE = "RELEASE"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    pool = models.ForeignKey(SlotPool, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=16, choices=Type.choices)
    wallet = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    resource_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    holding_id = models.BigIntegerField(null=True, blank=True)
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="slot_event_unique_key_per_project",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="slot_event_amount_positive"),
        ]
        indexes = [
            models.Index(
                F("customer"), F("created_at").desc(), F("id").desc(), name="slot_event_walk"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} {self.wallet}/{self.source}"

    @property
    def kind(self) -> str:
        """The operation, as `idempotency.check_repeat` compares it."""
        return self.type
