"""The credits ledger.

Design overview
---------------
* A `CreditAccount` is created by each deposit and holds that deposit's `total`, how much of it is
  `used` and how much is `frozen` (reserved by open freezes). `available = total - used - frozen`.
  The database checks `0 <= used`, `0 <= frozen`, `used + frozen <= total`, `total > 0`.
* A `Transaction` is one identified operation: a deposit with an idempotency key, a freeze or a
  deduct, named by the client's `transaction_id` (a deposit's idempotency key). It holds the
  request fingerprint that tells a retry from a reuse, the freeze's state machine and its
  auto-settlement deadlines. Deposit keys and freeze/deduct ids live in separate namespaces,
  each unique per project.
* A `LedgerEntry` is one append-only change of one account by one operation (GRANT, FREEZE,
  CONSUME, UNFREEZE, EXPIRE), carrying the client's `transaction_id`. Replaying the entries
  reproduces every account's counters. A freeze's per-account holdings are its FREEZE entries,
  and the answer to a retried operation is rebuilt from its entries and its transaction.
* `SpentCredits` sums, per customer and wallet, the accounts used up to the last credit whose
  expiry is not recorded yet, so a balance read touches only open accounts however many
  deposits a customer has spent.
* Counters only ever change inside a service function (`ledger/services/`), in one database
  transaction, with the customer's row locked first.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from credits_project.api.json import format_decimal
from customers.models import Customer, Project
from ledger.money import CreditAmountField, CreditTotalField


class BusinessType(models.TextChoices):
    UNDEFINED = "UNDEFINED"
    TASK = "TASK"
    ORDER = "ORDER"
    MEMBERSHIP = "MEMBERSHIP"
    SUBSCRIPTION = "SUBSCRIPTION"
    FREE_TRIAL = "FREE_TRIAL"
    ADMIN_GRANT = "ADMIN_GRANT"
    TOKEN_USAGE = "TOKEN_USAGE"


class CreditAccount(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    wallet = models.CharField(max_length=64, default="default")
    source = models.CharField(max_length=64, default="default")
    total = CreditAmountField()
    used = CreditAmountField(default=0)
    frozen = CreditAmountField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    business_type = models.CharField(
        max_length=32, choices=BusinessType.choices, default=BusinessType.UNDEFINED
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the scheduler wrote this account's EXPIRE entry; credits returned to the account
    # later expire in the transaction that returns them.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="account_total_positive"),
            models.CheckConstraint(condition=Q(used__gte=0), name="account_used_not_negative"),
            models.CheckConstraint(condition=Q(frozen__gte=0), name="account_frozen_not_negative"),
            models.CheckConstraint(
                condition=Q(used__lte=F("total") - F("frozen")),
                name="account_used_plus_frozen_within_total",
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(expires_at__isnull=True)
                | Q(expires_at__gt=F("starts_at")),
                name="account_expires_after_start",
            ),
        ]
        indexes = [
            # Open accounts in consumption order: what freeze and deduct read. (PostgreSQL
            # sorts NULL last in an ascending index, as the order wants; SQLite cannot say so.)
            models.Index(
                fields=["customer", "expires_at", "created_at", "id"],
                condition=Q(used__lt=F("total")),
                name="account_open_in_order",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(expiry_recorded_at__isnull=True, expires_at__isnull=False),
                name="account_expiry_due",
            ),
            # Used-up accounts whose expiry is still to be recorded: a balance read subtracts
            # those already past it from the customer's `SpentCredits`.
            models.Index(
                fields=["customer", "expires_at"],
                condition=Q(
                    used=F("total"), expiry_recorded_at__isnull=True, expires_at__isnull=False
                ),
                name="account_spent_expiring",
            ),
        ]

    def __str__(self) -> str:
        # The customer is named by its own id when it is at hand (the admin selects it).
        customer = self.customer.external_id if "customer" in self._state.fields_cache else None
        owner = f" of {customer}" if customer else ""
        return f"account {self.pk}{owner} ({self.wallet}/{self.source})"

    @property
    def available(self):
        return self.total - self.used - self.frozen


class Transaction(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT = "DEPOSIT"
        FREEZE = "FREEZE"
        DEDUCT = "DEDUCT"

    class State(models.TextChoices):
        DEPOSITED = "DEPOSITED"
        FROZEN = "FROZEN"
        CONSUMED = "CONSUMED"
        UNFROZEN = "UNFROZEN"
        DEDUCTED = "DEDUCTED"

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
                condition=~Q(kind="DEPOSIT"),
                name="transaction_unique_charge_id",
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


class OperationType(models.TextChoices):
    GRANT = "GRANT"
    FREEZE = "FREEZE"
    CONSUME = "CONSUME"
    UNFREEZE = "UNFREEZE"
    EXPIRE = "EXPIRE"


class AppendOnlyQuerySet(models.QuerySet):
    """Ledger entries are never changed or removed: corrections are new entries."""

    def update(self, **kwargs):
        raise TypeError("ledger entries are append-only")

    def delete(self):
        raise TypeError("ledger entries are append-only")


class LedgerEntry(models.Model):
    # Every read of entries starts with the customer: the `entry_walk` indexes lead with it.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
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

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="entry_amount_positive"),
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


class SpentCredits(models.Model):
    """What a customer's used-up accounts in one wallet hold: the sum of `total` over accounts
    with `used = total` whose expiry is not recorded (`check_ledger` recomputes it).

    Kept by `ledger.services.rows.apply` in the transaction that uses an account up or records
    its expiry. A balance read adds it to the open accounts it reads one by one, less the
    used-up accounts already past `expires_at` that the scheduler has not reached yet.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    wallet = models.CharField(max_length=64)
    total = CreditTotalField(default=0)

    class Meta:
        verbose_name_plural = "spent credits"
        constraints = [
            models.UniqueConstraint(fields=["customer", "wallet"], name="spent_unique_per_wallet"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet}: {format_decimal(self.total)} spent"


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

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField()
    amount = CreditAmountField(null=True, blank=True)
    # The ledger's transaction id of the change (the grant's idempotency key, the deduct's or
    # the freeze's id); "account <id>" for an expiry, whose entries carry none.
    transaction_id = models.CharField(max_length=255)
    token = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        permissions = [("act_on_credits", "Can grant, deduct, settle and expire credits")]
        indexes = [
            models.Index(F("customer"), F("created_at").desc(), name="operator_action_walk"),
        ]

    def __str__(self) -> str:
        amount = f" {format_decimal(self.amount)}" if self.amount is not None else ""
        return f"{self.get_action_display()}{amount} by {self.actor}"


# Webhook models live in their own package; imported here so the ledger app owns them.
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent  # noqa: E402

__all__ = [
    "BusinessType",
    "CreditAccount",
    "LedgerCounter",
    "LedgerEntry",
    "OperationType",
    "OperatorAction",
    "SpentCredits",
    "Transaction",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
