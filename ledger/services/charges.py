"""Charges: freeze a budget now (settled later by consume or unfreeze), or deduct at once."""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction

from customers.models import Customer, Project
from ledger.models import BusinessType, OperationType, Transaction
from ledger.results import DeductResult, Detail, FreezeResult
from ledger.services import replays, rows
from ledger.services.accounts import Draw, eligible, open_accounts, take
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_customer, now_under_lock
from ledger.webhooks import events


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
) -> FreezeResult:
    """Reserve `amount` available credits for `transaction_id`, in consumption order.

    The freeze holds its credits until a consume or unfreeze settles it, or the scheduler does
    at the optional deadline. A repeat returns the original answer and changes nothing.
    """
    request = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallets=eligible(wallets),
        unfreeze_after_seconds=unfreeze_after_seconds,
        consume_after_seconds=consume_after_seconds,
        business_type=business_type,
    )
    with transaction.atomic():
        customer, earlier = lock_customer(project, customer_id, charge_id=transaction_id)
        if earlier is not None:
            check_repeat(earlier, customer=customer, request=request, kind=Transaction.Kind.FREEZE)
            return replays.freeze(earlier)
        now = now_under_lock(now)
        accounts = open_accounts(customer.pk)
        draws = take(accounts, amount, wallets, now)
        plan = rows.Plan(actor=actor, now=now)
        for part in draws:
            plan.change(part.account, frozen=part.amount)
        record_entries(
            plan, draws, OperationType.FREEZE, transaction_id, business_type, description
        )
        events.low_balance(
            plan,
            project=project,
            customer_pk=customer.pk,
            customer_id=customer_id,
            accounts=accounts,
            transaction_id=transaction_id,
        )
        charge = new_charge(
            plan,
            project=project,
            customer=customer,
            kind=Transaction.Kind.FREEZE,
            transaction_id=transaction_id,
            amount=amount,
            wallets=wallets,
            business_type=business_type,
            description=description,
            fingerprint=request,
            now=now,
            state=Transaction.State.FROZEN,
            unfreeze_after=deadline(now, unfreeze_after_seconds),
            consume_after=deadline(now, consume_after_seconds),
        )
    return FreezeResult(
        transaction_id=transaction_id,
        frozen_amount=amount,
        freeze_details=[Detail.of(part.account, part.amount) for part in draws],
        unfreeze_after=charge.unfreeze_after,
        consume_after=charge.consume_after,
        is_idempotent_replay=False,
    )


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
) -> DeductResult:
    """Charge `amount` at once from available credits, in consumption order.

    A repeat returns the original answer and changes nothing.
    """
    request = fingerprint(
        customer_id=customer_id,
        amount=amount,
        wallets=eligible(wallets),
        business_type=business_type,
    )
    with transaction.atomic():
        customer, earlier = lock_customer(project, customer_id, charge_id=transaction_id)
        if earlier is not None:
            check_repeat(earlier, customer=customer, request=request, kind=Transaction.Kind.DEDUCT)
            return replays.deduct(earlier)
        now = now_under_lock(now)
        accounts = open_accounts(customer.pk)
        draws = take(accounts, amount, wallets, now)
        plan = rows.Plan(actor=actor, now=now)
        for part in draws:
            plan.change(part.account, used=part.amount)
        record_entries(
            plan, draws, OperationType.CONSUME, transaction_id, business_type, description
        )
        events.low_balance(
            plan,
            project=project,
            customer_pk=customer.pk,
            customer_id=customer_id,
            accounts=accounts,
            transaction_id=transaction_id,
        )
        new_charge(
            plan,
            project=project,
            customer=customer,
            kind=Transaction.Kind.DEDUCT,
            transaction_id=transaction_id,
            amount=amount,
            wallets=wallets,
            business_type=business_type,
            description=description,
            fingerprint=request,
            now=now,
            state=Transaction.State.DEDUCTED,
            consumed_amount=amount,
            settled_at=now,
            settled_by=Transaction.SettledBy.CLIENT,
        )
    return DeductResult(
        transaction_id=transaction_id,
        deducted_amount=amount,
        deduct_details=[Detail.of(part.account, part.amount) for part in draws],
        deducted_at=now,
        is_idempotent_replay=False,
    )


def record_entries(
    plan: rows.Plan,
    draws: list[Draw],
    operation_type: str,
    transaction_id: str,
    business_type: str,
    description: str,
) -> None:
    for part in draws:
        plan.entry(
            part.account,
            operation_type,
            part.amount,
            transaction_id=transaction_id,
            business_type=business_type,
            description=description,
        )


def new_charge(
    plan: rows.Plan,
    *,
    project: Project,
    customer: Customer,
    kind: str,
    transaction_id: str,
    amount: Decimal,
    wallets: Sequence[str] | None,
    business_type: str,
    description: str,
    fingerprint: str,
    now: dt.datetime,
    **state: object,
) -> Transaction:
    """Record the freeze or deduct under its id, and write the plan with it (a concurrent
    first use of the id breaks the unique constraint here; see `retry_on_identity_race`)."""
    charge = Transaction(
        project=project,
        customer=customer,
        kind=kind,
        transaction_id=transaction_id,
        fingerprint=fingerprint,
        amount=amount,
        wallets=eligible(wallets),
        business_type=business_type,
        description=description,
        created_at=now,
        **state,
    )
    plan.insert(charge)
    rows.apply(plan)
    return charge


def deadline(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)
