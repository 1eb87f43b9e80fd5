"""Fills a database through the services of the version before `ledger` migration 0004 and
dumps it, with what that version answered, to `previous_version.json`.

Run once, at commit dbf95ba (the last version with stored responses), on PostgreSQL:

    scripts/with-postgres.sh .venv/bin/python tests/ledger/migration_data/fill_previous_version.py

`tests/ledger/test_migrations.py` loads the dump into a database at the old schema, migrates it
and checks that every ledger, balance and replay carried forward.
"""

import datetime as dt
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from ledger.ledger_pages import LedgerQuery, ledger_page  # noqa: E402

from credits_project.json import dumps  # noqa: E402
from customers.models import Customer, Project  # noqa: E402
from ledger import selectors, services  # noqa: E402

T = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
TABLES = [
    "customers_project",
    "customers_customer",
    "ledger_creditaccount",
    "ledger_transaction",
    "ledger_ledgerentry",
    "ledger_ledgercounter",
]
READ_AT = T + 3 * DAY


def fill() -> None:
    acme = Project.objects.create(name="acme")
    other = Project.objects.create(name="other")
    actor = "api_key:fill"

    def deposit(project, customer_id, amount, at, **fields):
        return services.deposit(
            project=project,
            customer_id=customer_id,
            amount=Decimal(amount),
            actor=actor,
            now=at,
            **fields,
        )

    # c1: wallets, windows, every kind of charge and settlement.
    deposit(
        acme,
        "c1",
        100,
        T - 5 * DAY,
        idempotency_key="order-1",
        profile=services.Profile(name="Ann"),
    )
    deposit(acme, "c1", "20.5", T - 4 * DAY, wallet="promo", expires_at=T + DAY)
    deposit(acme, "c1", 30, T - 4 * DAY, wallet="promo", source="campaign", expires_at=T + 2 * DAY)
    deposit(acme, "c1", 40, T - 3 * DAY, starts_at=T + 5 * DAY, idempotency_key="later")
    deposit(
        acme,
        "c1",
        15,
        T - 3 * DAY,
        expires_at=T + HOUR,
        profile=services.Profile(metadata={"plan": "pro"}),
    )
    services.deduct(
        project=acme,
        customer_id="c1",
        transaction_id="d1",
        amount=Decimal("25.5"),
        actor=actor,
        now=T - 2 * DAY,
        business_type="TASK",
        description="render",
    )
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-partial",
        amount=Decimal(30),
        actor=actor,
        now=T - DAY,
    )
    services.consume(
        project=acme,
        transaction_id="f-partial",
        actual_amount=Decimal("12.25"),
        actor=actor,
        now=T - DAY + HOUR,
    )
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-over",
        amount=Decimal(10),
        actor=actor,
        wallets=["promo"],
        now=T - DAY,
    )
    services.consume(
        project=acme,
        transaction_id="f-over",
        actual_amount=Decimal(14),
        actor=actor,
        now=T - DAY + HOUR,
    )
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-back",
        amount=Decimal(5),
        actor=actor,
        now=T - DAY,
    )
    services.unfreeze(project=acme, transaction_id="f-back", actor=actor, now=T - DAY + HOUR)
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-zero",
        amount=Decimal(3),
        actor=actor,
        now=T - DAY,
    )
    services.consume(
        project=acme,
        transaction_id="f-zero",
        actual_amount=Decimal(0),
        actor=actor,
        now=T - DAY + HOUR,
    )
    # Held across an expiry, then returned: the return expires at once.
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-expiry",
        amount=Decimal(60),
        actor=actor,
        now=T,
    )
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-auto",
        amount=Decimal(2),
        actor=actor,
        unfreeze_after_seconds=60,
        now=T,
    )
    services.freeze(
        project=acme,
        customer_id="c1",
        transaction_id="f-open",
        amount=Decimal(1),
        actor=actor,
        consume_after_seconds=7 * 86400,
        now=T,
    )
    services.settle_due(now=T + 2 * HOUR)
    services.expire_due(now=T + 2 * HOUR)
    services.unfreeze(project=acme, transaction_id="f-expiry", actor=actor, now=T + 2 * DAY)
    services.expire_due(now=T + 2 * DAY + HOUR)

    # c2: accounts used up, some expiring later, one already past its expiry.
    for n in range(5):
        deposit(acme, "c2", 10, T - 3 * DAY, expires_at=T + (n + 1) * DAY)
    deposit(acme, "c2", 10, T - 3 * DAY)
    services.deduct(
        project=acme,
        customer_id="c2",
        transaction_id="spend",
        amount=Decimal(55),
        actor=actor,
        now=T - DAY,
    )
    # An id with a slash, and the same ids in another project.
    deposit(acme, "team/7", 5, T - DAY, idempotency_key="k/1")
    deposit(other, "c1", 9, T - DAY, idempotency_key="order-1")
    services.deduct(
        project=other, customer_id="c1", transaction_id="d1", amount=Decimal(4), actor=actor, now=T
    )


def dump() -> dict:
    tables = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")
            columns = [column.name for column in cursor.description]
            rows = [[plain(value) for value in row] for row in cursor.fetchall()]
            tables[table] = {"columns": columns, "rows": rows}
    # What this version answered, as the exact JSON it rendered.
    balances = {}
    ledgers = {}
    for customer in Customer.objects.select_related("project").order_by("id"):
        name = f"{customer.project.name}:{customer.external_id}"
        balances[name] = dumps(selectors.customer_balance(customer, at=READ_AT))
        page = ledger_page(LedgerQuery(customer=customer, limit=100), at=READ_AT)
        page["next_cursor"] = None
        ledgers[name] = dumps(page)
    return {
        "commit": "dbf95ba",
        "read_at": READ_AT.isoformat(),
        "tables": tables,
        "balances": balances,
        "ledgers": ledgers,
    }


def plain(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    if Project.objects.exists():
        sys.exit("run on an empty database")
    fill()
    out = Path(__file__).with_name("previous_version.json")
    out.write_text(json.dumps(dump(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
