"""The scheduler's work: expire accounts past `expires_at`, settle freezes past a deadline.

Each unit of work runs in its own transaction and locks the customer first, like every other
writer. Customers another process holds are skipped (`SKIP LOCKED` on PostgreSQL) and picked up
by the next pass, so several scheduler processes can run at once without doing work twice.
"""

import datetime as dt
import logging

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from credits_project.errors import ServiceError
from customers.models import Customer
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.services.common import entry
from ledger.services.settlements import SCHEDULER_ACTOR, consume, unfreeze

logger = logging.getLogger("credits.scheduler")


def lock_customer_or_skip(customer_id: int) -> Customer | None:
    customers = Customer.objects.filter(pk=customer_id)
    if connection.features.has_select_for_update_skip_locked:
        return customers.select_for_update(skip_locked=True).first()
    return customers.first()  # SQLite: the IMMEDIATE transaction already holds the lock


def expire_due(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Write one EXPIRE entry for the unused remainder of each account past its expiry.

    Returns how many accounts were recorded as expired.
    """
    now = now or timezone.now()
    due = CreditAccount.objects.filter(
        expiry_recorded_at__isnull=True, expires_at__isnull=False, expires_at__lte=now
    )
    customer_ids = list(due.values_list("customer_id", flat=True).distinct()[:batch_size])
    recorded = 0
    for customer_id in customer_ids:
        with transaction.atomic():
            if lock_customer_or_skip(customer_id) is None:
                continue
            accounts = list(due.filter(customer_id=customer_id).order_by("id"))
            expirations = [
                entry(
                    account,
                    OperationType.EXPIRE,
                    account.available,
                    transaction_ref=None,
                    business_type=account.business_type,
                    description="expired",
                    actor=SCHEDULER_ACTOR,
                    now=now,
                )
                for account in accounts
                if account.available > 0
            ]
            LedgerEntry.objects.bulk_create(expirations)
            due.filter(pk__in=[a.pk for a in accounts]).update(expiry_recorded_at=now)
            recorded += len(accounts)
    return recorded


def settle_due(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Unfreeze, or consume in full, every freeze past its auto-settlement deadline.

    Goes through the same `consume` / `unfreeze` a client call uses. Returns how many freezes
    this pass settled.
    """
    now = now or timezone.now()
    due = (
        Transaction.objects.filter(state=Transaction.State.FROZEN)
        .filter(Q(unfreeze_after__lte=now) | Q(consume_after__lte=now))
        .select_related("project")
        .order_by(F("unfreeze_after").asc(nulls_last=True), "consume_after", "id")
    )
    settled = 0
    for charge in due[:batch_size]:
        with transaction.atomic():
            if lock_customer_or_skip(charge.customer_id) is None:
                continue
            charge.refresh_from_db(fields=["state"])
            if charge.state != Transaction.State.FROZEN:
                continue  # a client or another scheduler settled it meanwhile
            settle = unfreeze if charge.unfreeze_after is not None else consume
            try:
                settle(
                    project=charge.project,
                    transaction_id=charge.identity,
                    actor=SCHEDULER_ACTOR,
                    settled_by=Transaction.SettledBy.SCHEDULER,
                    now=now,
                )
            except ServiceError:
                logger.exception("could not settle freeze %s", charge.pk)
                continue
            settled += 1
    return settled
