"""Charges: freeze a budget now (settled later by consume or unfreeze), or deduct at once."""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Project
from ledger.models import BusinessType, OperationType, Transaction
from ledger.services import statements
from ledger.services.common import (
    Allocation,
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
    charge = Charge(
        kind=Transaction.Kind.FREEZE,
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=amount,
        wallets=wallets,
        business_type=business_type,
        description=description,
        actor=actor,
        now=now,
        fingerprint=fingerprint(
            customer_id=customer_id,
            amount=amount,
            wallets=eligible(wallets),
            unfreeze_after_seconds=unfreeze_after_seconds,
            consume_after_seconds=consume_after_seconds,
            business_type=business_type,
        ),
    )

    def record(allocations: list[Allocation], at: dt.datetime) -> tuple[dict, dict]:
        deadlines = {
            "unfreeze_after": deadline(at, unfreeze_after_seconds),
            "consume_after": deadline(at, consume_after_seconds),
        }
        response = {
            "transaction_id": transaction_id,
            "frozen_amount": amount,
            "freeze_details": [detail_item(a.account, a.amount) for a in allocations],
            **deadlines,
        }
        return response, {"state": Transaction.State.FROZEN, **deadlines}

    return charge.run(counter="frozen", operation_type=OperationType.FREEZE, record=record)


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
    charge = Charge(
        kind=Transaction.Kind.DEDUCT,
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=amount,
        wallets=wallets,
        business_type=business_type,
        description=description,
        actor=actor,
        now=now,
        fingerprint=fingerprint(
            customer_id=customer_id,
            amount=amount,
            wallets=eligible(wallets),
            business_type=business_type,
        ),
    )

    def record(allocations: list[Allocation], at: dt.datetime) -> tuple[dict, dict]:
        response = {
            "transaction_id": transaction_id,
            "deducted_amount": amount,
            "deduct_details": [detail_item(a.account, a.amount) for a in allocations],
            "deducted_at": at,
        }
        settled = {
            "state": Transaction.State.DEDUCTED,
            "consumed_amount": amount,
            "settled_at": at,
            "settled_by": Transaction.SettledBy.CLIENT,
        }
        return response, settled

    return charge.run(counter="used", operation_type=OperationType.CONSUME, record=record)


@dataclass(frozen=True, kw_only=True)
class Charge:
    """What freeze and deduct share: lock the customer, replay a repeat, take `amount` from
    the eligible accounts in consumption order into one counter, record entries and the
    transaction with its response, all in one database transaction.

    The clock is read once the customer is locked (unless a caller fixed `now`): a request that
    waited for the lock must judge which credits are active, and date its entries, as of when it
    runs, not as of when it arrived.
    """

    kind: str
    project: Project
    customer_id: str
    transaction_id: str
    amount: Decimal
    wallets: Sequence[str] | None
    business_type: str
    description: str
    actor: str
    now: dt.datetime | None
    fingerprint: str

    def run(
        self,
        *,
        counter: str,
        operation_type: str,
        record: Callable[[list[Allocation], dt.datetime], tuple[dict, dict]],
    ) -> dict[str, Any]:
        """`record(allocations, now)` gives the response and the transaction's own fields."""
        with transaction.atomic():
            customer = lock_customer(self.project, self.customer_id)
            now = self.now or timezone.now()
            original = statements.charge_by_identity(self.project.pk, self.transaction_id)
            if original is not None:
                return replay(
                    original,
                    customer=customer,
                    request_fingerprint=self.fingerprint,
                    kind=self.kind,
                )
            allocations: list[Allocation] = allocate(
                spendable_accounts(customer, self.wallets, now),
                self.amount,
                customer=customer,
                wallets=self.wallets,
                now=now,
            )
            for allocation in allocations:
                account = allocation.account
                setattr(account, counter, getattr(account, counter) + allocation.amount)
            statements.save_counters([a.account for a in allocations], [counter])
            statements.insert(
                [
                    entry(
                        a.account,
                        operation_type,
                        a.amount,
                        transaction_ref=self.transaction_id,
                        business_type=self.business_type,
                        description=self.description,
                        actor=self.actor,
                        now=now,
                    )
                    for a in allocations
                ]
            )
            body, transaction_fields = record(allocations, now)
            row = Transaction(
                project=self.project,
                customer=customer,
                kind=self.kind,
                identity=self.transaction_id,
                fingerprint=self.fingerprint,
                amount=self.amount,
                wallets=eligible(self.wallets),
                business_type=self.business_type,
                description=self.description,
                response=stored(body),
                created_at=now,
                **transaction_fields,
            )
            statements.insert([row])
        return {**body, "is_idempotent_replay": False}


def eligible(wallets: Sequence[str] | None) -> list[str] | None:
    """The eligible wallets as a set: order and repeats do not change a restriction."""
    return sorted(set(wallets)) if wallets is not None else None


def deadline(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)
