"""What staff did in the console."""

from django.db import models
from django.db.models import F
from django.utils import timezone

from credits_project.json import format_decimal
from customers.models import Customer
from ledger.money import CreditAmountField


class OperatorAction(models.Model):
    """One change made by a staff user in the console, with the reason they gave.

    Written in the transaction of the service call it records. `token` is the identity of the
    console form that made it: a second submit of the same form finds it and applies nothing.
    """

    class Action(models.TextChoices):
        GRANT = "GRANT", "Grant credits"
        DEDUCT = "DEDUCT", "Deduct credits"
        UNFREEZE = "UNFREEZE", "Release a freeze"
        CONSUME = "CONSUME", "Settle a freeze"
        EXPIRE = "EXPIRE", "Expire an account"
        REFUND = "REFUND", "Refund a charge"
        VOID = "VOID", "Void an account"
        CREDIT_LIMIT = "CREDIT_LIMIT", "Set a credit limit"
        SCHEDULE = "SCHEDULE", "Put on a schedule"
        SCHEDULE_UPDATE = "SCHEDULE_UPDATE", "Update a schedule"
        SCHEDULE_CANCEL = "SCHEDULE_CANCEL", "Cancel a schedule"
        SLOT_GRANT = "SLOT_GRANT", "Grant slot capacity"
        SLOT_REVOKE = "SLOT_REVOKE", "Revoke slot capacity"
        SLOT_RELEASE = "SLOT_RELEASE", "Release a slot holding"
        FEATURE_SET = "FEATURE_SET", "Set an entitlement"
        FEATURE_REMOVE = "FEATURE_REMOVE", "Remove an entitlement"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField()
    amount = CreditAmountField(null=True, blank=True)
    # The ledger's transaction id of the change (the grant's idempotency key, the deduct's or
    # the freeze's id, the refund's or the void's id); "account <id>" for an expiry, whose
    # entries carry none; "credit limit <wallet>" for a limit set; the schedule's id for a
    # schedule's creation, update or cancel; the capacity change's idempotency key; the
    # released resource; the entitlement's feature key.
    transaction_id = models.CharField(max_length=255)
    token = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        permissions = [
            ("act_on_credits", "Can grant, deduct, settle, expire, refund and void credits")
        ]
        indexes = [
            models.Index(F("customer"), F("created_at").desc(), name="operator_action_walk"),
        ]

    def __str__(self) -> str:
        amount = f" {format_decimal(self.amount)}" if self.amount is not None else ""
        return f"{self.get_action_display()}{amount} by {self.actor}"
