"""Plain SQL for the statements every request runs.

Compiling an ORM query costs more CPU than the database spends answering these indexed,
single-customer statements, so the hot path writes them out once, for PostgreSQL and SQLite
alike. Values still pass through the model fields in both directions (`Columns.load`,
`prepared`): micro-credits become `Decimal`, SQLite's datetime text becomes `datetime`, and
money stays exact.

Each function resolves the connection once (`database()`): `django.db.connection` is a proxy
that looks the connection up on every attribute, which the field conversions ask for often.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from credits_project.replicas import alias_for_reads

M = TypeVar("M", bound=Model)


class Columns:
    """Every column of a model (but `deferred` ones), from its `_meta`: their SQL list, and
    rows of them loaded as model instances. Reading a field loaded never costs a query; a
    deferred one is fetched on first access, so defer only what the reader never reads."""

    def __init__(self, model: type[M], *, deferred: Sequence[str] = ()):
        self.model = model
        # In the model's own field order, as `Model.from_db` takes values.
        self.fields: list[Field] = [
            field for field in model._meta.concrete_fields if field.name not in deferred
        ]
        self.attnames = [field.attname for field in self.fields]
        self.width = len(self.fields)

    def sql(self, alias: str | None = None) -> str:
        return _column_list(tuple(field.column for field in self.fields), alias)

    def load(self, rows: Iterable[Sequence[Any]]) -> list[M]:
        return [self.load_row(row) for row in rows]

    def load_row(self, row: Sequence[Any]) -> M:
        """An instance from the first `width` values of `row` (later ones are the caller's)."""
        db = database()
        values = list(row[: self.width])
        for index, steps in _converters_of(self.model, tuple(self.attnames), db.vendor):
            value = values[index]
            if value is not None:
                for convert, expression in steps:
                    value = convert(value, expression, db)
                values[index] = value
        return self.model.from_db(db.alias, self.attnames, values)


@cache
def _converters_of(model: type[Model], attnames: tuple[str, ...], vendor: str) -> list:
    """The backend's and the fields' converters for each column, as the ORM would apply them."""
    db = database()
    found = []
    for index, attname in enumerate(attnames):
        field = next(f for f in model._meta.concrete_fields if f.attname == attname)
        expression = field.get_col(model._meta.db_table)
        steps = [*db.ops.get_db_converters(expression), *expression.get_db_converters(db)]
        if steps:
            found.append((index, [(step, expression) for step in steps]))
    return found


@cache
def _column_list(columns: tuple[str, ...], alias: str | None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in columns)


def database() -> BaseDatabaseWrapper:
    """This thread's connection for the statement at hand: the primary's, or a standby's in
    a `credits_project.replicas.reads_from_standby()` block outside any transaction."""
    return connections[alias_for_reads()]


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with database().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any] = ()) -> None:
    with database().cursor() as cursor:
        cursor.execute(sql, params)


def for_update(of: str | None = None) -> str:
    """Row locks on PostgreSQL; SQLite has none, and its IMMEDIATE transactions already hold
    the database's write lock."""
    if not database().features.has_select_for_update:
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def skip_locked(of: str | None = None) -> str:
    """Row locks (of the tables aliased `of`, or all) that pass over rows another transaction
    holds, on PostgreSQL; SQLite has none, and its IMMEDIATE transactions already hold the
    database's write lock."""
    if not database().features.has_select_for_update_skip_locked:
        return ""
    return f" FOR UPDATE OF {of} SKIP LOCKED" if of else " FOR UPDATE SKIP LOCKED"


def instant(value: dt.datetime) -> Any:
    """A datetime as this database takes it in a parameter."""
    return database().ops.adapt_datetimefield_value(value)


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def prepared(objects: Iterable[Model], fields: Sequence[Field]) -> list[Any]:
    """The fields' values of each object, one after the other, as `save()` would send them."""
    db = database()
    return [
        field.get_db_prep_save(field.pre_save(obj, add=obj._state.adding), db)
        for obj in objects
        for field in fields
    ]


def rows_by_key(
    table: str,
    columns: str,
    key: str,
    values: Sequence[Any],
    where: str = "TRUE",
    where_params: Sequence[Any] = (),
    *,
    lock: bool = False,
) -> tuple[str, list[Any]]:
    """A SELECT of `columns` (aliased `t.`) of the rows of `table` whose unique `key` is one of
    `values` and that meet `where`; with `lock`, each row locked, in the order of `values`.

    On PostgreSQL each value is looked up in the key's index, one after the other (a nested
    loop over the array, which `LIMIT 1` keeps from being flattened): a long `IN` list or
    `= ANY` of parameters would get, once the statement is prepared, a generic plan that
    filters the whole range of `where` with every value. SQLite takes an `IN` list.
    """
    if database().vendor == "postgresql":
        return (
            f"SELECT {columns} FROM unnest(%s::text[]) AS k(value) CROSS JOIN LATERAL ("
            f"SELECT * FROM {table} t WHERE t.{key} = k.value AND {where} LIMIT 1"
            f"{' FOR UPDATE' if lock else ''}) t",
            [list(values), *where_params],
        )
    listed = placeholders(len(values))
    return (
        f"SELECT {columns} FROM {table} t WHERE {where} AND t.{key} IN ({listed})",
        [*where_params, *values],
    )
