"""Charges: freeze a budget now (settled later by consume or unfreeze), or deduct at once."""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Project
from ledger.models import BusinessType, CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.services.common import (
    allocate,
    detail_item,
    entry,
    fingerprint,
    lock_customer,
    replay,
    retry_on_identity_race,
    spendable_accounts,
    stored,
)


@retry_on_identity_race
def freeze(
    *,
    project: Project,
    customer_id: str,
    transaction_id: str,
    amount: Decimal,
    actor: str,
    wallets: Sequence[str] | None = None,
    business_type: str = BusinessType.UNDEFINED,
    description: str = "",
    unfreeze_after_seconds: int | None = None,
    consume_after_seconds: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Reserve `amount` available credits for `transaction_id`, in consumption order.

    The freeze holds its credits until a consume or unfreeze settles it, or the scheduler does
    at the optional deadline. A repeat returns the original response and changes nothing.
    """
    now = now or timezone.now()
    request_fingerprint = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallets=sorted(set(wallets)) if wallets is not None else None,
        unfreeze_after_seconds=unfreeze_after_seconds,
        consume_after_seconds=consume_after_seconds,
        business_type=business_type,
    )
    with transaction.atomic():
        customer = lock_customer(project, customer_id)
        original = Transaction.objects.filter(project=project, identity=transaction_id).exclude(
            kind=Transaction.Kind.DEPOSIT
        )
        original = original.first()
        if original is not None:
            return replay(
                original,
                customer=customer,
                request_fingerprint=request_fingerprint,
                kind=Transaction.Kind.FREEZE,
            )
        allocations = allocate(
            spendable_accounts(customer, wallets, now),
            amount,
            customer=customer,
            wallets=wallets,
            now=now,
        )
        for allocation in allocations:
            allocation.account.frozen += allocation.amount
        CreditAccount.objects.bulk_update([a.account for a in allocations], ["frozen"])
        LedgerEntry.objects.bulk_create(
            [
                entry(
                    a.account,
                    OperationType.FREEZE,
                    a.amount,
                    transaction_ref=transaction_id,
                    business_type=business_type,
                    description=description,
                    actor=actor,
                    now=now,
                )
                for a in allocations
            ]
        )
        unfreeze_after = deadline(now, unfreeze_after_seconds)
        consume_after = deadline(now, consume_after_seconds)
        response = {
            "transaction_id": transaction_id,
            "frozen_amount": amount,
            "freeze_details": [detail_item(a.account, a.amount) for a in allocations],
            "unfreeze_after": unfreeze_after,
            "consume_after": consume_after,
        }
        Transaction.objects.create(
            project=project,
            customer=customer,
            kind=Transaction.Kind.FREEZE,
            identity=transaction_id,
            state=Transaction.State.FROZEN,
            fingerprint=request_fingerprint,
            amount=amount,
            wallets=sorted(set(wallets)) if wallets is not None else None,
            business_type=business_type,
            description=description,
            unfreeze_after=unfreeze_after,
            consume_after=consume_after,
            response=stored(response),
            created_at=now,
        )
    return {**response, "is_idempotent_replay": False}


@retry_on_identity_race
def deduct(
    *,
    project: Project,
    customer_id: str,
    transaction_id: str,
    amount: Decimal,
    actor: str,
    wallets: Sequence[str] | None = None,
    business_type: str = BusinessType.UNDEFINED,
    description: str = "",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Charge `amount` at once from available credits, in consumption order.

    A repeat returns the original response and changes nothing.
    """
    now = now or timezone.now()
    request_fingerprint = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallets=sorted(set(wallets)) if wallets is not None else None,
        business_type=business_type,
    )
    with transaction.atomic():
        customer = lock_customer(project, customer_id)
        original = (
            Transaction.objects.filter(project=project, identity=transaction_id)
            .exclude(kind=Transaction.Kind.DEPOSIT)
            .first()
        )
        if original is not None:
            return replay(
                original,
                customer=customer,
                request_fingerprint=request_fingerprint,
                kind=Transaction.Kind.DEDUCT,
            )
        allocations = allocate(
            spendable_accounts(customer, wallets, now),
            amount,
            customer=customer,
            wallets=wallets,
            now=now,
        )
        for allocation in allocations:
            allocation.account.used += allocation.amount
        CreditAccount.objects.bulk_update([a.account for a in allocations], ["used"])
        LedgerEntry.objects.bulk_create(
            [
                entry(
                    a.account,
                    OperationType.CONSUME,
                    a.amount,
                    transaction_ref=transaction_id,
                    business_type=business_type,
                    description=description,
                    actor=actor,
                    now=now,
                )
                for a in allocations
            ]
        )
        response = {
            "transaction_id": transaction_id,
            "deducted_amount": amount,
            "deduct_details": [detail_item(a.account, a.amount) for a in allocations],
            "deducted_at": now,
        }
        Transaction.objects.create(
            project=project,
            customer=customer,
            kind=Transaction.Kind.DEDUCT,
            identity=transaction_id,
            state=Transaction.State.DEDUCTED,
            fingerprint=request_fingerprint,
            amount=amount,
            wallets=sorted(set(wallets)) if wallets is not None else None,
            business_type=business_type,
            description=description,
            consumed_amount=amount,
            response=stored(response),
            created_at=now,
            settled_at=now,
            settled_by=Transaction.SettledBy.CLIENT,
        )
    return {**response, "is_idempotent_replay": False}


def deadline(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)
