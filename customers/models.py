"""Tenants and their customers.

A `Project` is a tenant: every API key belongs to one, and every customer, transaction id,
idempotency key and ledger entry is scoped to the project of the key that made it. A
`Customer` is named by the caller's own id, unique within its project.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey

from credits_project.json import ExactJSONDecoder, ExactJSONEncoder
from credits_project.sql import Columns
from ledger.money import CreditAmountField


class Project(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Webhook notices. Kept on the project, which every request already reads with its key, so
    # that a charge learns them without another statement.
    low_balance_threshold = CreditAmountField(
        null=True,
        blank=True,
        help_text="Send credits.low_balance when a customer's available balance falls below "
        "this; empty sends none.",
    )
    low_balance_wallet = models.CharField(  # noqa: DJ001
        max_length=64,
        null=True,
        blank=True,
        help_text="The wallet whose balance is watched; empty watches all wallets together.",
    )
    expiring_notice_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Send credits.expiring this many days before an account with credits left "
        "expires; empty sends none.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(AbstractAPIKey):
    """A project's API key: stored as a hash, found by its public prefix, shown once."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="api_keys")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def revoke(self) -> None:
        """Revoke at once: authentication reads the database on every request."""
        if not self.revoked:
            self.revoked = True
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked", "revoked_at"])


class Customer(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="customers")
    external_id = models.CharField("customer id", max_length=255)
    # Null means "never given", which the API renders as null; "" is a value someone sent.
    name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    email = models.CharField(max_length=254, null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(
        default=dict, blank=True, encoder=ExactJSONEncoder, decoder=ExactJSONDecoder
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Whether the customer has a credit line (`ledger.models.credit_lines`): read with the
    # customer, so that a balance read of the many customers without one costs no extra
    # statement.
    has_credit_line = models.BooleanField(default=False, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="customer_unique_id_per_project"
            ),
            models.CheckConstraint(condition=~Q(external_id=""), name="customer_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.external_id


PROJECT = Columns(Project)
API_KEY = Columns(ApiKey)
CUSTOMER = Columns(Customer)
