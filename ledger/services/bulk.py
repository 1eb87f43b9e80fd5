"""Bulk grants: many deposits, in batches of one transaction each.

Each row is a deposit (`deposits.Grant`) with an idempotency key, and follows the deposit's
rules: a key already used by the same request replays (nothing changes), by another request
is refused with the deposit's conflict codes; the customer is created on its first grant and
its profile updated by later ones. A batch locks its existing customers in the order of their ids,
reads the deposits already made under its keys, plans every row, then writes the new
customers, accounts, receipts and GRANT entries in a few multi-row INSERTs (`rows`).

Every row carries a key (its own, or one derived from the run), so running the same rows
again, after a success, an error or a kill half-way, grants each row exactly once: the
batches that committed replay, the others grant.

`preview` says what `apply` would do without changing anything (the dry run); both take the
rows as a stream (`ledger.files.grants.GrantFile.rows`, `customer_rows`) and keep only one batch in
memory, reporting each refused row through `on_error` as it is found.
"""

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import transaction
from django.utils import timezone

from credits_project.collector import collector_paused
from credits_project.errors import IdempotencyConflict, ServiceError, TransactionConflict
from credits_project.sql import database, execute, fetch, rows_by_key
from credits_project.statements import chunks, insert_statement
from customers.models import Customer, Project
from ledger.models.accounts import ACCOUNT
from ledger.models.transactions import TRANSACTION, Transaction
from ledger.services import debts
from ledger.services.deposits import Grant, Profile
from ledger.services.idempotency import check_repeat, retry_on_identity_race
from ledger.services.locks import customers_by_id, lines_of, lock_customers
from ledger.services.plan import Plan, projects_with_webhooks
from ledger.services.plan import apply as write

ACTOR = "command:bulk_grant"
# A row's derived key names the file's content: an edited copy is another file, whose rows
# would all be granted again.
REFUSED_ROWS_ADVICE = (
    "Refused rows were not granted. Grant them from a new file holding only those rows, "
    "corrected; rerunning an edited copy of this file would grant every row again."
)
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 5000


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One valid row: a deposit of `grant` to `customer_id`, which also sets `profile`.

    `line` is where the row starts in its file (None for rows not read from a file).
    """

    line: int | None
    customer_id: str
    grant: Grant
    profile: Profile

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"customer {self.customer_id}"


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that is not granted, and the error the API would answer its deposit with."""

    where: str
    error: ServiceError
    line: int | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.error.code}: {self.error.message}"
        if self.error.details:
            described = "; ".join(
                f"{name}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
                for name, value in self.error.details.items()
            )
            text += f" ({described})"
        return text


ErrorHandler = Callable[[RowError], None]
ProgressHandler = Callable[[int], None]


@dataclass
class Tally:
    """What a bulk grant did (or, from `preview`, would do)."""

    granted: int = 0
    replayed: int = 0
    rejected: int = 0
    customers_created: int = 0
    credits: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @property
    def rows(self) -> int:
        return self.granted + self.replayed + self.rejected

    def add(self, other: "Tally") -> None:
        self.granted += other.granted
        self.replayed += other.replayed
        self.rejected += other.rejected
        self.customers_created += other.customers_created
        for wallet, amount in other.credits.items():
            self.credits[wallet] += amount


@dataclass
class BatchPlan:
    """Each row of a batch sorted into what it does: grant, replay, or refusal."""

    grants: list[tuple[GrantRow, str]] = field(default_factory=list)  # with its fingerprint
    replays: list[GrantRow] = field(default_factory=list)
    rejections: list[RowError] = field(default_factory=list)

    def tally(self, customers_created: int) -> Tally:
        tally = Tally(
            granted=len(self.grants),
            replayed=len(self.replays),
            rejected=len(self.rejections),
            customers_created=customers_created,
        )
        for row, _ in self.grants:
            tally.credits[row.grant.wallet] += row.grant.amount
        return tally


def apply(
    rows: Iterable[GrantRow | RowError],
    *,
    project: Project,
    reference: str,
    actor: str = ACTOR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: ErrorHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Tally:
    """Grant the valid rows in batches of `batch_size`, one transaction each; refused rows
    (invalid, or conflicting with an earlier deposit) go to `on_error` and are counted.

    Each batch's entries carry `actor` and a description naming `reference` and the batch.
    """
    tally = Tally()
    statistics = Statistics()
    for number, (valid, invalid) in enumerate(batches(rows, batch_size), start=1):
        done = Tally(rejected=len(invalid))
        errors = list(invalid)
        if valid:
            outcome, refused = grant_batch(
                project, valid, actor=actor, reference=f"{reference} batch {number}"
            )
            done.add(outcome)
            errors += refused
        report(errors, on_error)
        tally.add(done)
        statistics.written(done.granted)
        if on_progress is not None:
            on_progress(done.rows)
    statistics.refresh()
    return tally


def preview(
    rows: Iterable[GrantRow | RowError],
    *,
    project: Project,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: ErrorHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> Tally:
    """What `apply` would do with these rows now, changing nothing: rows that would grant,
    replay or be refused (each refusal to `on_error`), credits per wallet, and customers to
    create (counted per batch: a new customer in several batches counts in each)."""
    tally = Tally()
    for valid, invalid in batches(rows, batch_size):
        done = Tally(rejected=len(invalid))
        errors = list(invalid)
        if valid:
            customers = customers_by_id(project, {row.customer_id for row in valid})
            plan = plan_batch(valid, customers, deposits_by_key(project, valid))
            new = {row.customer_id for row, _ in plan.grants} - customers.keys()
            done.add(plan.tally(customers_created=len(new)))
            errors += plan.rejections
        report(errors, on_error)
        tally.add(done)
        if on_progress is not None:
            on_progress(done.rows)
    return tally


def batches(
    rows: Iterable[GrantRow | RowError], size: int
) -> Iterator[tuple[list[GrantRow], list[RowError]]]:
    """The stream in batches of `size` rows, each split into valid rows and refusals."""
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be 1 to {MAX_BATCH_SIZE}")
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield (
            [row for row in chunk if isinstance(row, GrantRow)],
            [row for row in chunk if isinstance(row, RowError)],
        )


def report(errors: list[RowError], on_error: ErrorHandler | None) -> None:
    """Hand a batch's refusals on in file order."""
    if on_error is not None:
        for error in sorted(errors, key=lambda e: e.line or 0):
            on_error(error)


@retry_on_identity_race
def grant_batch(
    project: Project, rows: Sequence[GrantRow], *, actor: str, reference: str
) -> tuple[Tally, list[RowError]]:
    """Grant these rows as deposits in one transaction, with the deposit's rules; returns what
    it did and the rows refused.

    Keys are read once the customers are locked; a deposit under one of them that commits in
    between (its customer was still to be created) breaks the receipts' unique constraint, and
    `retry_on_identity_race` runs the batch again, which then replays or refuses that row.
    """
    with collector_paused(), transaction.atomic():
        customers = lock_customers(project, {row.customer_id for row in rows})
        plan = plan_batch(rows, customers, deposits_by_key(project, rows))
        now = timezone.now()
        created = create_customers(project, plan, customers, now)
        writes = Plan(actor=actor, now=now, webhooks=projects_with_webhooks([project.pk]))
        lines = lines_of([c for c in customers.values() if c.has_credit_line])
        update_profiles(writes, plan, customers)
        for row, request in plan.grants:
            description = noted(row.grant.description, reference)
            customer = customers[row.customer_id]
            row.grant.record(
                writes,
                project,
                customer,
                request=request,
                description=description,
                lines=lines.get(customer.pk, ()),
            )
        for customer in customers.values():
            if customer.pk in lines:
                debts.announce(
                    writes,
                    project=project,
                    customer_id=customer.external_id,
                    customer_pk=customer.pk,
                )
        write(writes)
    return plan.tally(customers_created=created), plan.rejections


def deposits_by_key(project: Project, rows: Sequence[GrantRow]) -> dict[str, Transaction]:
    """The deposits already made under these rows' keys."""
    keys = list({row.grant.idempotency_key for row in rows} - {None})
    if not keys:
        return {}
    sql, params = rows_by_key(
        "ledger_transaction",
        TRANSACTION.sql("t"),
        "transaction_id",
        keys,
        "t.project_id = %s AND t.kind = 'DEPOSIT'",
        [project.pk],
    )
    found = TRANSACTION.load(fetch(sql, params))
    return {deposit.transaction_id: deposit for deposit in found}


def plan_batch(
    rows: Sequence[GrantRow], customers: dict[str, Customer], earlier: dict[str, Transaction]
) -> BatchPlan:
    """Sort rows, in order, into grants, replays and refusals, as deposits made one after the
    other would be: a key used before (by an earlier deposit, or an earlier row here) replays
    the same request and refuses any other (`idempotency.check_repeat`)."""
    plan = BatchPlan()
    in_batch: dict[str, tuple[str, str]] = {}  # key → (customer id, fingerprint)
    for row in rows:
        key = row.grant.idempotency_key
        request = row.grant.fingerprint(row.customer_id)
        try:
            if key in earlier:
                customer = customers.get(row.customer_id)
                if customer is None:  # the key's deposit is another (existing) customer's
                    raise TransactionConflict({"field": "idempotency_key"})
                check_repeat(
                    earlier[key], customer=customer, request=request, kind=Transaction.Kind.DEPOSIT
                )
                plan.replays.append(row)
            elif key in in_batch:
                owner, first_request = in_batch[key]
                if owner != row.customer_id:
                    raise TransactionConflict({"field": "idempotency_key"})
                if first_request != request:
                    raise IdempotencyConflict({"field": "idempotency_key"})
                plan.replays.append(row)
            else:
                if key is not None:
                    in_batch[key] = (row.customer_id, request)
                plan.grants.append((row, request))
        except ServiceError as error:
            plan.rejections.append(RowError(row.where, error, row.line))
    return plan


def create_customers(
    project: Project, plan: BatchPlan, customers: dict[str, Customer], now: dt.datetime
) -> int:
    """Create the customers the plan grants to that do not exist yet, each with the profile of
    its first grant (as a first deposit creates it), and add them to `customers`. Returns how
    many this batch created: one created meanwhile by another writer is locked instead.

    Inserted in id order, so two batches creating the same customers never wait for each
    other in a cycle."""
    first_profiles: dict[str, Profile] = {}
    for row, _ in plan.grants:
        if row.customer_id not in customers:
            first_profiles.setdefault(row.customer_id, row.profile)
    if not first_profiles:
        return 0
    new = [
        Customer(
            project=project,
            external_id=external_id,
            **{"metadata": {}, **first_profiles[external_id].given(), "created_at": now},
        )
        for external_id in sorted(first_profiles)
    ]
    created = 0
    for chunk in chunks(new):
        statement = insert_statement(
            chunk, " ON CONFLICT (project_id, external_id) DO NOTHING RETURNING external_id, id"
        )
        inserted = dict(fetch(statement.sql, statement.params))
        for customer in chunk:
            if customer.external_id in inserted:
                customer.pk = inserted[customer.external_id]
                customer._state.adding = False
                customers[customer.external_id] = customer
                created += 1
    raced = first_profiles.keys() - customers.keys()
    if raced:
        customers.update(lock_customers(project, raced))
    return created


def update_profiles(writes: Plan, plan: BatchPlan, customers: dict[str, Customer]) -> None:
    """Apply each grant's profile, in row order, as its deposit would; one UPDATE per customer
    whose profile changed."""
    changed: dict[str, set[str]] = defaultdict(set)
    for row, _ in plan.grants:
        customer = customers[row.customer_id]
        for name, value in row.profile.changes(customer).items():
            setattr(customer, name, value)
            changed[row.customer_id].add(name)
    for customer_id, names in changed.items():
        writes.update(customers[customer_id], sorted(names))


def noted(description: str, reference: str) -> str:
    """An entry's description with the batch that wrote it."""
    return f"{description} [{reference}]" if description else f"[{reference}]"


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


# --- grants to every customer ---------------------------------------------------------------


def run_key_prefix(run_id: str) -> str:
    """What the keys of a run's grants start with; one grant per customer per run id."""
    return f"bulk_grant:run:{hashlib.sha256(run_id.encode()).hexdigest()[:32]}"


def customer_rows(
    project: Project,
    grant: Grant,
    *,
    run_id: str,
    where: dict[str, Any] | None = None,
    chunk_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[GrantRow]:
    """One row per customer of the project (those matching the ORM filter `where`), each a
    deposit of `grant` keyed by the run and the customer, read in primary-key order a chunk
    at a time."""
    prefix = run_key_prefix(run_id)
    customers = Customer.objects.filter(project=project, **(where or {})).order_by("pk")
    last = 0
    while chunk := list(
        customers.filter(pk__gt=last).values_list("pk", "external_id")[:chunk_size]
    ):
        for pk, external_id in chunk:
            keyed = replace(grant, idempotency_key=f"{prefix}:{pk}")
            yield GrantRow(None, external_id, keyed, Profile())
        last = chunk[-1][0]


def run_expiry(project: Project, run_id: str) -> dt.datetime | None:
    """The expiry an earlier pass of this run gave its grants, if it granted any: a rerun
    keeps it, so `expires in 30 days` means 30 days from the run's first pass and its grants
    stay the same request."""
    prefix = run_key_prefix(run_id).replace("_", "\\_")
    found = ACCOUNT.load(
        fetch(
            f"SELECT {ACCOUNT.sql('a')} FROM ledger_transaction t "
            "JOIN ledger_ledgerentry e ON e.customer_id = t.customer_id "
            "AND e.transaction_id = t.transaction_id "
            "JOIN ledger_creditaccount a ON a.id = e.account_id "
            "WHERE t.project_id = %s AND t.kind = 'DEPOSIT' AND t.transaction_id LIKE %s "
            "ESCAPE '\\' ORDER BY t.id LIMIT 1",
            [project.pk, f"{prefix}:%"],
        )
    )
    return found[0].expires_at if found else None


def metadata_filter(conditions: dict[str, str]) -> dict[str, Any]:
    """ORM conditions for customers whose metadata holds each string value at each path
    (`plan` or `billing.plan`, dotted for nested objects)."""
    return {"metadata__" + "__".join(path.split(".")): value for path, value in conditions.items()}
