"""Corrections only an operator makes: expiring an account before its time."""

import datetime as dt

from django.db import transaction

from credits_project.errors import AccountNotExpirable, AccountNotFound
from credits_project.statements import update_now
from customers.models import Project
from ledger.models import CreditAccount
from ledger.services.locks import lock_customer, now_under_lock
from ledger.services.scheduled import expire_accounts_of


def expire_account(
    *,
    project: Project,
    customer_id: str,
    account_id: int,
    actor: str,
    now: dt.datetime | None = None,
) -> int:
    """Expire one of the customer's accounts now: its expiry moves to `now` and is recorded
    as the scheduler records it, with one EXPIRE entry for its unused remainder (credits it
    holds for an open freeze expire when that freeze returns them). Returns the account's id.

    Raises `AccountNotFound` for another customer's account and `AccountNotExpirable` when it
    has expired already or has not started (an expiry must come after the start).
    """
    with transaction.atomic():
        customer = lock_customer(project, customer_id, charge_id="").customer
        now = now_under_lock(now)
        account = CreditAccount.objects.of_customer(account_id, customer.pk)
        if account is None:
            raise AccountNotFound({"account_id": str(account_id)})
        if (
            account.expiry_recorded_at is not None
            or (account.expires_at is not None and account.expires_at <= now)
            or (account.starts_at is not None and account.starts_at >= now)
        ):
            raise AccountNotExpirable({"account_id": str(account_id)})
        account.expires_at = now
        # Its own statement: the expiry below updates the same row's counters.
        update_now(account, ["expires_at"])
        expire_accounts_of(customer.pk, now, actor=actor)
        return account.pk
