"""Migration 0013 carries a ledger at the schema before it (0011, filled with the previous
version's data) forward: the balances read as before, and its customers take schedules."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from customers.models import Project
from ledger import selectors, services
from ledger.api.shapes import render
from ledger.models import BusinessType, CreditAccount, Schedule
from ledger.selectors.consistency import check_ledger
from tests.ledger.test_migrations import READ_AT, load_previous_version, migrate

BEFORE = [
    ("customers", "0003_customer_has_credit_line"),
    ("ledger", "0011_refunds_voids_credit_lines"),
]


@pytest.fixture
def at_0011(transactional_db):
    load_previous_version()
    executor = migrate(BEFORE)
    assert "ledger_schedule" not in connection.introspection.table_names()
    return executor


def test_a_ledger_at_0011_migrates_and_reads_as_before(at_0011):
    acme = Project.objects.get(name="acme")
    before = render(selectors.customer_balance_as_of(acme, "c1", READ_AT))

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert render(selectors.customer_balance_as_of(acme, "c1", READ_AT)) == before
    assert Schedule.objects.count() == 0
    assert check_ledger().problems == []


def test_the_migrated_ledger_takes_schedules_and_rollovers(at_0011):
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    acme = Project.objects.get(name="acme")
    before = selectors.customer_balance_as_of(acme, "c1", READ_AT).balance.available

    made = services.create_schedule(
        project=acme,
        schedule_id="gold",
        customer_id="c1",
        amount=Decimal(10),
        period="day",
        rollover={"max_amount": Decimal(4)},
        actor="test",
        now=READ_AT,
    )
    services.grant_due(now=made.next_grant_at)

    after = selectors.customer_balance(acme, "c1", at=made.next_grant_at).balance.available
    rolled = CreditAccount.objects.filter(business_type=BusinessType.ROLLOVER)
    assert made.periods_granted == 1
    assert [a.total for a in rolled] == [4]
    assert after == before + 10 + 4
    assert check_ledger().problems == []
