"""The scheduler's work: expire accounts past `expires_at`, settle freezes past a deadline,
release slot holdings whose lease ran out.

Each unit of work runs in its own transaction and locks the customer first, like every other
writer. Customers another process holds are skipped (`SKIP LOCKED` on PostgreSQL) and picked up
by the next pass, so several scheduler processes can run at once without doing work twice.
"""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from credits_project.errors import ServiceError
from credits_project.sql import fetch, instant
from customers.models import Customer
from ledger.models import CreditAccount, OperationType, SlotHolding, Transaction
from ledger.models.accounts import ACCOUNT
from ledger.services import events
from ledger.services.locks import lock_customer_unless_busy
from ledger.services.plan import Plan, apply
from ledger.services.settlements import SCHEDULER_ACTOR, consume, unfreeze
from ledger.services.slots import free

logger = logging.getLogger("credits.scheduler")


def expire_due(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Record the expiry of every account past `expires_at`, with one EXPIRE entry for its
    unused remainder (none when nothing is left). Returns how many accounts were recorded."""
    now = now or timezone.now()
    return sum(
        expire_customer(customer_pk, now)
        for customer_pk in customers_with_expiry_due(now, batch_size=batch_size)
    )


def customers_with_expiry_due(now: dt.datetime, *, batch_size: int = 500) -> list[int]:
    """Up to `batch_size` customers with an account past `expires_at` whose expiry is not
    recorded yet, as read now: by the time one is locked, another scheduler or a client
    returning credits to the account may have recorded it."""
    return list(
        CreditAccount.objects.filter(
            expiry_recorded_at__isnull=True, expires_at__isnull=False, expires_at__lte=now
        )
        .values_list("customer_id", flat=True)
        .distinct()[:batch_size]
    )


def expire_customer(customer_pk: int, now: dt.datetime) -> int:
    """Record the customer's due expiries in a transaction of its own, unless another process
    holds the customer. Returns how many accounts it recorded (none when someone else was
    first)."""
    with transaction.atomic():
        if not lock_customer_unless_busy(customer_pk):
            return 0
        return expire_accounts_of(customer_pk, now)


def expire_accounts_of(customer_pk: int, now: dt.datetime, actor: str = SCHEDULER_ACTOR) -> int:
    """Record the expiry of the customer's accounts past `expires_at`; the caller holds the
    customer's lock."""
    due = ACCOUNT.load(
        fetch(
            f"SELECT {ACCOUNT.sql()} FROM ledger_creditaccount WHERE customer_id = %s "
            "AND expiry_recorded_at IS NULL AND expires_at IS NOT NULL AND expires_at <= %s "
            "ORDER BY id",
            [customer_pk, instant(now)],
        )
    )
    plan = Plan(actor=actor, now=now)
    customer = None
    for account in due:
        plan.change(account, records_expiry=True)
        if account.available > 0:
            plan.entry(
                account,
                OperationType.EXPIRE,
                account.available,
                transaction_id=None,
                business_type=account.business_type,
                description="expired",
            )
            customer = customer or Customer.objects.select_related("project").get(pk=customer_pk)
            events.expired(
                plan,
                project=customer.project,
                customer_id=customer.external_id,
                account=account,
                amount=account.available,
            )
    apply(plan)
    return len(due)


def settle_due(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Unfreeze, or consume in full, every freeze past its auto-settlement deadline.

    Goes through the same `consume` / `unfreeze` a client call uses. Returns how many freezes
    this pass settled.
    """
    now = now or timezone.now()
    due = (
        Transaction.objects.filter(state=Transaction.State.FROZEN)
        .filter(Q(unfreeze_after__lte=now) | Q(consume_after__lte=now))
        .select_related("project", "customer")
        .order_by(F("unfreeze_after").asc(nulls_last=True), "consume_after", "id")
    )
    settled = 0
    for charge in due[:batch_size]:
        with transaction.atomic():
            if not lock_customer_unless_busy(charge.customer_id):
                continue
            charge.refresh_from_db(fields=["state"])
            if charge.state != Transaction.State.FROZEN:
                continue  # a client or another scheduler settled it meanwhile
            settle = unfreeze if charge.unfreeze_after is not None else consume
            try:
                settle(
                    project=charge.project,
                    transaction_id=charge.transaction_id,
                    actor=SCHEDULER_ACTOR,
                    settled_by=Transaction.SettledBy.SCHEDULER,
                    now=now,
                )
            except ServiceError:
                logger.exception("could not settle freeze %s", charge.pk)
                continue
            settled += 1
    return settled


def release_due(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Release every slot holding whose lease ran out (`expires_at` passed): a RELEASE event
    whose actor is the scheduler, through the same step a client's release takes. Returns how
    many this pass released; a holding a client released or renewed after the listing is left
    alone."""
    now = now or timezone.now()
    due = list(
        SlotHolding.objects.filter(expires_at__lte=now)
        .order_by("expires_at", "id")
        .values_list("pk", "customer_id")[:batch_size]
    )
    released = 0
    for holding_pk, customer_pk in due:
        with transaction.atomic():
            if not lock_customer_unless_busy(customer_pk):
                continue
            holding = (
                SlotHolding.objects.filter(pk=holding_pk, expires_at__lte=now)
                .select_related("pool", "customer")
                .first()
            )
            if holding is None:
                continue  # released, or renewed, since the listing
            free(holding.customer, holding, actor=SCHEDULER_ACTOR, now=now)
            released += 1
    return released
