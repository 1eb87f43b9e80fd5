"""Credit lines: how far a trusted customer may spend past its own credits, and what it owes.

A `CreditLine` is one customer's limit in one wallet (or, with the empty wallet, across all its
wallets), with the `debt` drawn on it and what open freezes hold on it (`frozen`). A charge that
the customer's spendable credits do not cover draws the rest on its lines, after every credit
account, up to `credit_limit - debt - frozen` (the line's headroom), under the customer's lock. The
draw is recorded as entries on the line: FREEZE and UNFREEZE as on an account, DEBT where an
account would have CONSUME. The next credits deposited into the wallet pay the debt back first
(REPAY entries, on the new account and the line at once). A limit lowered below what is owed,
or a clawback, may leave `debt` above `credit_limit`: the headroom is then none, never negative.

`CreditLimitChange` records every limit an operator or client set, so a past read (`as_of`)
knows the limit then, and `check_ledger` that each line's limit is the last one set.
"""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from credits_project.json import format_decimal
from credits_project.sql import Columns, fetch
from customers.models import Customer
from ledger.models.choices import OperationType
from ledger.money import ZERO, CreditAmountField, from_micros

# What a line may owe at most: its debt is a 64-bit count of micro-credits. Charges stay within
# limits of at most 10^12; only clawbacks could go further, and are refused past this.
MAX_LINE_DEBT = Decimal(9 * 10**12)

WHOLE_CUSTOMER = ""
"""The wallet of a line that covers every wallet of its customer."""


class CreditLineManager(models.Manager):
    def of(self, customer: Customer) -> list["CreditLine"]:
        """The customer's lines, in plain SQL, in a statement of their own; none without a
        statement for a customer whose flag says it has none (the flag is read with it).

        A writer reads them once it holds the customer's lock, never joined to the locking
        statement: a row joined there is read in that statement's snapshot, taken before a
        concurrent charge of the customer committed, and would miss its debt."""
        if not customer.has_credit_line:
            return []
        return CREDIT_LINE.load(
            fetch(
                f"SELECT {CREDIT_LINE.sql()} FROM ledger_creditline WHERE customer_id = %s "
                "ORDER BY id",
                [customer.pk],
            )
        )

    def held_by(self, customer_pk: int, transaction_id: str) -> list[tuple[int, Decimal]]:
        """(line id, amount) of what a freeze holds on the customer's lines: its FREEZE
        entries on lines, in order."""
        rows = fetch(
            "SELECT credit_line_id, amount FROM ledger_ledgerentry "
            "WHERE customer_id = %s AND transaction_id = %s AND operation_type = %s "
            "AND credit_line_id IS NOT NULL ORDER BY id",
            [customer_pk, transaction_id, OperationType.FREEZE],
        )
        return [(pk, from_micros(amount)) for pk, amount in rows]


class CreditLine(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_lines")
    wallet = models.CharField(max_length=64, blank=True, default=WHOLE_CUSTOMER)
    credit_limit = CreditAmountField(default=0)
    debt = CreditAmountField(default=0)
    frozen = CreditAmountField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = CreditLineManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "wallet"], name="credit_line_per_wallet"),
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="credit_line_limit_not_negative"
            ),
            models.CheckConstraint(condition=Q(debt__gte=0), name="credit_line_debt_not_negative"),
            models.CheckConstraint(
                condition=Q(frozen__gte=0), name="credit_line_frozen_not_negative"
            ),
        ]

    def __str__(self) -> str:
        scope = self.wallet or "all wallets"
        return f"credit line {self.pk} ({scope}): {format_decimal(self.debt)} owed"

    @property
    def covers_every_wallet(self) -> bool:
        return self.wallet == WHOLE_CUSTOMER

    @property
    def headroom(self) -> Decimal:
        """What a charge may still draw on the line: never below zero."""
        return max(self.credit_limit - self.debt - self.frozen, ZERO)

    def takes(self, wallets: list[str] | None) -> bool:
        """Whether a charge restricted to `wallets` (all when None) may draw on this line."""
        return self.covers_every_wallet or wallets is None or self.wallet in wallets


class CreditLimitChange(models.Model):
    """One limit set on a customer's line (0 removes it), by whom and when."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    wallet = models.CharField(max_length=64, blank=True, default=WHOLE_CUSTOMER)
    credit_limit = CreditAmountField()
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "wallet", "created_at"], name="credit_limit_change_walk"
            ),
        ]

    def __str__(self) -> str:
        return f"limit {format_decimal(self.credit_limit)} ({self.wallet or 'all wallets'})"


CREDIT_LINE = Columns(CreditLine)
