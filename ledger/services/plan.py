"""The one way the services write: a `Plan` of new accounts, counter changes, ledger entries,
outbox events and other rows, applied together once the service has decided on all of it.

A service reads (under the customer's lock), decides what to write (a pure step that fills the
plan), and hands the plan to `apply`. New accounts are inserted first, since entries and events
name them by id. Then every account's counters go in one UPDATE, the customer's `SpentCredits`
follow, the events and other new rows go in multi-row INSERTs (one per model), then the other
updates, and the entries last in one multi-row INSERT. On PostgreSQL those travel as one
statement, each a data-modifying `WITH` part: they touch different rows, and none reads what
another writes. SQLite, which runs in the process and has no data-modifying `WITH`, runs them
one by one.

Events go to the outbox only while their project has an enabled webhook endpoint: each event's
INSERT checks that itself (no statement of its own), unless the writer already knows
(`Plan.webhooks`, which a bulk grant and the scheduler check once per batch).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from django.db.models import Model

from credits_project.sql import database, fetch, placeholders, prepared
from credits_project.statements import (
    Statement,
    chunks,
    insert_returning_ids,
    insert_statement,
    inserted_fields,
    run_together,
    update_statement,
    update_statements,
)
from customers.models import Project
from ledger.models import (
    CreditAccount,
    CreditLine,
    LedgerEntry,
    SpentCredits,
    WebhookEndpoint,
    WebhookEvent,
)
from ledger.money import ZERO
from ledger.webhooks.models import new_event_id


@dataclass
class AccountChange:
    account: CreditAccount
    used: Decimal = ZERO  # added to `used`
    frozen: Decimal = ZERO  # added to `frozen`; negative when credits are released
    records_expiry: bool = False  # the account's expiry is recorded now


@dataclass
class LineChange:
    line: CreditLine
    debt: Decimal = ZERO  # added to `debt`; negative when it is paid back
    frozen: Decimal = ZERO  # added to `frozen`


@dataclass
class Event:
    """An outbox event of the plan. `data` may be a function, called when the plan is written
    (once its new accounts have their ids)."""

    type: str
    project: Project
    customer_pk: int
    customer_id: str
    data: dict[str, Any] | Callable[[], dict[str, Any]]
    dedupe_key: str | None = None

    def row(self, now: dt.datetime) -> WebhookEvent:
        event_id = new_event_id()
        data = self.data() if callable(self.data) else self.data
        return WebhookEvent(
            event_id=event_id,
            type=self.type,
            project_id=self.project.pk,
            customer_id=self.customer_pk,
            created_at=now,
            dedupe_key=self.dedupe_key,
            payload={
                "id": event_id,
                "type": self.type,
                "created_at": now,
                "project": self.project.name,
                "customer_id": self.customer_id,
                "data": data,
            },
        )


@dataclass
class Plan:
    """What one operation writes, by one actor at one instant."""

    actor: str
    now: dt.datetime
    # The projects (ids) with an enabled webhook endpoint, as the writer checked them; None
    # leaves it to each event's INSERT.
    webhooks: Collection[int] | None = None
    accounts: list[CreditAccount] = field(default_factory=list)
    lines: list[CreditLine] = field(default_factory=list)
    changes: dict[int, AccountChange] = field(default_factory=dict)
    line_changes: dict[int, LineChange] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    inserts: dict[type[Model], list[Model]] = field(default_factory=dict)
    updates: list[Statement] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def open_account(self, account: CreditAccount) -> CreditAccount:
        """A new account, inserted first: it has its id for everything written after it."""
        self.accounts.append(account)
        return account

    def open_line(self, line: CreditLine) -> CreditLine:
        """A new credit line, inserted first (with the new accounts)."""
        self.lines.append(line)
        return line

    def change_line(self, line: CreditLine, *, debt: Decimal = ZERO, frozen: Decimal = ZERO):
        """The line's change in this plan, with these deltas added to it. A line is keyed by
        the object itself until it is written: a line opened by this plan has no id yet."""
        change = self.line_changes.setdefault(id(line), LineChange(line))
        change.debt += debt
        change.frozen += frozen
        return change

    def change(self, account: CreditAccount, **deltas: Decimal | bool) -> AccountChange:
        """The account's change in this plan, with `deltas` added to it."""
        change = self.changes.setdefault(account.pk, AccountChange(account))
        change.used += deltas.get("used", ZERO)
        change.frozen += deltas.get("frozen", ZERO)
        change.records_expiry |= bool(deltas.get("records_expiry", False))
        return change

    def entry(
        self,
        account: CreditAccount | None,
        operation_type: str,
        amount: Decimal,
        *,
        credit_line: CreditLine | None = None,
        transaction_id: str | None,
        business_type: str,
        description: str,
    ) -> LedgerEntry:
        """Append an entry on an account, a credit line, or both (a REPAY: the account pays
        the line). It gets its id when written, unless the plan writes more than one
        statement's worth of entries (only the largest charges do, and nothing reads them)."""
        entry = LedgerEntry(
            customer_id=(account or credit_line).customer_id,
            account=account,
            credit_line=credit_line,
            operation_type=operation_type,
            amount=amount,
            transaction_id=transaction_id,
            business_type=business_type,
            description=description,
            actor=self.actor,
            created_at=self.now,
        )
        self.entries.append(entry)
        return entry

    def line_entry(
        self,
        line: CreditLine,
        operation_type: str,
        amount: Decimal,
        *,
        account: CreditAccount | None = None,
        **fields: str | None,
    ) -> LedgerEntry:
        """Append an entry on a credit line (a REPAY also names the account that pays)."""
        return self.entry(account, operation_type, amount, credit_line=line, **fields)

    def insert(self, obj: Model) -> None:
        """Insert `obj` with the plan (its primary key is not read back); the rows of one
        model go in multi-row INSERTs."""
        self.inserts.setdefault(type(obj), []).append(obj)

    def update(self, obj: Model, fields: Sequence[str]) -> None:
        """Update these fields of `obj`'s row with the plan."""
        self.updates.append(update_statement(obj, fields))

    def update_all(self, objects: Sequence[Model], fields: Sequence[str]) -> None:
        """Update these fields of the rows of `objects` (of one model) with the plan."""
        self.updates.extend(update_statements(objects, fields))

    def emit(self, event: Event) -> None:
        """Write `event` to the outbox with the plan (see the module)."""
        self.events.append(event)


def apply(plan: Plan) -> None:
    """Write the plan (see the module). An empty plan writes nothing."""
    for new in (plan.accounts, plan.lines):
        if new:
            insert_returning_ids(new)
    if plan.accounts or plan.lines:
        # The ids the new rows just got, into the rows built with the objects.
        for obj in [*plan.entries, *(o for rows in plan.inserts.values() for o in rows)]:
            refer_to_new_rows(obj)
    statements = [
        *counter_statements(plan),
        *line_statements(plan),
        *event_statements(plan),
        *(insert_statement(part) for rows in plan.inserts.values() for part in chunks(rows)),
        *plan.updates,
        *entry_statements(plan.entries),
    ]
    returned = run_together([s for s in statements if s is not None])
    if returned and len(returned) == len(plan.entries):
        for entry, (pk,) in zip(plan.entries, returned, strict=True):
            entry.pk = pk
            entry._state.adding = False


def counter_statements(plan: Plan) -> list[Statement | None]:
    """The counters of every changed account, and the spent sums they move."""
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
    for account in plan.accounts:
        if is_spent(account):  # a deposit that went whole to paying a debt
            spent[account.customer_id, account.wallet] += account.total
    accounts = [change.account for change in changes]
    return [
        *(counters_statement(part) for part in chunks(accounts)),
        spent_statement({key: amount for key, amount in spent.items() if amount}),
    ]


def refer_to_new_rows(obj: Model) -> None:
    """Set each foreign key of `obj` left empty when it was built, from the related object it
    was built with (which has an id now); as `save()` does."""
    for column in obj._meta.concrete_fields:
        if column.is_relation and getattr(obj, column.attname) is None and column.is_cached(obj):
            related = column.get_cached_value(obj)
            if related is not None:
                setattr(obj, column.attname, related.pk)


def line_statements(plan: Plan) -> list[Statement]:
    """Each changed line's `debt` and `frozen` (a customer has a handful of lines)."""
    updates = []
    for change in plan.line_changes.values():
        line = change.line
        line.debt += change.debt
        line.frozen += change.frozen
        if change.debt or change.frozen:
            updates.append(update_statement(line, ["debt", "frozen"]))
    return updates


def entry_statements(entries: list[LedgerEntry]) -> list[Statement | None]:
    """The entries, last, returning their ids when they fit one statement."""
    parts = chunks(entries)
    if len(parts) != 1:
        return [insert_statement(part) for part in parts]
    return [insert_statement(parts[0], " RETURNING id")]


def is_spent(account: CreditAccount) -> bool:
    """Used up to the last credit, and still counting in balances (see `SpentCredits`)."""
    return account.used == account.total and account.expiry_recorded_at is None


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
        rows, " ON CONFLICT (customer_id, wallet) DO UPDATE SET total = excluded.total"
    )


def event_statements(plan: Plan) -> list[Statement | None]:
    if plan.webhooks is None:
        return [conditional_event_statement(event.row(plan.now)) for event in plan.events]
    rows = [event.row(plan.now) for event in plan.events if event.project.pk in plan.webhooks]
    return [insert_statement(part) for part in chunks(rows)]


def conditional_event_statement(event: WebhookEvent) -> Statement:
    """The INSERT of one event, conditional on its project having an enabled endpoint (and,
    with a `dedupe_key`, on no event having that key yet)."""
    inserted = inserted_fields(WebhookEvent)
    sql = conditional_insert_sql(len(inserted))
    if event.dedupe_key is not None:
        sql += " ON CONFLICT DO NOTHING"
    return Statement(sql, [*prepared([event], inserted), event.project_id, True])


@cache
def conditional_insert_sql(width: int) -> str:
    quote = database().ops.quote_name
    columns = ", ".join(quote(f.column) for f in inserted_fields(WebhookEvent))
    return (
        f"INSERT INTO {WebhookEvent._meta.db_table} ({columns}) SELECT {placeholders(width)} "
        f"WHERE EXISTS (SELECT 1 FROM {WebhookEndpoint._meta.db_table} "
        "WHERE project_id = %s AND enabled = %s)"
    )


def projects_with_webhooks(project_pks: Collection[int]) -> set[int]:
    """Those of these projects with an enabled webhook endpoint (`Plan.webhooks`): for writers
    of many events at once (bulk grants, the scheduler), which check once per batch rather
    than in each event's INSERT."""
    return set(
        WebhookEndpoint.objects.filter(project_id__in=project_pks, enabled=True)
        .values_list("project_id", flat=True)
        .distinct()
    )
