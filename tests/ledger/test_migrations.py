"""Migrations carry existing ledgers forward: a database filled by the previous version (ledger
schema 3, with stored responses; see `migration_data/fill_previous_version.py`) is migrated to
the current schema and must answer exactly as that version did."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management.color import no_style
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import DateTimeField, JSONField

from credits_project.errors import NotRefundable
from credits_project.json import dumps, loads
from customers.models import Customer, Project
from ledger import selectors, services
from ledger.api.shapes import render
from ledger.models import CreditAccount, LedgerCounter, LedgerEntry, SpentCredits, Transaction
from ledger.selectors.consistency import check_ledger
from ledger.services import replays

DUMP = json.loads((Path(__file__).parent / "migration_data" / "previous_version.json").read_text())
PREVIOUS = [("customers", "0001_initial"), ("ledger", "0003_ledger_triggers")]
# Parents first. The trigger counts the entries as they are loaded: the dumped counters are
# what it must arrive at.
LOADED = [
    "customers_project",
    "customers_customer",
    "ledger_creditaccount",
    "ledger_transaction",
    "ledger_ledgerentry",
]
READ_AT = dt.datetime.fromisoformat(DUMP["read_at"])


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def load_previous_version() -> None:
    """Migrate back to the previous schema and insert the dumped rows as they were stored."""
    executor = migrate(PREVIOUS)
    apps = executor.loader.project_state(PREVIOUS).apps
    models = {m._meta.db_table: m for m in apps.get_models()}
    with connection.cursor() as cursor:
        for table in LOADED:
            dumped = DUMP["tables"][table]
            fields = {f.column: f for f in models[table]._meta.concrete_fields}
            for row in dumped["rows"]:
                values = [
                    stored(fields[column], value)
                    for column, value in zip(dumped["columns"], row, strict=True)
                ]
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(dumped['columns'])}) "
                    f"VALUES ({', '.join(['%s'] * len(values))})",
                    values,
                )


def stored(field, value):
    if value is None:
        return None
    if isinstance(field, DateTimeField):
        return connection.ops.adapt_datetimefield_value(dt.datetime.fromisoformat(value))
    if isinstance(field, JSONField):  # dumped as the column's JSON text
        return field.get_db_prep_save(loads(value), connection)
    return value  # amounts are dumped as the micro-credits the column holds


@pytest.fixture
def migrated(transactional_db):
    load_previous_version()
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        models = [Project, Customer, CreditAccount, Transaction, LedgerEntry, SpentCredits]
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)


def rows(table: str) -> list[dict]:
    dumped = DUMP["tables"][table]
    return [dict(zip(dumped["columns"], row, strict=True)) for row in dumped["rows"]]


def test_the_migrated_ledger_is_consistent_and_its_spent_sums_are_backfilled(migrated):
    report = check_ledger()

    assert report.problems == []
    assert (report.accounts, report.entries) == (
        len(DUMP["tables"]["ledger_creditaccount"]["rows"]),
        len(DUMP["tables"]["ledger_ledgerentry"]["rows"]),
    )
    c2 = Customer.objects.get(project__name="acme", external_id="c2")
    # c2 used up five accounts of 10 whose expiry the scheduler has not recorded yet (three of
    # them are past it at the dump's reading time: the balance read subtracts those).
    assert SpentCredits.objects.get(customer=c2, wallet="default").total == Decimal(50)


def test_the_ledger_counters_survive_the_migration(migrated):
    counted = {
        (row["customer_id"], row["operation_type"]): row["entries"]
        for row in rows("ledger_ledgercounter")
    }

    assert {
        (c.customer_id, c.operation_type): c.entries for c in LedgerCounter.objects.all()
    } == counted


def test_balances_and_ledger_pages_read_as_the_previous_version_answered(migrated):
    for name, answered in DUMP["balances"].items():
        project_name, customer_id = name.split(":", 1)
        project = Project.objects.get(name=project_name)
        balance = selectors.customer_balance(project, customer_id, at=READ_AT)
        page = selectors.ledger_page(
            selectors.LedgerQuery(
                customer=Customer.objects.get(project=project, external_id=customer_id),
                limit=100,
            ),
            at=READ_AT,
        )

        assert dumps(render(balance)) == answered, name
        assert dumps(render(page)) == DUMP["ledgers"][name], name


REPLAYS = {
    ("DEPOSIT", "DEPOSITED"): "response",
    ("FREEZE", "FROZEN"): "response",
    ("DEDUCT", "DEDUCTED"): "response",
    ("FREEZE", "CONSUMED"): "settle_response",
    ("FREEZE", "UNFROZEN"): "settle_response",
}


def test_every_retry_replays_the_answer_the_previous_version_stored(migrated):
    checked = 0
    for row in rows("ledger_transaction"):
        charge = Transaction.objects.select_related("customer").get(pk=row["id"])
        if charge.kind == "DEPOSIT":
            rebuilt = replays.deposit(charge, charge.customer.external_id)
        elif charge.state == "FROZEN":
            rebuilt = replays.freeze(charge)
        elif charge.state == "DEDUCTED":
            rebuilt = replays.deduct(charge)
        elif charge.state == "CONSUMED":
            rebuilt = replays.consume(charge)
        else:
            rebuilt = replays.unfreeze(charge)
        stored_answer = loads(row[REPLAYS[charge.kind, charge.state]])

        assert loads(dumps(render(rebuilt))) == {**stored_answer, "is_idempotent_replay": True}
        checked += 1
    assert checked == len(DUMP["tables"]["ledger_transaction"]["rows"]) == 14


def test_the_migrated_database_takes_new_operations(migrated):
    acme = Project.objects.get(name="acme")

    deducted = services.deduct(
        project=acme, customer_id="c2", transaction_id="after", amount=Decimal(5), actor="test"
    )
    again = services.deduct(
        project=acme, customer_id="c2", transaction_id="after", amount=Decimal(5), actor="test"
    )
    replayed = services.deposit(
        project=acme,
        customer_id="c1",
        amount=Decimal(100),
        actor="test",
        idempotency_key="order-1",
        now=READ_AT,
    )

    assert deducted.deducted_amount == 5
    assert again.is_idempotent_replay
    assert (replayed.is_idempotent_replay, replayed.account_id) == (True, "1")
    assert check_ledger().problems == []


def test_the_migrated_ledger_takes_refunds_voids_and_credit_limits(migrated):
    acme = Project.objects.get(name="acme")
    assert not Customer.objects.filter(has_credit_line=True).exists()
    assert set(Transaction.objects.values_list("refunded_amount", flat=True)) == {0}
    assert not CreditAccount.objects.filter(voided_at__isnull=False).exists()

    # Charges made by the previous version refund onto the accounts they drew.
    partial = services.refund(
        project=acme, transaction_id="f-over", refund_id="r-over", actor="test", now=READ_AT
    )
    whole = services.refund(
        project=acme, transaction_id="d1", refund_id="r-d1", actor="test", now=READ_AT
    )
    with pytest.raises(NotRefundable):
        services.refund(
            project=acme, transaction_id="f-back", refund_id="r-back", actor="test", now=READ_AT
        )
    services.set_credit_limit(
        project=acme, customer_id="c1", limit=Decimal(10), actor="test", now=READ_AT
    )
    account = CreditAccount.objects.filter(customer__external_id="c1").order_by("id").first()
    services.void(
        project=acme,
        customer_id="c1",
        account_id=account.pk,
        void_id="v-old",
        mode="clawback",
        actor="test",
        now=READ_AT,
    )

    assert (partial.refunded_amount, whole.refunded_amount) == (14, Decimal("25.5"))
    assert sum(d.amount for d in whole.refund_details) == Decimal("25.5")
    assert check_ledger().problems == []


BEFORE_SLOTS = ("ledger", "0011_refunds_voids_credit_lines")


def test_a_database_filled_at_0011_migrates_and_takes_slots_and_entitlements(transactional_db):
    load_previous_version()
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    migrate([BEFORE_SLOTS if app == "ledger" else (app, name) for app, name in leaves])
    with connection.cursor() as cursor:
        models = [Project, Customer, CreditAccount, Transaction, LedgerEntry, SpentCredits]
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    acme = Project.objects.get(name="acme")
    # Data written at 0011 by the version before slots: a keyed deposit and a refund.
    services.deposit(
        project=acme, customer_id="c1", amount=Decimal(7), idempotency_key="pre", actor="test"
    )
    services.refund(project=acme, transaction_id="d1", refund_id="r-pre", actor="test")
    balance_before = render(selectors.customer_balance(acme, "c1"))

    migrate(leaves)

    assert render(selectors.customer_balance(acme, "c1")) == balance_before
    pool = services.grant_capacity(
        project=acme, customer_id="c1", wallet="gpu", amount=2, actor="test"
    )
    held = services.claim(
        project=acme, customer_id="c1", wallet="gpu", resource_id="job", actor="test"
    )
    set_ = services.set_entitlement(
        project=acme, customer_id="c1", feature_key="tier", value="pro", actor="test"
    )
    replayed = services.deposit(
        project=acme, customer_id="c1", amount=Decimal(7), idempotency_key="pre", actor="test"
    )
    assert (pool.capacity, held.in_use, set_.is_created) == (2, 1, True)
    assert replayed.is_idempotent_replay is True
    assert selectors.entitlement_of(acme, "c1", "tier").entitlement.value == "pro"
    assert check_ledger().problems == []
