"""`check_ledger` replays the ledger against every account's counters."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from customers.models import Project
from ledger import services
from ledger.models import CreditAccount, LedgerEntry
from ledger.selectors.consistency import check_ledger

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def busy_history(project: Project) -> None:
    """Every operation type, partial consumes, overage, expiry and a late return."""
    p = {"project": project, "actor": "test"}
    services.deposit(**p, customer_id="c1", amount=Decimal(50), now=T0)
    services.deposit(
        **p,
        customer_id="c1",
        amount=Decimal(60),
        wallet="promo",
        expires_at=T0 + dt.timedelta(days=1),
        now=T0,
    )
    services.freeze(**p, customer_id="c1", transaction_id="f1", amount=Decimal(40), now=T0)
    services.consume(**p, transaction_id="f1", actual_amount=Decimal("12.5"), now=T0)
    services.freeze(**p, customer_id="c1", transaction_id="f2", amount=Decimal(10), now=T0)
    services.consume(**p, transaction_id="f2", actual_amount=Decimal(25), now=T0)
    services.freeze(
        **p, customer_id="c1", transaction_id="f3", amount=Decimal(20), wallets=["promo"], now=T0
    )
    services.deduct(**p, customer_id="c1", transaction_id="d1", amount=Decimal(3), now=T0)
    later = T0 + dt.timedelta(days=2)
    services.expire_due(now=later)
    services.unfreeze(**p, transaction_id="f3", now=later)  # returned to an expired account


def test_a_consistent_ledger_passes_and_the_command_says_so(project, capsys):
    busy_history(project)

    report = check_ledger()
    call_command("check_ledger", "--project", project.name)

    assert report.ok, report.problems
    assert report.accounts == 2 and report.entries >= 10
    assert "consistent" in capsys.readouterr().out


def test_an_account_that_disagrees_with_its_entries_is_listed_and_the_command_exits_1(
    project, capsys
):
    busy_history(project)
    tampered = CreditAccount.objects.filter(wallet="default").get()
    CreditAccount.objects.filter(pk=tampered.pk).update(used=tampered.used + 1)

    with pytest.raises(SystemExit) as exit_info:
        call_command("check_ledger")

    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert f"account {tampered.pk} " in out
    assert "used is" in out
    assert "1 problem(s)" in out


def test_expiring_credits_twice_is_found(project):
    busy_history(project)
    promo = CreditAccount.objects.get(wallet="promo")
    LedgerEntry.objects.create(
        customer=promo.customer,
        account=promo,
        operation_type="EXPIRE",
        amount=Decimal(1),
        actor="test",
    )

    problems = check_ledger().problems

    assert len(problems) == 1 and "expired" in problems[0]


def test_an_unknown_project_is_a_command_error(project):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No project"):
        call_command("check_ledger", "--project", "nope")
