"""Charges: freeze a budget now (settled later by consume or unfreeze), or deduct at once.

Both are one charge: lock the customer, replay a repeat of the same id, draw `amount` from the
customer's spendable credits in consumption order (and what they do not cover on its credit
lines), and record the draw, as credits held (FREEZE entries, `frozen`) or spent (CONSUME
entries, `used`; DEBT entries on a line).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from customers.models import Project
from ledger.models import BusinessType, CreditAccount, OperationType, Transaction
from ledger.results import DeductResult, Detail, FreezeResult
from ledger.rules import Draw, Taken, eligible, take
from ledger.services import debts, events, replays
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_customer, now_under_lock
from ledger.services.plan import Plan, apply


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
    terms = Terms(
        kind=Transaction.Kind.FREEZE,
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=amount,
        wallets=wallets,
        business_type=business_type,
        description=description,
        ttls={
            "unfreeze_after_seconds": unfreeze_after_seconds,
            "consume_after_seconds": consume_after_seconds,
        },
    )
    charged = charge(terms, actor=actor, now=now)
    if isinstance(charged, Transaction):
        return replays.freeze(charged)
    recorded, taken = charged
    return FreezeResult(
        transaction_id=transaction_id,
        frozen_amount=amount,
        freeze_details=details(taken.draws),
        unfreeze_after=recorded.unfreeze_after,
        consume_after=recorded.consume_after,
        is_idempotent_replay=False,
        on_credit_amount=taken.on_credit or None,
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
    terms = Terms(
        kind=Transaction.Kind.DEDUCT,
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=amount,
        wallets=wallets,
        business_type=business_type,
        description=description,
    )
    charged = charge(terms, actor=actor, now=now)
    if isinstance(charged, Transaction):
        return replays.deduct(charged)
    recorded, taken = charged
    return DeductResult(
        transaction_id=transaction_id,
        deducted_amount=amount,
        deduct_details=details(taken.draws),
        deducted_at=recorded.created_at,
        is_idempotent_replay=False,
        on_credit_amount=taken.on_credit or None,
    )


@dataclass(frozen=True)
class Terms:
    """What a freeze or deduct asks for. `ttls` are a freeze's auto-settlement delays."""

    kind: str
    project: Project
    customer_id: str
    transaction_id: str
    amount: Decimal
    wallets: Sequence[str] | None
    business_type: str
    description: str
    ttls: dict[str, int | None] | None = None

    @property
    def holds(self) -> bool:
        """A freeze holds what it draws; a deduct spends it."""
        return self.kind == Transaction.Kind.FREEZE

    def fingerprint(self) -> str:
        """What makes two charges with one id the same request (see `idempotency`)."""
        return fingerprint(
            customer_id=self.customer_id,
            amount=self.amount,
            wallets=eligible(self.wallets),
            business_type=self.business_type,
            **(self.ttls or {}),
        )


def charge(
    terms: Terms, *, actor: str, now: dt.datetime | None
) -> Transaction | tuple[Transaction, Taken]:
    """Make the charge, or find the one it repeats: returns the earlier transaction to replay,
    or the new one and what it took."""
    request = terms.fingerprint()
    with transaction.atomic():
        locked = lock_customer(terms.project, terms.customer_id, charge_id=terms.transaction_id)
        customer = locked.customer
        if locked.earlier is not None:
            check_repeat(locked.earlier, customer=customer, request=request, kind=terms.kind)
            return locked.earlier
        now = now_under_lock(now)
        accounts = CreditAccount.objects.open_of(customer.pk)
        taken = take(accounts, terms.amount, terms.wallets, now, lines=locked.lines)
        plan = Plan(actor=actor, now=now)
        entry = {
            "transaction_id": terms.transaction_id,
            "business_type": terms.business_type,
            "description": terms.description,
        }
        for part in taken.draws:
            if terms.holds:
                plan.change(part.account, frozen=part.amount)
                plan.entry(part.account, OperationType.FREEZE, part.amount, **entry)
            else:
                plan.change(part.account, used=part.amount)
                plan.entry(part.account, OperationType.CONSUME, part.amount, **entry)
        for part in taken.on_lines:
            if terms.holds:
                debts.hold(plan, part.line, part.amount, **entry)
            else:
                debts.owe(plan, part.line, part.amount, **entry)
        debts.announce(plan, project=terms.project, customer_id=terms.customer_id)
        events.low_balance(
            plan,
            project=terms.project,
            customer_pk=customer.pk,
            customer_id=terms.customer_id,
            accounts=accounts,
            lines=locked.lines,
            transaction_id=terms.transaction_id,
        )
        recorded = Transaction(
            project=terms.project,
            customer=customer,
            kind=terms.kind,
            transaction_id=terms.transaction_id,
            fingerprint=request,
            amount=terms.amount,
            wallets=eligible(terms.wallets),
            business_type=terms.business_type,
            description=terms.description,
            created_at=now,
            **state_of(terms, now),
        )
        # A concurrent first use of the id breaks the unique constraint here; see
        # `retry_on_identity_race`.
        plan.insert(recorded)
        apply(plan)
    return recorded, taken


def state_of(terms: Terms, now: dt.datetime) -> dict[str, Any]:
    """A new charge's state: a freeze is open, with its deadline; a deduct is settled."""
    if terms.holds:
        ttls = terms.ttls or {}
        return {
            "state": Transaction.State.FROZEN,
            "unfreeze_after": deadline(now, ttls.get("unfreeze_after_seconds")),
            "consume_after": deadline(now, ttls.get("consume_after_seconds")),
        }
    return {
        "state": Transaction.State.DEDUCTED,
        "consumed_amount": terms.amount,
        "settled_at": now,
        "settled_by": Transaction.SettledBy.CLIENT,
    }


def details(draws: list[Draw]) -> list[Detail]:
    return [Detail.of(part.account, part.amount) for part in draws]


def deadline(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)
