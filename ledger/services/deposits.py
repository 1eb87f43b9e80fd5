"""Deposits: credits into a customer's wallet, creating the customer on first deposit."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Customer, Project
from ledger.models import BusinessType, CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.services.common import entry, fingerprint, replay, retry_on_identity_race, stored

UNSET: Any = object()


@dataclass(frozen=True)
class Profile:
    """Customer profile fields sent with a deposit; `UNSET` leaves a field as it is."""

    name: str | None = UNSET
    email: str | None = UNSET
    metadata: dict[str, Any] = UNSET

    def changes(self, customer: Customer) -> dict[str, Any]:
        given = {k: v for k, v in vars(self).items() if v is not UNSET}
        return {k: v for k, v in given.items() if getattr(customer, k) != v}


@retry_on_identity_race
def deposit(
    *,
    project: Project,
    customer_id: str,
    amount: Decimal,
    actor: str,
    wallet: str = "default",
    source: str = "default",
    starts_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    idempotency_key: str | None = None,
    profile: Profile = Profile(),
    description: str = "",
    business_type: str = BusinessType.UNDEFINED,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Add `amount` credits to `customer_id` as one new credit account and its GRANT entry.

    The customer is created on first deposit and its profile updated by later ones. With an
    `idempotency_key`, a repeat returns the original response and changes nothing.
    """
    request_fingerprint = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallet=wallet,
        source=source,
        starts_at=starts_at,
        expires_at=expires_at,
        business_type=business_type,
    )
    with transaction.atomic():
        customer = lock_or_create_customer(project, customer_id, profile, now or timezone.now())
        now = now or timezone.now()  # read under the lock, as in `Charge.run`
        if idempotency_key is not None:
            original = Transaction.objects.filter(
                project=project, kind=Transaction.Kind.DEPOSIT, identity=idempotency_key
            ).first()
            if original is not None:
                return replay(
                    original,
                    customer=customer,
                    request_fingerprint=request_fingerprint,
                    kind=Transaction.Kind.DEPOSIT,
                )
        changes = profile.changes(customer)
        if changes:
            Customer.objects.filter(pk=customer.pk).update(**changes)
        account = CreditAccount.objects.create(
            customer=customer,
            wallet=wallet,
            source=source,
            total=amount,
            starts_at=starts_at,
            expires_at=expires_at,
            business_type=business_type,
            created_at=now,
        )
        grant: LedgerEntry = entry(
            account,
            OperationType.GRANT,
            amount,
            transaction_ref=idempotency_key,
            business_type=business_type,
            description=description,
            actor=actor,
            now=now,
        )
        grant.save()
        response = {
            "customer_id": customer_id,
            "account_id": str(account.pk),
            "wallet": wallet,
            "credit_type": wallet,
            "source": source,
            "total_amount": amount,
            "added_amount": amount,
            "starts_at": starts_at,
            "expires_at": expires_at,
            "record_id": str(grant.pk),
        }
        if idempotency_key is not None:
            Transaction.objects.create(
                project=project,
                customer=customer,
                kind=Transaction.Kind.DEPOSIT,
                identity=idempotency_key,
                state=Transaction.State.DEPOSITED,
                fingerprint=request_fingerprint,
                amount=amount,
                business_type=business_type,
                description=description,
                response=stored(response),
                created_at=now,
                settled_at=now,
            )
    return {**response, "is_idempotent_replay": False}


def lock_or_create_customer(
    project: Project, customer_id: str, profile: Profile, now: dt.datetime
) -> Customer:
    """Lock the customer's row, creating it first if it does not exist yet.

    Creation races are settled by the unique constraint (INSERT ... ON CONFLICT DO NOTHING),
    never by check-then-insert: whoever loses simply locks the winner's row.
    """
    existing = Customer.objects.select_for_update().filter(project=project, external_id=customer_id)
    customer = existing.first()
    if customer is None:
        fields = {k: v for k, v in vars(profile).items() if v is not UNSET}
        fields.setdefault("metadata", {})
        Customer.objects.bulk_create(
            [Customer(project=project, external_id=customer_id, created_at=now, **fields)],
            ignore_conflicts=True,
        )
        customer = existing.get()
    return customer
