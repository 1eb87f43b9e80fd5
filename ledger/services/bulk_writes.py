"""How bulk grants write many rows at once, and keep the planner's statistics in step.

`rows.insert_statement` writes a multi-row VALUES list; a batch of a bulk grant inserts a
thousand rows per table, for which PostgreSQL takes one array per column instead, and the
tables it fills need fresh statistics sooner than autovacuum gives them.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db.models import Field, Model

from credits_project.sql import database, execute
from ledger.services import rows as writes


def insert_many(objects: Sequence[Model], suffix: str = "") -> writes.Statement:
    """One INSERT of many objects of one model, values prepared as `rows.insert_statement`
    prepares them, `suffix` (ON CONFLICT, RETURNING) appended.

    On PostgreSQL the values travel as one array per column (`INSERT ... SELECT FROM
    unnest(...)`), so the statement's text stays short and the same for any number of rows:
    the driver parses it once, where a VALUES list of thousands of placeholders would be
    parsed again on every run. SQLite takes the VALUES list.
    """
    if database().vendor != "postgresql":
        values = writes.insert_statement(objects)
        return writes.Statement(values.sql + suffix, values.params)
    model = type(objects[0])
    db = database()
    columns = [column(objects, field, db) for field in writes.inserted_fields(model)]
    return writes.Statement(unnest_insert_sql(model) + suffix, columns)


def column(objects: Sequence[Model], field: Field, db: Any) -> list[Any]:
    """The field's values of the objects as `save()` would send them, each distinct value
    prepared once: most columns of a batch repeat a few values (the wallet, the instant, the
    actor), and preparing a value through its field is what inserting costs most here."""
    done: dict[Any, Any] = {}
    values = []
    for obj in objects:
        value = getattr(obj, field.attname)
        try:
            values.append(done[value])
        except KeyError:
            values.append(done.setdefault(value, field.get_db_prep_save(value, db)))
        except TypeError:  # unhashable: a JSON object
            values.append(field.get_db_prep_save(value, db))
    return values


@cache
def unnest_insert_sql(model: type[Model]) -> str:
    db = database()
    quote = db.ops.quote_name
    fields = writes.inserted_fields(model)
    arrays = ", ".join(f"%s::{field.db_type(db)}[]" for field in fields)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT * FROM unnest({arrays})"
    )


class Statistics:
    """Keeps PostgreSQL's planner statistics of the tables a bulk grant fills in step with it.

    A bulk load outgrows the statistics faster than autovacuum refreshes them: a table that
    held nothing a minute ago still looks empty, and the planner then finds a customer or a
    key by scanning every row of the project instead of through the unique index, for this
    command's lookups and the API's alike. So the tables are analyzed each time the rows
    granted double (from `ANALYZE_AFTER` on), and once at the end.
    """

    ANALYZE_AFTER = 1000
    TABLES = (
        "customers_customer",
        "ledger_transaction",
        "ledger_creditaccount",
        "ledger_ledgerentry",
    )

    def __init__(self) -> None:
        self.granted = 0
        self.next_refresh = self.ANALYZE_AFTER
        self.stale = False

    def written(self, granted: int) -> None:
        self.granted += granted
        self.stale |= granted > 0
        if self.granted >= self.next_refresh:
            self.refresh()
            self.next_refresh = 2 * self.granted

    def refresh(self) -> None:
        if self.stale and database().vendor == "postgresql":
            execute(f"ANALYZE {', '.join(self.TABLES)}")
        self.stale = False
