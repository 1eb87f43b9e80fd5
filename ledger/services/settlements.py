"""Settling a freeze: consume its actual cost, or unfreeze it, by a client or the scheduler."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from credits_project.errors import (
    FreezeAutoUnfrozen,
    FreezeRecordsAlreadyConsumed,
    IdempotencyConflict,
    NoConsumableFreezeRecords,
    NoUnfreezableRecords,
)
from customers.models import Project
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.money import ZERO
from ledger.services import statements
from ledger.services.common import (
    Allocation,
    allocate,
    detail_item,
    entry,
    lock_customer_of_charge,
    replayed,
    spendable_accounts,
    stored,
)

SCHEDULER_ACTOR = "scheduler"


def consume(
    *,
    project: Project,
    transaction_id: str,
    actor: str,
    actual_amount: Decimal | None = None,
    settled_by: str = Transaction.SettledBy.CLIENT,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Charge a freeze's actual cost and return the rest of its credits to available.

    `actual_amount` defaults to the whole frozen amount. Above it, the overage is drawn from
    available credits of the freeze's eligible wallets (or the call fails and the freeze stays
    frozen). A repeat replays the original response; another `actual_amount` is a conflict.
    """
    with transaction.atomic():
        charge = lock_customer_of_charge(project, transaction_id)
        now = now or timezone.now()  # read under the lock, as in `Charge.run`
        if charge is None or charge.kind != Transaction.Kind.FREEZE:
            raise NoConsumableFreezeRecords({"transaction_id": transaction_id})
        if charge.state == Transaction.State.CONSUMED:
            if actual_amount is not None and actual_amount != charge.consumed_amount:
                raise IdempotencyConflict({"field": "actual_amount"})
            return replayed(charge.settle_response)
        if charge.state == Transaction.State.UNFROZEN:
            if charge.settled_by == Transaction.SettledBy.SCHEDULER:
                raise FreezeAutoUnfrozen({"transaction_id": transaction_id})
            raise NoConsumableFreezeRecords({"transaction_id": transaction_id})

        actual = charge.amount if actual_amount is None else actual_amount
        holdings = holdings_of(charge)
        consumed: dict[int, Decimal] = {}
        returned: dict[int, Decimal] = {}
        remaining = actual
        for account, held in holdings:
            take = min(held, remaining)
            remaining -= take
            account.frozen -= held
            account.used += take
            consumed[account.pk] = take
            returned[account.pk] = held - take
        accounts = {account.pk: account for account, _ in holdings}
        if remaining > 0:  # overage: from available credits of the same eligible wallets
            for allocation in overage_allocations(charge, remaining, now):
                account = accounts.setdefault(allocation.account.pk, allocation.account)
                account.used += allocation.amount
                consumed[account.pk] = consumed.get(account.pk, ZERO) + allocation.amount
        entries = []
        for pk, amount in consumed.items():
            if amount > 0:
                entries.append(
                    settlement_entry(
                        charge, accounts[pk], OperationType.CONSUME, amount, actor, now
                    )
                )
        entries += returned_entries(charge, accounts, returned, actor, now)
        statements.save_counters(accounts.values(), ["used", "frozen", "expiry_recorded_at"])
        LedgerEntry.objects.bulk_create(entries)

        held_total = charge.amount
        response: dict[str, Any] = {
            "transaction_id": transaction_id,
            "consumed_amount": actual,
        }
        if held_total > actual:
            response["returned_amount"] = held_total - actual
        if actual > held_total:
            response["overage_amount"] = actual - held_total
        response["consume_details"] = [
            detail_item(accounts[pk], amount) for pk, amount in consumed.items() if amount > 0
        ]
        response["consumed_at"] = now
        settle(
            charge,
            state=Transaction.State.CONSUMED,
            settled_by=settled_by,
            response=response,
            now=now,
            consumed_amount=actual,
            returned_amount=max(held_total - actual, ZERO),
            overage_amount=max(actual - held_total, ZERO),
        )
    return {**response, "is_idempotent_replay": False}


def unfreeze(
    *,
    project: Project,
    transaction_id: str,
    actor: str,
    settled_by: str = Transaction.SettledBy.CLIENT,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Return every credit a freeze holds to available. A repeat replays the original response."""
    with transaction.atomic():
        charge = lock_customer_of_charge(project, transaction_id)
        now = now or timezone.now()  # read under the lock, as in `Charge.run`
        if charge is None or charge.kind != Transaction.Kind.FREEZE:
            raise NoUnfreezableRecords({"transaction_id": transaction_id})
        if charge.state == Transaction.State.UNFROZEN:
            return replayed(charge.settle_response)
        if charge.state == Transaction.State.CONSUMED:
            raise FreezeRecordsAlreadyConsumed({"transaction_id": transaction_id})

        holdings = holdings_of(charge)
        accounts = {}
        returned = {}
        for account, held in holdings:
            account.frozen -= held
            accounts[account.pk] = account
            returned[account.pk] = held
        entries = returned_entries(charge, accounts, returned, actor, now)
        statements.save_counters(accounts.values(), ["frozen", "expiry_recorded_at"])
        LedgerEntry.objects.bulk_create(entries)
        response = {
            "transaction_id": transaction_id,
            "unfrozen_amount": charge.amount,
            "unfreeze_details": [detail_item(account, held) for account, held in holdings],
            "unfrozen_at": now,
        }
        settle(
            charge,
            state=Transaction.State.UNFROZEN,
            settled_by=settled_by,
            response=response,
            now=now,
            returned_amount=charge.amount,
            consumed_amount=ZERO,
        )
    return {**response, "is_idempotent_replay": False}


def overage_allocations(charge: Transaction, amount: Decimal, now: dt.datetime) -> list[Allocation]:
    """Where a consume's overage comes from; the contract names any shortfall here plainly
    `insufficient_balance`, whether or not the freeze was restricted to some wallets."""
    return allocate(
        spendable_accounts(charge.customer, charge.wallets, now),
        amount,
        customer=charge.customer,
        wallets=charge.wallets,
        now=now,
        name_selected_wallets=False,
    )


def holdings_of(charge: Transaction) -> list[tuple[CreditAccount, Decimal]]:
    """The accounts and amounts a frozen freeze holds: its FREEZE entries, in their order."""
    return statements.holdings(charge.customer_id, charge.identity)


def settlement_entry(
    charge: Transaction,
    account: CreditAccount,
    operation_type: str,
    amount: Decimal,
    actor: str,
    now: dt.datetime,
) -> LedgerEntry:
    return entry(
        account,
        operation_type,
        amount,
        transaction_ref=charge.identity,
        business_type=charge.business_type,
        description=charge.description,
        actor=actor,
        now=now,
    )


def returned_entries(
    charge: Transaction,
    accounts: dict[int, CreditAccount],
    returned: dict[int, Decimal],
    actor: str,
    now: dt.datetime,
) -> list[LedgerEntry]:
    """UNFREEZE entries for credits given back, and the EXPIRE entries they call for.

    Credits returned to an account past its expiry expire in this same transaction. If the
    scheduler already recorded the account's expiry, only the returned credits expire now; if
    it has not come by yet, this transaction does its work: everything left on the account
    expires and the expiry is recorded (`expiry_recorded_at`, saved with the counters), so
    each credit still expires exactly once. Call after the counters have changed.
    """
    entries = []
    for pk, amount in returned.items():
        if amount <= 0:
            continue
        account = accounts[pk]
        entries.append(
            settlement_entry(charge, account, OperationType.UNFREEZE, amount, actor, now)
        )
        if account.expires_at is None or account.expires_at > now:
            continue
        if account.expiry_recorded_at is None:
            account.expiry_recorded_at = now
            expiring = account.available
        else:
            expiring = amount
        if expiring > 0:
            entries.append(
                entry(
                    account,
                    OperationType.EXPIRE,
                    expiring,
                    transaction_ref=None,
                    business_type=account.business_type,
                    description="expired",
                    actor=actor,
                    now=now,
                )
            )
    return entries


def settle(
    charge: Transaction,
    *,
    state: str,
    settled_by: str,
    response: dict[str, Any],
    now: dt.datetime,
    **amounts: Decimal,
) -> None:
    fields = {
        "state": state,
        "settled_by": settled_by,
        "settle_response": stored(response),
        "settled_at": now,
        **amounts,
    }
    for name, value in fields.items():
        setattr(charge, name, value)
    charge.save(update_fields=list(fields))
