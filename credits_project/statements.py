"""Write statements built without the ORM's query compilation: INSERTs of many rows, UPDATEs of
some fields of one row, and several independent writes sent as one statement.

Values go through each field's own preparation, exactly as `save()` would send them, so money
stays exact and SQLite's datetimes are written as Django writes them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db.models import Field, Model

from credits_project.sql import database, execute, fetch, placeholders, prepared

# Rows per statement, and bound parameters per statement at most: within SQLite's limit
# (32,766) and PostgreSQL's (65,535), however many rows one write has.
ROWS_PER_STATEMENT = 500
MAX_PARAMETERS = 30_000
# From this many rows on, PostgreSQL gets one array per column rather than a VALUES list.
ARRAY_INSERT_ROWS = 50


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[Any]


def chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@cache
def inserted_fields(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def insert_statement(objects: Sequence[Model], suffix: str = "") -> Statement | None:
    """One INSERT of objects of one model, `suffix` (ON CONFLICT, RETURNING) appended; None
    when there are none.

    A few rows go as a VALUES list. Many go, on PostgreSQL, as one array per column
    (`INSERT ... SELECT FROM unnest(...)`), so the statement's text stays short and the same
    for any number of rows: the driver parses it once, where a VALUES list of thousands of
    placeholders would be parsed again on every run.
    """
    if not objects:
        return None
    model = type(objects[0])
    db = database()
    if db.vendor == "postgresql" and len(objects) >= ARRAY_INSERT_ROWS:
        columns = [column(objects, field, db) for field in inserted_fields(model)]
        return Statement(array_insert_sql(model) + suffix, columns)
    return Statement(
        values_insert_sql(model, len(objects)) + suffix, prepared(objects, inserted_fields(model))
    )


def column(objects: Sequence[Model], field: Field, db: Any) -> list[Any]:
    """The field's values of the objects as `save()` would send them, each distinct value
    prepared once: most columns of a batch repeat a few values (the wallet, the instant, the
    actor), and preparing a value through its field is what inserting costs most."""
    done: dict[Any, Any] = {}
    values = []
    for obj in objects:
        value = field.pre_save(obj, add=obj._state.adding)
        try:
            values.append(done[value])
        except KeyError:
            values.append(done.setdefault(value, field.get_db_prep_save(value, db)))
        except TypeError:  # unhashable: a JSON object
            values.append(field.get_db_prep_save(value, db))
    return values


@cache
def values_insert_sql(model: type[Model], count: int) -> str:
    quote = database().ops.quote_name
    fields = inserted_fields(model)
    row = f"({placeholders(len(fields))})"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * count)}"
    )


@cache
def array_insert_sql(model: type[Model]) -> str:
    db = database()
    quote = db.ops.quote_name
    fields = inserted_fields(model)
    arrays = ", ".join(f"%s::{field.db_type(db)}[]" for field in fields)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT * FROM unnest({arrays})"
    )


def update_statement(obj: Model, fields: Sequence[str]) -> Statement:
    """An UPDATE of these fields of `obj`'s row."""
    meta = obj._meta
    columns = [meta.get_field(name) for name in fields]
    quote = database().ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    return Statement(
        f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {meta.pk.column} = %s",
        [*prepared([obj], columns), obj.pk],
    )


def update_statements(objects: Sequence[Model], fields: Sequence[str]) -> list[Statement]:
    """UPDATEs of these fields of each object's row (objects of one model): many rows go, on
    PostgreSQL, as one UPDATE from an array per column (as `insert_statement` does), a few
    rows, and any on SQLite, as one UPDATE each."""
    if not objects:
        return []
    db = database()
    if db.vendor != "postgresql" or len(objects) < ARRAY_INSERT_ROWS:
        return [update_statement(obj, fields) for obj in objects]
    meta = objects[0]._meta
    key, *columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = db.ops.quote_name
    arrays = ", ".join(f"%s::{f.db_type(db)}[]" for f in [key, *columns])
    names = ", ".join(quote(f.column) for f in [key, *columns])
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    pk = quote(key.column)
    return [
        Statement(
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "
            f"FROM unnest({arrays}) AS v({names}) WHERE t.{pk} = v.{pk}",
            [column(objects, f, db) for f in [key, *columns]],
        )
    ]


def run_together(statements: Sequence[Statement]) -> list[tuple]:
    """Run independent writes: as one statement on PostgreSQL (unless together they would
    bind too many parameters), each a data-modifying `WITH` part, one by one elsewhere. They
    must touch different rows, none reading what another writes. Returns the rows the last
    one returns (when it ends in RETURNING); none are given, nothing runs."""
    if not statements:
        return []
    *parts, last = statements
    db = database()
    fits = sum(len(statement.params) for statement in statements) <= MAX_PARAMETERS
    if db.vendor == "postgresql" and parts and fits:
        together = ", ".join(f"w{n} AS ({part.sql})" for n, part in enumerate(parts))
        last = Statement(
            f"WITH {together} {last.sql}", [p for statement in statements for p in statement.params]
        )
        parts = []
    for statement in parts:
        execute(statement.sql, statement.params)
    with db.cursor() as cursor:
        cursor.execute(last.sql, last.params)
        return cursor.fetchall() if cursor.description else []


def insert_returning_ids(objects: Sequence[Model]) -> None:
    """INSERT objects of one model now, a statement per `ROWS_PER_STATEMENT`; each gets its
    primary key."""
    for part in chunks(objects):
        statement = insert_statement(part, f" RETURNING {part[0]._meta.pk.column}")
        for obj, (pk,) in zip(part, fetch(statement.sql, statement.params), strict=True):
            obj.pk = pk
            obj._state.adding = False


def update_now(obj: Model, fields: Sequence[str]) -> None:
    """UPDATE these fields of one row now."""
    statement = update_statement(obj, fields)
    execute(statement.sql, statement.params)
