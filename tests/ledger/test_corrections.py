"""Expiring an account early: an operator's correction, recorded as the scheduler records an
expiry."""

from decimal import Decimal

import pytest

from credits_project.errors import AccountNotExpirable, AccountNotFound
from ledger.models import CreditAccount, LedgerEntry
from ledger.selectors.consistency import check_ledger
from ledger.services import expire_account, freeze, unfreeze
from tests.ledger.support import DAY, T0, grant


def test_expiring_an_account_records_its_unused_remainder_and_keeps_what_a_freeze_holds(project):
    account_id = int(grant(project, 10))
    freeze(
        project=project, customer_id="c1", transaction_id="f", amount=Decimal(4), actor="t", now=T0
    )

    expire_account(
        project=project, customer_id="c1", account_id=account_id, actor="staff:a", now=T0
    )

    account = CreditAccount.objects.get()
    assert (account.expires_at, account.expiry_recorded_at) == (T0, T0)
    expiry = LedgerEntry.objects.get(operation_type="EXPIRE")
    assert (expiry.amount, expiry.actor) == (6, "staff:a")
    # The held credits expire when the freeze gives them back.
    unfreeze(project=project, transaction_id="f", actor="t", now=T0 + DAY)
    assert LedgerEntry.objects.filter(operation_type="EXPIRE").count() == 2
    assert check_ledger().ok


def test_an_expired_a_not_started_or_another_customers_account_is_refused(project):
    expired = int(grant(project, 1, expires_at=T0 - DAY, now=T0 - 2 * DAY))
    later = int(grant(project, 1, starts_at=T0 + DAY))
    theirs = int(grant(project, 1, customer_id="c2"))

    for account_id, error in (
        (expired, AccountNotExpirable),
        (later, AccountNotExpirable),
        (theirs, AccountNotFound),
    ):
        with pytest.raises(error):
            expire_account(
                project=project, customer_id="c1", account_id=account_id, actor="s", now=T0
            )
    assert not LedgerEntry.objects.filter(operation_type="EXPIRE").exists()
