"""What used-up accounts hold, per customer and wallet."""

from django.db import models

from credits_project.json import format_decimal
from customers.models import Customer
from ledger.money import CreditTotalField


class SpentCredits(models.Model):
    """What a customer's used-up accounts in one wallet hold: the sum of `total` over accounts
    with `used = total` whose expiry is not recorded (`check_ledger` recomputes it).

    Kept by `ledger.services.plan.apply` in the transaction that uses an account up or records
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
