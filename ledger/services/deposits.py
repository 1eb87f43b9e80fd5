"""Deposits: credits into a customer's wallet, creating the customer on first deposit."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Customer, Project
from ledger.models import (
    BusinessType,
    CreditAccount,
    CreditLine,
    LedgerEntry,
    OperationType,
    Transaction,
)
from ledger.money import ZERO
from ledger.results import DepositResult
from ledger.services import debts, events, replays
from ledger.services.idempotency import check_repeat, fingerprint, retry_on_identity_race
from ledger.services.locks import lock_or_create_customer, now_under_lock
from ledger.services.plan import Plan, apply

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


@dataclass(frozen=True)
class Grant:
    """The terms of one deposit: what makes the new credit account, its GRANT entry and, with
    an idempotency key, the receipt a retry is checked against. A deposit and each row of a
    bulk grant build their rows here, so both follow one set of rules."""

    amount: Decimal
    wallet: str = "default"
    source: str = "default"
    starts_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    idempotency_key: str | None = None
    description: str = ""
    business_type: str = BusinessType.UNDEFINED
    # Whether the credits pay the customer's debt in their wallet first (a promotional grant
    # need not pay for paid usage).
    repays_debt: bool = True

    def fingerprint(self, customer_id: str) -> str:
        """What makes two deposits the same request (see `idempotency`). A deposit that pays
        no debt says so; the others keep the fingerprint they always had."""
        return fingerprint(
            **({} if self.repays_debt else {"repays_debt": False}),
            customer_id=customer_id,
            amount=self.amount,
            wallet=self.wallet,
            source=self.source,
            starts_at=self.starts_at,
            expires_at=self.expires_at,
            business_type=self.business_type,
        )

    def account(self, customer: Customer, now: dt.datetime) -> CreditAccount:
        return CreditAccount(
            customer=customer,
            wallet=self.wallet,
            source=self.source,
            total=self.amount,
            starts_at=self.starts_at,
            expires_at=self.expires_at,
            business_type=self.business_type,
            created_at=now,
        )

    def record(
        self,
        plan: Plan,
        project: Project,
        customer: Customer,
        *,
        request: str,
        description: str | None = None,
        lines: Sequence[CreditLine] = (),
    ) -> tuple[CreditAccount, LedgerEntry, Decimal]:
        """Plan the deposit: its new account, its GRANT entry (`description` overrides the
        deposit's own), what it pays of the debts on the customer's `lines`, the receipt of a
        keyed deposit and `credits.deposited`. Returns the account, the entry and what it
        paid back. (The caller announces the debts cleared, once for its whole plan.)"""
        account = plan.open_account(self.account(customer, plan.now))
        entry = plan.entry(
            account,
            OperationType.GRANT,
            self.amount,
            transaction_id=self.idempotency_key,
            business_type=self.business_type,
            description=self.description if description is None else description,
        )
        repaid = ZERO
        if self.repays_debt and lines:
            repaid = debts.repay(
                plan,
                account,
                lines,
                transaction_id=self.idempotency_key,
                description=entry.description,
            )
        if self.idempotency_key is not None:
            plan.insert(self.receipt(project, customer, request=request, now=plan.now))
        events.deposited(
            plan,
            project=project,
            account=account,
            customer_id=customer.external_id,
            idempotency_key=self.idempotency_key,
        )
        return account, entry, repaid

    def receipt(
        self, project: Project, customer: Customer, *, request: str, now: dt.datetime
    ) -> Transaction:
        """The transaction recording a keyed deposit, with its request's fingerprint."""
        return Transaction(
            project=project,
            customer=customer,
            kind=Transaction.Kind.DEPOSIT,
            transaction_id=self.idempotency_key,
            state=Transaction.State.DEPOSITED,
            fingerprint=request,
            amount=self.amount,
            business_type=self.business_type,
            description=self.description,
            created_at=now,
            settled_at=now,
        )


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
    repays_debt: bool = True,
    now: dt.datetime | None = None,
) -> DepositResult:
    """Add `amount` credits to `customer_id` as one new credit account and its GRANT entry.

    The customer is created on first deposit and its profile updated by later ones. Unless
    `repays_debt` is false, the credits first pay what the customer owes on its credit lines
    in their wallet (REPAY entries). With an `idempotency_key`, a repeat returns the original
    answer and changes nothing.
    """
    grant = Grant(
        amount=amount,
        wallet=wallet,
        source=source,
        starts_at=starts_at,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        description=description,
        business_type=business_type,
        repays_debt=repays_debt,
    )
    request = grant.fingerprint(customer_id)
    with transaction.atomic():
        locked = lock_or_create_customer(
            project,
            customer_id,
            deposit_key=idempotency_key,
            new={"metadata": {}, **profile.given(), "created_at": now or timezone.now()},
        )
        customer, earlier = locked.customer, locked.earlier
        if earlier is not None:
            check_repeat(earlier, customer=customer, request=request, kind=Transaction.Kind.DEPOSIT)
            return replays.deposit(earlier, customer_id)
        now = now_under_lock(now)
        plan = Plan(actor=actor, now=now)
        changes = profile.changes(customer)
        if changes:
            for name, value in changes.items():
                setattr(customer, name, value)
            plan.update(customer, list(changes))
        account, entry, repaid = grant.record(
            plan, project, customer, request=request, lines=locked.lines
        )
        debts.announce(plan, project=project, customer_id=customer_id)
        apply(plan)
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
        record_id=str(entry.pk),
        is_idempotent_replay=False,
        repaid_amount=repaid or None,
    )
