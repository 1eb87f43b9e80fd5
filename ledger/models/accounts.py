"""Credit accounts, and the two rules every reader and writer of them shares, stated once here:

* **Validity**: an account counts at instant `t` (is *active*) when it has started
  (`starts_at` is null or `<= t`), has not expired (`expires_at` is null or `> t`) and was not
  voided (`voided_at` is null or `> t`); before its start it is *pending*, from its expiry or
  its void on *expired*. `validity_at` is the rule in Python,
  `active_at_q` and `validity_case` the same rule for the database.
* **Consumption order**: soonest `expires_at` first (never-expiring last), then oldest deposit,
  then lowest id. `CONSUMPTION_ORDER` for the ORM, `consumption_order_sql` for plain SQL.
"""

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import Case, CharField, F, Q, Value, When
from django.utils import timezone

from credits_project.sql import Columns, fetch
from customers.models import Customer
from ledger.models.choices import BusinessType, OperationType
from ledger.money import CreditAmountField, from_micros


class Validity(models.TextChoices):
    """An account's state at an instant: whether its credits count then."""

    PENDING = "PENDING", "not started"
    ACTIVE = "ACTIVE", "active"
    EXPIRED = "EXPIRED", "expired"


def validity_at(
    starts_at: dt.datetime | None,
    expires_at: dt.datetime | None,
    at: dt.datetime,
    voided_at: dt.datetime | None = None,
) -> Validity:
    if voided_at is not None and voided_at <= at:
        return Validity.EXPIRED
    if starts_at is not None and starts_at > at:
        return Validity.PENDING
    if expires_at is not None and expires_at <= at:
        return Validity.EXPIRED
    return Validity.ACTIVE


def active_at_q(at: dt.datetime, prefix: str = "") -> Q:
    """`validity_at(...) == ACTIVE` as a filter; `prefix` reaches the account through a
    relation (`"account__"`)."""
    return (
        (Q(**{f"{prefix}starts_at__isnull": True}) | Q(**{f"{prefix}starts_at__lte": at}))
        & (Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": at}))
        & (Q(**{f"{prefix}voided_at__isnull": True}) | Q(**{f"{prefix}voided_at__gt": at}))
    )


def validity_case(at: dt.datetime) -> Case:
    """`validity_at` as an SQL expression, for grouping accounts by their state."""
    return Case(
        When(voided_at__lte=at, then=Value(Validity.EXPIRED.value)),
        When(starts_at__gt=at, then=Value(Validity.PENDING.value)),
        When(expires_at__lte=at, then=Value(Validity.EXPIRED.value)),
        default=Value(Validity.ACTIVE.value),
        output_field=CharField(),
    )


CONSUMPTION_ORDER = (F("expires_at").asc(nulls_last=True), "created_at", "id")


def consumption_order_sql(alias: str = "") -> str:
    """`CONSUMPTION_ORDER` as an ORDER BY list (NULLs last on SQLite and PostgreSQL alike)."""
    a = f"{alias}." if alias else ""
    return f"{a}expires_at IS NULL, {a}expires_at, {a}created_at, {a}id"


class CreditAccountQuerySet(models.QuerySet):
    def active_at(self, at: dt.datetime) -> "CreditAccountQuerySet":
        return self.filter(active_at_q(at))

    def in_consumption_order(self) -> "CreditAccountQuerySet":
        return self.order_by(*CONSUMPTION_ORDER)

    def with_credits_left(self) -> "CreditAccountQuerySet":
        """Not used up: credits available or frozen (the `account_open_in_order` index)."""
        return self.filter(used__lt=F("total"))


class CreditAccountManager(models.Manager.from_queryset(CreditAccountQuerySet)):
    """Adds the loads a charge makes under the customer's lock, in plain SQL (see
    `credits_project.sql`)."""

    def open_of(self, customer_pk: int) -> list["CreditAccount"]:
        """The customer's accounts with credits to spend, in consumption order, whatever their
        wallet and validity window (`ledger.rules.spendable` picks from them).

        An account whose expiry is recorded is never spent again, whatever the clock says: its
        remainder already has its EXPIRE entry.
        """
        return ACCOUNT.load(
            fetch(
                f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount WHERE customer_id = %s "
                # `used < total` is implied, but spelled out so that the partial index on open
                # accounts (`account_open_in_order`) applies.
                "AND used < total AND used + frozen < total AND expiry_recorded_at IS NULL "
                f"ORDER BY {consumption_order_sql()}",
                [customer_pk],
            )
        )

    def of_customer(self, account_id: int, customer_pk: int) -> "CreditAccount | None":
        """The account, if it is this customer's (an operator's correction names it)."""
        found = ACCOUNT.load(
            fetch(
                f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount "
                "WHERE id = %s AND customer_id = %s",
                [account_id, customer_pk],
            )
        )
        return found[0] if found else None

    def held_by(
        self, customer_pk: int, transaction_id: str
    ) -> list[tuple["CreditAccount", Decimal]]:
        """The accounts a freeze holds credits on, and how many: its FREEZE entries, in order."""
        rows = fetch(
            f"SELECT {ACCOUNT.sql('a')}, e.amount FROM ledger_ledgerentry e "
            "JOIN ledger_creditaccount a ON a.id = e.account_id "
            "WHERE e.customer_id = %s AND e.transaction_id = %s AND e.operation_type = %s "
            "ORDER BY e.id",
            [customer_pk, transaction_id, OperationType.FREEZE],
        )
        return [(ACCOUNT.load_row(row), from_micros(row[ACCOUNT.width])) for row in rows]


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
    # Set when the scheduler wrote this account's EXPIRE entry (or a void its VOID entry);
    # credits returned to the account later expire in the transaction that returns them.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when the account was voided: its credits stopped counting then, as at an expiry.
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CreditAccountManager()

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
    def available(self) -> Decimal:
        return self.total - self.used - self.frozen

    def validity_at(self, at: dt.datetime) -> Validity:
        return validity_at(self.starts_at, self.expires_at, at, self.voided_at)

    def has_ended_by(self, at: dt.datetime) -> bool:
        """Expired or voided by `at`: credits returned to it from then on expire at once."""
        return (self.expires_at is not None and self.expires_at <= at) or (
            self.voided_at is not None and self.voided_at <= at
        )

    def is_active_at(self, at: dt.datetime) -> bool:
        return self.validity_at(at) == Validity.ACTIVE

    def consumption_key(self) -> tuple:
        """`CONSUMPTION_ORDER` as a sort key in Python."""
        return (
            self.expires_at is None,
            self.expires_at or self.created_at,
            self.created_at,
            self.pk,
        )


ACCOUNT = Columns(CreditAccount)
