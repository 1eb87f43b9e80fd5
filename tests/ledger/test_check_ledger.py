"""`check_ledger` replays the ledger against every account's counters."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from customers.models import Project
from ledger import services
from ledger.models import CreditAccount, Entitlement, LedgerEntry, SlotHolding, SlotPool
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


def slot_and_entitlement_history(project: Project) -> None:
    p = {"project": project, "actor": "test", "customer_id": "c1"}
    services.grant_capacity(**p, wallet="gpu", amount=4)
    services.grant_capacity(**p, wallet="gpu", amount=2, source="promo")
    services.revoke_capacity(**p, wallet="gpu", amount=1)
    services.claim(**p, wallet="gpu", resource_id="a", amount=2)
    services.claim(**p, wallet="gpu", resource_id="b")
    services.release(**p, wallet="gpu", resource_id="a")
    services.set_entitlement(**p, feature_key="tier", value="pro")
    services.set_entitlement(**p, feature_key="tier", value="max")
    services.set_entitlement(**p, feature_key="gone", value="x")
    services.remove_entitlement(**p, feature_key="gone")


def test_slots_and_entitlements_replay_to_their_pools_and_values(project):
    slot_and_entitlement_history(project)

    assert check_ledger().problems == []
    assert check_ledger(project=project).problems == []


def test_a_pool_that_disagrees_with_its_events_is_reported(project):
    slot_and_entitlement_history(project)
    pool = SlotPool.objects.get(source="default")
    SlotPool.objects.filter(pk=pool.pk).update(capacity=9)

    assert check_ledger().problems == [
        f"slot pool {pool.pk}: capacity 9, in use 1; its events give capacity 3, in use 1"
    ]


def test_a_pool_whose_holdings_disagree_is_reported(project):
    slot_and_entitlement_history(project)
    pool = SlotPool.objects.get(source="default")
    SlotHolding.objects.filter(pool=pool).delete()

    assert check_ledger().problems == [f"slot pool {pool.pk}: in use 1, its holdings hold 0"]


def test_an_entitlement_that_disagrees_with_its_last_event_is_reported(project):
    slot_and_entitlement_history(project)
    tier = Entitlement.objects.get(feature_key="tier")
    customer = tier.customer_id
    Entitlement.objects.filter(pk=tier.pk).delete()
    Entitlement.objects.create(customer_id=customer, feature_key="gone", value="back")

    problems = check_ledger().problems

    assert problems == [
        f"entitlement {Entitlement.objects.get().pk} (gone): value 'back', its last event "
        "REMOVE None",
        f"customer {customer}: entitlement tier was last set to 'max' but is missing",
    ]
