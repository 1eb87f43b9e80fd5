"""The hot path's statements, written in SQL.

Freeze, deduct, consume and unfreeze are where the service spends its life. Compiling an ORM
query costs more CPU than the database spends answering these indexed, single-customer
statements, so they are written out here once, for PostgreSQL and SQLite alike. Reads return
model instances (`raw()` applies the fields' conversions: micro-credits become `Decimal`);
writes take and store amounts through the same field, so money stays exact.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection
from django.db.models import Model

from customers.models import Customer
from ledger.models import CreditAccount, Transaction
from ledger.money import from_micros

ACCOUNT_COLUMNS = (
    "id, customer_id, wallet, source, total, used, frozen, starts_at, expires_at, "
    "business_type, created_at, expiry_recorded_at"
)


def for_update() -> str:
    # SQLite has no row locks; its IMMEDIATE transactions already hold the write lock.
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def instant(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def lock_customer_row(project_id: int, external_id: str) -> Customer | None:
    rows = Customer.objects.raw(
        "SELECT id, project_id, external_id FROM customers_customer "
        "WHERE project_id = %s AND external_id = %s" + for_update(),
        [project_id, external_id],
    )
    return next(iter(rows), None)


def charge_by_identity(project_id: int, identity: str) -> Transaction | None:
    """The freeze or deduct named `identity` in the project (deposit keys live apart)."""
    rows = Transaction.objects.raw(
        "SELECT * FROM ledger_transaction "
        "WHERE project_id = %s AND identity = %s AND kind <> 'DEPOSIT'",
        [project_id, identity],
    )
    return next(iter(rows), None)


def open_accounts_in_order(
    customer_id: int, wallets: Sequence[str] | None, now: dt.datetime
) -> list[CreditAccount]:
    """Active accounts with available credits, soonest expiry first (never last), then oldest
    deposit, then lowest id: the consumption order. An account whose expiry is recorded is
    never spent again, whatever the clock says: its remainder has its EXPIRE entry."""
    at = instant(now)
    sql = (
        f"SELECT {ACCOUNT_COLUMNS} FROM ledger_creditaccount "
        # `used < total` is implied, but spelled out so the partial index on open accounts
        # (`account_open_in_order`) applies.
        "WHERE customer_id = %s AND used < total AND used + frozen < total "
        "AND expiry_recorded_at IS NULL "
        "AND (starts_at IS NULL OR starts_at <= %s) AND (expires_at IS NULL OR expires_at > %s)"
    )
    params: list = [customer_id, at, at]
    if wallets is not None:
        sql += f" AND wallet IN ({', '.join(['%s'] * len(wallets))})"
        params += list(wallets)
    sql += " ORDER BY expires_at IS NULL, expires_at, created_at, id"
    return list(CreditAccount.objects.raw(sql, params))


def save_counters(accounts: Iterable[CreditAccount], fields: Sequence[str]) -> None:
    """Write the given counters of every account in one UPDATE."""
    accounts = list(accounts)
    if not accounts:
        return
    field_of = {f: CreditAccount._meta.get_field(f) for f in fields}
    assignments, params = [], []
    for name, field in field_of.items():
        cases = f"CASE id {' '.join(['WHEN %s THEN %s'] * len(accounts))} END"
        if connection.vendor == "postgresql":
            # All-NULL branches would leave the CASE typed as text: say what the column is.
            cases = f"CAST({cases} AS {field.db_type(connection)})"
        assignments.append(f"{name} = {cases}")
        for account in accounts:
            params += [account.pk, field.get_db_prep_save(getattr(account, name), connection)]
    ids = ", ".join(["%s"] * len(accounts))
    params += [account.pk for account in accounts]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE ledger_creditaccount SET {', '.join(assignments)} WHERE id IN ({ids})",
            params,
        )


def lock_customer_of_charge_row(project_id: int, identity: str) -> Customer | None:
    """Lock the customer owning the freeze or deduct `identity`, found in the same statement."""
    rows = Customer.objects.raw(
        "SELECT id, project_id, external_id FROM customers_customer WHERE id = ("
        "SELECT customer_id FROM ledger_transaction "
        "WHERE project_id = %s AND identity = %s AND kind <> 'DEPOSIT')" + for_update(),
        [project_id, identity],
    )
    return next(iter(rows), None)


def holdings(customer_id: int, identity: str) -> list[tuple[CreditAccount, Decimal]]:
    """The accounts a freeze holds credits on and how many: its FREEZE entries, in order."""
    accounts = CreditAccount.objects.raw(
        f"SELECT {', '.join('a.' + c for c in ACCOUNT_COLUMNS.split(', '))}, e.amount AS held "
        "FROM ledger_ledgerentry e JOIN ledger_creditaccount a ON a.id = e.account_id "
        "WHERE e.customer_id = %s AND e.transaction_ref = %s AND e.operation_type = 'FREEZE' "
        "ORDER BY e.id",
        [customer_id, identity],
    )
    return [(account, from_micros(account.held)) for account in accounts]


def insert(objects: Sequence[Model]) -> None:
    """INSERT objects of one model in one statement, without reading their ids back.

    Values go through each field's own preparation (`get_db_prep_save`), exactly as a `save()`
    would send them; what is skipped is the query compilation.
    """
    if not objects:
        return
    meta = objects[0]._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objects
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
            f"VALUES {', '.join([row] * len(objects))}",
            params,
        )
