"""The append-only ledger, and the per-type counts of it a trigger keeps."""

from decimal import Decimal
from typing import NamedTuple

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from credits_project.json import format_decimal
from credits_project.sql import fetch, placeholders
from customers.models import Customer
from ledger.models.accounts import CreditAccount
from ledger.models.choices import BusinessType, OperationType
from ledger.models.credit_lines import CreditLine
from ledger.money import CreditAmountField, from_micros


class AppendOnlyQuerySet(models.QuerySet):
    """Ledger entries are never changed or removed: corrections are new entries."""

    def update(self, **kwargs):
        raise TypeError("ledger entries are append-only")

    def delete(self):
        raise TypeError("ledger entries are append-only")


class Part(NamedTuple):
    """One entry of an operation, with the wallet and source of what it changed: an account,
    or a credit line (whose source reads `credit_line`)."""

    operation_type: str
    account_id: str | None
    credit_line_id: str | None
    wallet: str
    source: str
    amount: Decimal


class LedgerEntryManager(models.Manager.from_queryset(AppendOnlyQuerySet)):
    def parts_of(self, customer_pk: int, transaction_id: str, *operation_types: str) -> list[Part]:
        """The entries of these operation types that the operation `transaction_id` wrote, in
        order: the details a replay and a transaction's state list."""
        rows = fetch(
            "SELECT e.operation_type, e.account_id, e.credit_line_id, "
            "COALESCE(a.wallet, l.wallet), a.source, e.amount FROM ledger_ledgerentry e "
            "LEFT JOIN ledger_creditaccount a ON a.id = e.account_id "
            "LEFT JOIN ledger_creditline l ON l.id = e.credit_line_id "
            "WHERE e.customer_id = %s AND e.transaction_id = %s "
            f"AND e.operation_type IN ({placeholders(len(operation_types))}) ORDER BY e.id",
            [customer_pk, transaction_id, *operation_types],
        )
        return [
            Part(
                operation_type,
                None if account_id is None else str(account_id),
                None if line_id is None else str(line_id),
                wallet,
                source or "credit_line",
                from_micros(amount),
            )
            for operation_type, account_id, line_id, wallet, source, amount in rows
        ]


class LedgerEntry(models.Model):
    # Every read of entries starts with the customer: the `entry_walk` indexes lead with it.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    # The account the entry changes; on a credit line's entries, the line (a REPAY names both:
    # the deposit's account that pays, and the line it pays).
    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    credit_line = models.ForeignKey(
        CreditLine, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    operation_type = models.CharField(max_length=16, choices=OperationType.choices)
    amount = CreditAmountField()
    # The freeze/deduct id, or a GRANT's idempotency key; null for EXPIRE and keyless GRANTs.
    transaction_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    business_type = models.CharField(
        max_length=32, choices=BusinessType.choices, default=BusinessType.UNDEFINED
    )
    description = models.TextField(blank=True, default="")
    # Who caused the entry: "api_key:<prefix>", "staff:<username>" (the console) or "scheduler".
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LedgerEntryManager()

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="entry_amount_positive"),
            models.CheckConstraint(
                condition=Q(account__isnull=False) | Q(credit_line__isnull=False),
                name="entry_of_an_account_or_line",
            ),
        ]
        indexes = [
            models.Index(F("customer"), F("created_at").desc(), F("id").desc(), name="entry_walk"),
            models.Index(
                F("customer"),
                F("operation_type"),
                F("created_at").desc(),
                F("id").desc(),
                name="entry_walk_by_type",
            ),
            models.Index(fields=["customer", "transaction_id"], name="entry_by_transaction"),
        ]

    def __str__(self) -> str:
        customer = self.customer.external_id if "customer" in self._state.fields_cache else None
        owner = f" of {customer}" if customer else ""
        return (
            f"{self.operation_type} {format_decimal(self.amount)} on account {self.account_id}"
            f"{owner}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("ledger entries are append-only")


class LedgerCounter(models.Model):
    """How many entries a customer has per operation type.

    Kept by a database trigger on every ledger insert (see migration 0002), so a ledger page's
    `total_count` costs one small read however long the ledger grows. Never written by Django.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    operation_type = models.CharField(max_length=16, choices=OperationType.choices)
    entries = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "operation_type"], name="counter_unique_per_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.operation_type}: {self.entries}"
