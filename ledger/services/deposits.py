"""Deposits: credits into a customer's wallet, creating the customer on first deposit."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Customer, Project
from ledger.models import BusinessType, CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.results import DepositResult
from ledger.services import replays, rows
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_or_create_customer, now_under_lock
from ledger.webhooks import events

UNSET: Any = object()


@dataclass(frozen=True)
class Profile:
    """Customer profile fields sent with a deposit; `UNSET` leaves a field as it is."""

    name: str | None = UNSET
    email: str | None = UNSET
    metadata: dict[str, Any] = UNSET

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not UNSET}

    def changes(self, customer: Customer) -> dict[str, Any]:
        return {k: v for k, v in self.given().items() if getattr(customer, k) != v}


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
) -> DepositResult:
    """Add `amount` credits to `customer_id` as one new credit account and its GRANT entry.

    The customer is created on first deposit and its profile updated by later ones. With an
    `idempotency_key`, a repeat returns the original answer and changes nothing.
    """
    request = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallet=wallet,
        source=source,
        starts_at=starts_at,
        expires_at=expires_at,
        business_type=business_type,
    )
    with transaction.atomic():
        customer, earlier = lock_or_create_customer(
            project,
            customer_id,
            deposit_key=idempotency_key,
            new={"metadata": {}, **profile.given(), "created_at": now or timezone.now()},
        )
        if earlier is not None:
            check_repeat(earlier, customer=customer, request=request, kind=Transaction.Kind.DEPOSIT)
            return replays.deposit(earlier, customer_id)
        now = now_under_lock(now)
        changes = profile.changes(customer)
        if changes:
            for name, value in changes.items():
                setattr(customer, name, value)
            rows.update(customer, list(changes))
        account = CreditAccount(
            customer=customer,
            wallet=wallet,
            source=source,
            total=amount,
            starts_at=starts_at,
            expires_at=expires_at,
            business_type=business_type,
            created_at=now,
        )
        rows.insert([account], returning_ids=True)
        grant = LedgerEntry(
            customer=customer,
            account=account,
            operation_type=OperationType.GRANT,
            amount=amount,
            transaction_id=idempotency_key,
            business_type=business_type,
            description=description,
            actor=actor,
            created_at=now,
        )
        writes = []
        if idempotency_key is not None:
            receipt = Transaction(
                project=project,
                customer=customer,
                kind=Transaction.Kind.DEPOSIT,
                transaction_id=idempotency_key,
                state=Transaction.State.DEPOSITED,
                fingerprint=request,
                amount=amount,
                business_type=business_type,
                description=description,
                created_at=now,
                settled_at=now,
            )
            writes.append(rows.insert_statement([receipt]))
        events.deposited(
            writes,
            project=project,
            account=account,
            customer_id=customer_id,
            idempotency_key=idempotency_key,
            now=now,
        )
        grant_row = rows.insert_statement([grant])
        writes.append(rows.Statement(f"{grant_row.sql} RETURNING id", grant_row.params))
        [(grant.pk,)] = rows.run_together(writes)
    return DepositResult(
        customer_id=customer_id,
        account_id=str(account.pk),
        wallet=wallet,
        credit_type=wallet,
        source=source,
        total_amount=amount,
        added_amount=amount,
        starts_at=starts_at,
        expires_at=expires_at,
        record_id=str(grant.pk),
        is_idempotent_replay=False,
    )
