"""Identified operations: a keyed deposit, a freeze, a deduct, a refund of a charge, a void of
an account (see the package's overview). Each kind of id is unique per project within its own
namespace: deposit keys, charge ids (freezes and deducts), refund ids, void ids."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from credits_project.json import format_decimal
from credits_project.sql import Columns
from customers.models import Customer, Project
from ledger.models.choices import BusinessType
from ledger.money import CreditAmountField

# Freezes and deducts share one namespace of ids, the charges'.
CHARGE_KINDS = ("FREEZE", "DEDUCT")
CHARGE_KINDS_SQL = "('FREEZE', 'DEDUCT')"


class Transaction(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT = "DEPOSIT"
        FREEZE = "FREEZE"
        DEDUCT = "DEDUCT"
        REFUND = "REFUND"
        VOID = "VOID"

    class State(models.TextChoices):
        DEPOSITED = "DEPOSITED"
        FROZEN = "FROZEN"
        CONSUMED = "CONSUMED"
        UNFROZEN = "UNFROZEN"
        DEDUCTED = "DEDUCTED"
        REFUNDED = "REFUNDED"
        VOIDED = "VOIDED"

    class SettledBy(models.TextChoices):
        CLIENT = "client"
        SCHEDULER = "scheduler"

    # Found by (project, transaction_id) through the unique constraints, never by project alone.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The client's id of a freeze or deduct, or a deposit's idempotency key.
    transaction_id = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices)
    settled_by = models.CharField(  # noqa: DJ001
        max_length=16, choices=SettledBy.choices, null=True, blank=True
    )
    fingerprint = models.CharField(max_length=64)
    amount = CreditAmountField()
    # Eligible wallets of a freeze or deduct; null when unrestricted.
    wallets = models.JSONField(null=True, blank=True)
    business_type = models.CharField(
        max_length=32, choices=BusinessType.choices, default=BusinessType.UNDEFINED
    )
    description = models.TextField(blank=True, default="")
    unfreeze_after = models.DateTimeField(null=True, blank=True)
    consume_after = models.DateTimeField(null=True, blank=True)
    consumed_amount = CreditAmountField(null=True, blank=True)
    returned_amount = CreditAmountField(null=True, blank=True)
    overage_amount = CreditAmountField(null=True, blank=True)
    # Of a charge: how much of what it consumed its refunds have put back so far.
    refunded_amount = CreditAmountField(default=0)
    # Of a refund: the charge it refunds. Of a void: the account it ends.
    refunded = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    account = models.ForeignKey(
        "ledger.CreditAccount", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "transaction_id"],
                condition=Q(kind="DEPOSIT"),
                name="transaction_unique_deposit_key",
            ),
            models.UniqueConstraint(
                fields=["project", "transaction_id"],
                condition=Q(kind__in=CHARGE_KINDS),
                name="transaction_unique_charge_id",
            ),
            models.UniqueConstraint(
                fields=["project", "transaction_id"],
                condition=Q(kind="REFUND"),
                name="transaction_unique_refund_id",
            ),
            models.UniqueConstraint(
                fields=["project", "transaction_id"],
                condition=Q(kind="VOID"),
                name="transaction_unique_void_id",
            ),
            # A charge's refunds never put back more than it consumed, whatever races them.
            models.CheckConstraint(
                condition=Q(refunded_amount=0)
                | Q(refunded_amount__gt=0, refunded_amount__lte=F("consumed_amount")),
                name="transaction_refunds_within_charge",
            ),
            models.CheckConstraint(
                condition=Q(unfreeze_after__isnull=True) | Q(consume_after__isnull=True),
                name="transaction_one_auto_settlement",
            ),
        ]
        indexes = [
            models.Index(
                fields=["unfreeze_after"],
                condition=Q(state="FROZEN", unfreeze_after__isnull=False),
                name="transaction_unfreeze_due",
            ),
            models.Index(
                fields=["consume_after"],
                condition=Q(state="FROZEN", consume_after__isnull=False),
                name="transaction_consume_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.transaction_id} ({format_decimal(self.amount)})"


TRANSACTION = Columns(Transaction)
