"""The one way the services write: a `Plan` of counter changes, ledger entries and other rows,
applied in one statement on PostgreSQL whatever the number of accounts it touches.

A service decides what to write (a pure step that builds the plan from what it read) and then
hands the plan to `apply`, which writes every account's counters in one UPDATE, keeps the
customer's `SpentCredits` in step, appends the entries in one multi-row INSERT and writes the
plan's other rows (the transaction). On PostgreSQL those statements travel as one, each a
data-modifying `WITH` part: they touch different tables, and none reads what another writes.
SQLite, which runs in the process and has no data-modifying `WITH`, runs them one by one.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from django.db.models import Model

from credits_project.sql import database, execute, fetch, placeholders, prepared
from ledger.models import CreditAccount, LedgerEntry, SpentCredits
from ledger.money import ZERO


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[Any]


@dataclass
class AccountChange:
    account: CreditAccount
    used: Decimal = ZERO  # added to `used`
    frozen: Decimal = ZERO  # added to `frozen`; negative when credits are released
    records_expiry: bool = False  # the account's expiry is recorded now


@dataclass
class Plan:
    """What one operation writes, by one actor at one instant."""

    actor: str
    now: dt.datetime
    changes: dict[int, AccountChange] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    rows: list[Statement] = field(default_factory=list)  # written with the plan, last

    def change(self, account: CreditAccount, **deltas: Decimal | bool) -> AccountChange:
        """The account's change in this plan, with `deltas` added to it."""
        change = self.changes.setdefault(account.pk, AccountChange(account))
        change.used += deltas.get("used", ZERO)
        change.frozen += deltas.get("frozen", ZERO)
        change.records_expiry |= bool(deltas.get("records_expiry", False))
        return change

    def entry(
        self,
        account: CreditAccount,
        operation_type: str,
        amount: Decimal,
        *,
        transaction_id: str | None,
        business_type: str,
        description: str,
    ) -> None:
        self.entries.append(
            LedgerEntry(
                customer_id=account.customer_id,
                account=account,
                operation_type=operation_type,
                amount=amount,
                transaction_id=transaction_id,
                business_type=business_type,
                description=description,
                actor=self.actor,
                created_at=self.now,
            )
        )

    def insert(self, obj: Model) -> None:
        """Insert `obj` with the plan (its primary key is not read back)."""
        self.rows.append(insert_statement([obj]))

    def update(self, obj: Model, fields: Sequence[str]) -> None:
        """Update these fields of `obj`'s row with the plan."""
        self.rows.append(update_statement(obj, fields))


def apply(plan: Plan) -> None:
    """Write the plan: counters (and the spent sums they move), entries, its other rows. An
    empty plan writes nothing."""
    changes = list(plan.changes.values())
    spent: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for change in changes:
        account = change.account
        was_spent = is_spent(account)
        account.used += change.used
        account.frozen += change.frozen
        if change.records_expiry:
            account.expiry_recorded_at = plan.now
        if is_spent(account) != was_spent:
            spent[account.customer_id, account.wallet] += (
                account.total if not was_spent else -account.total
            )
    accounts = [change.account for change in changes]
    statements = [
        *(counters_statement(part) for part in chunks(accounts)),
        spent_statement({key: amount for key, amount in spent.items() if amount}),
        *(insert_statement(part) for part in chunks(plan.entries)),
        *plan.rows,
    ]
    run_together([s for s in statements if s is not None])


# Rows per statement, and bound parameters per statement at most: within SQLite's limit
# (32,766) and PostgreSQL's (65,535), however many accounts one charge draws on.
ROWS_PER_STATEMENT = 500
MAX_PARAMETERS = 30_000


def chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def is_spent(account: CreditAccount) -> bool:
    """Used up to the last credit, and still counting in balances (see `SpentCredits`)."""
    return account.used == account.total and account.expiry_recorded_at is None


def run_together(statements: Sequence[Statement]) -> list[tuple]:
    """Run independent writes: as one statement on PostgreSQL (unless together they would
    bind too many parameters), one by one elsewhere. Returns the rows the last one returns
    (when it ends in RETURNING); none are given, nothing runs."""
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


COUNTERS = ("used", "frozen", "expiry_recorded_at")


def counters_statement(accounts: Sequence[CreditAccount]) -> Statement | None:
    """One UPDATE of the counters of every account."""
    if not accounts:
        return None
    params = []
    for name in COUNTERS:
        column = CreditAccount._meta.get_field(name)
        for account, value in zip(accounts, prepared(accounts, [column]), strict=True):
            params += [account.pk, value]
    params += [account.pk for account in accounts]
    return Statement(counters_sql(len(accounts), database().vendor), params)


@cache
def counters_sql(count: int, vendor: str) -> str:
    db = database()
    assignments = []
    for name in COUNTERS:
        cases = f"CASE id {' '.join(['WHEN %s THEN %s'] * count)} END"
        if vendor == "postgresql":
            # All-NULL branches would leave the CASE typed as text: say what the column is.
            column = CreditAccount._meta.get_field(name)
            cases = f"CAST({cases} AS {column.db_type(db)})"
        assignments.append(f"{name} = {cases}")
    return (
        f"UPDATE ledger_creditaccount SET {', '.join(assignments)} "
        f"WHERE id IN ({placeholders(count)})"
    )


def spent_statement(amounts: dict[tuple[int, str], Decimal]) -> Statement | None:
    """Add to the customers' `SpentCredits` per wallet. The sums are added in Python (read
    first, here): they may pass what a 64-bit integer holds, and SQLite has no exact type
    wider than that."""
    if not amounts:
        return None
    keys = list(amounts)
    known = fetch(
        "SELECT customer_id, wallet, total FROM ledger_spentcredits WHERE "
        + " OR ".join(["(customer_id = %s AND wallet = %s)"] * len(keys)),
        [value for key in keys for value in key],
    )
    total = SpentCredits._meta.get_field("total")
    sums = {(c, w): total.from_db_value(value, None, database()) for c, w, value in known}
    rows = [
        SpentCredits(customer_id=c, wallet=w, total=sums.get((c, w), ZERO) + amount)
        for (c, w), amount in amounts.items()
    ]
    return insert_statement(
        rows, on_conflict="(customer_id, wallet) DO UPDATE SET total = excluded.total"
    )


def insert_statement(objects: Sequence[Model], on_conflict: str = "") -> Statement | None:
    """One INSERT of objects of one model, without the ORM's query compilation. Values go
    through each field's own preparation, exactly as `save()` would send them."""
    if not objects:
        return None
    model = type(objects[0])
    sql = insert_sql(model, len(objects))
    if on_conflict:
        sql += f" ON CONFLICT {on_conflict}"
    return Statement(sql, prepared(objects, inserted_fields(model)))


@cache
def inserted_fields(model: type[Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@cache
def insert_sql(model: type[Model], count: int) -> str:
    quote = database().ops.quote_name
    fields = inserted_fields(model)
    row = f"({placeholders(len(fields))})"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * count)}"
    )


def update_statement(obj: Model, fields: Sequence[str]) -> Statement:
    meta = obj._meta
    columns = [meta.get_field(name) for name in fields]
    quote = database().ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    return Statement(
        f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {meta.pk.column} = %s",
        [*prepared([obj], columns), obj.pk],
    )


def insert(objects: Sequence[Model], *, returning_ids: bool = False) -> None:
    """INSERT objects of one model now; with `returning_ids`, each gets its primary key."""
    statement = insert_statement(objects)
    if statement is None:
        return
    if not returning_ids:
        execute(statement.sql, statement.params)
        return
    ids = fetch(f"{statement.sql} RETURNING {objects[0]._meta.pk.column}", statement.params)
    for obj, (pk,) in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False


def update(obj: Model, fields: Sequence[str]) -> None:
    """UPDATE these fields of one row now."""
    statement = update_statement(obj, fields)
    execute(statement.sql, statement.params)
