"""Every lock a writer takes.

All writers of one customer serialize on that customer's row: each service locks it first,
then reads what it will change. Writers of different customers never wait for each other on
PostgreSQL. On SQLite, which has no row locks, the IMMEDIATE transaction holds the database's
write lock instead and these statements only read.

Locks are always taken customer first; accounts and transactions are read after it, so no two
writers can wait for each other in a cycle.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from credits_project.errors import CustomerNotFound
from credits_project.sql import fetch, for_update, placeholders, rows_by_key
from customers.models import CUSTOMER, Customer, Project
from ledger.models import CreditLine, Transaction
from ledger.models.credit_lines import CREDIT_LINE
from ledger.models.transactions import CHARGE_KINDS_SQL, TRANSACTION


@dataclass(frozen=True)
class Locked:
    """A locked customer, the transaction already made under the identity asked about (if
    any), and the customer's credit lines, read with the lock."""

    customer: Customer
    earlier: Transaction | None
    lines: list[CreditLine]


def lock_customer(
    project: Project, customer_id: str, *, charge_id: str, kinds: str = CHARGE_KINDS_SQL
) -> Locked:
    """Lock the customer for a freeze or deduct named `charge_id` (or another operation with
    an id of `kinds`, such as a void), and read the transaction already under that id (of any
    customer of the project) and the customer's credit lines, in one statement. Raises
    `CustomerNotFound`.

    The transaction is read in the statement's snapshot, taken before the lock was granted: a
    first request with the same id that commits while this one waits is not seen. This one's
    own transaction row then breaks the unique constraint, and `retry_on_identity_race` runs
    the operation again, which finds it and replays it.
    """
    found = _lock(project, customer_id, charge_id, kinds=kinds)
    if found is None:
        raise CustomerNotFound({"customer_id": customer_id})
    return found


def lock_or_create_customer(
    project: Project, customer_id: str, *, deposit_key: str | None, new: dict[str, Any]
) -> Locked:
    """Lock the customer, creating it from the fields `new` first if it does not exist yet,
    and read the deposit already made with `deposit_key` and the customer's credit lines.

    Creation races are settled by the unique constraint (INSERT ... ON CONFLICT DO NOTHING),
    never by check-then-insert: whoever loses simply locks the winner's row.
    """
    found = _lock(project, customer_id, deposit_key, kinds="('DEPOSIT')")
    if found is None:
        Customer.objects.bulk_create(
            [Customer(project=project, external_id=customer_id, **new)], ignore_conflicts=True
        )
        found = _lock(project, customer_id, deposit_key, kinds="('DEPOSIT')")
    return found


def _lock(project: Project, customer_id: str, identity: str | None, *, kinds: str) -> Locked | None:
    rows = fetch(
        f"SELECT {CUSTOMER.sql('c')}, {TRANSACTION.sql('t')} FROM customers_customer c "
        "LEFT JOIN ledger_transaction t ON t.project_id = c.project_id "
        f"AND t.transaction_id = %s AND t.kind IN {kinds} "
        "WHERE c.project_id = %s AND c.external_id = %s" + for_update("c"),
        [identity, project.pk, customer_id],
    )
    if not rows:
        return None
    customer = CUSTOMER.load_row(rows[0])
    customer.project = project
    rest = rows[0][CUSTOMER.width :]
    original = TRANSACTION.load_row(rest) if rest[0] is not None else None
    return Locked(customer, original, CreditLine.objects.of(customer))


def lock_customer_row(project: Project, customer_id: str) -> Customer | None:
    """Lock the customer alone (a slot or entitlement write reads no credits); None when the
    project has no such customer."""
    found = CUSTOMER.load(
        fetch(
            f"SELECT {CUSTOMER.sql()} FROM customers_customer "
            "WHERE project_id = %s AND external_id = %s" + for_update(),
            [project.pk, customer_id],
        )
    )
    if not found:
        return None
    found[0].project = project
    return found[0]


def lock_or_create_customer_row(
    project: Project, customer_id: str, now: dt.datetime | None
) -> Customer:
    """Lock the customer, creating it (with no profile) first if unknown: a slot grant or an
    entitlement set creates its customer, as a first deposit does."""
    return lock_or_create_customer(
        project,
        customer_id,
        deposit_key=None,
        new={"metadata": {}, "created_at": now or timezone.now()},
    ).customer


def lines_in(rows: list[tuple], offset: int) -> list[CreditLine]:
    """The credit lines loaded at `offset` of each row (none when the join found none)."""
    return [CREDIT_LINE.load_row(row[offset:]) for row in rows if row[offset] is not None]


def lines_of(customers: list[Customer]) -> dict[int, list[CreditLine]]:
    """The credit lines of these (locked) customers, by customer: what their grants repay."""
    found: dict[int, list[CreditLine]] = defaultdict(list)
    if customers:
        for line in CreditLine.objects.filter(customer__in=customers).order_by("id"):
            found[line.customer_id].append(line)
    return found


def lock_customer_of_charge(
    project: Project, transaction_id: str
) -> tuple[Transaction, list[CreditLine]] | None:
    """Lock the customer that owns the freeze or deduct `transaction_id`, then read the
    transaction afresh, with the customer's credit lines (in a statement after the lock, so
    both are current): its state cannot change until this transaction commits, so concurrent
    settlements (or refunds) of one charge run one at a time. None when the project has no
    such charge."""
    params = [project.pk, transaction_id]
    customers = CUSTOMER.load(
        fetch(
            f"SELECT {CUSTOMER.sql()} FROM customers_customer WHERE id = ("
            "SELECT customer_id FROM ledger_transaction "
            f"WHERE project_id = %s AND transaction_id = %s AND kind IN {CHARGE_KINDS_SQL})"
            + for_update(),
            params,
        )
    )
    if not customers:
        return None
    rows = fetch(
        f"SELECT {TRANSACTION.sql('t')}, {CREDIT_LINE.sql('l')} FROM ledger_transaction t "
        "LEFT JOIN ledger_creditline l ON l.customer_id = t.customer_id "
        f"WHERE t.project_id = %s AND t.transaction_id = %s AND t.kind IN {CHARGE_KINDS_SQL} "
        "ORDER BY l.id",
        params,
    )
    charge = TRANSACTION.load_row(rows[0])
    charge.customer = customers[0]
    charge.customer.project = charge.project = project
    return charge, lines_in(rows, TRANSACTION.width)


def lock_customer_unless_busy(customer_pk: int) -> bool:
    """For the scheduler: lock the customer unless another process holds it (`SKIP LOCKED`),
    so several schedulers never work on one customer at once. False when it is busy."""
    return bool(customers_unless_busy([customer_pk]))


def customers_unless_busy(customer_pks: Collection[int]) -> dict[int, Customer]:
    """For the scheduler: lock those of these customers that no other process holds and read
    them, in one statement that waits for none of them (`SKIP LOCKED`: so no two schedulers
    wait for each other either). Returns the ones locked, by id, in the order of their ids."""
    if connection.features.has_select_for_update_skip_locked:
        sql = (
            f"SELECT {CUSTOMER.sql()} FROM customers_customer WHERE id = ANY(%s::bigint[]) "
            "ORDER BY id FOR UPDATE SKIP LOCKED"
        )
        params: list[Any] = [list(customer_pks)]
    else:  # SQLite: the IMMEDIATE transaction already holds the lock
        sql = (
            f"SELECT {CUSTOMER.sql()} FROM customers_customer "
            f"WHERE id IN ({placeholders(len(customer_pks))}) ORDER BY id"
        )
        params = list(customer_pks)
    return {customer.pk: customer for customer in CUSTOMER.load(fetch(sql, params))}


def now_under_lock(fixed: dt.datetime | None) -> dt.datetime:
    """The clock, read once the customer is locked (unless a caller fixed it): a request that
    waited for the lock judges which credits are active, and dates its entries, as of when it
    runs, not as of when it arrived."""
    return fixed or timezone.now()


def lock_customers(project: Project, customer_ids: Collection[str]) -> dict[str, Customer]:
    """Lock the existing ones of these customers one after the other in
    the order of their sorted ids, as every writer of several customers does, so that two of
    them never wait for each other in a cycle. Returns them by id; unknown ids are left out."""
    return customers_by_id(project, customer_ids, lock=True)


def customers_by_id(
    project: Project, customer_ids: Collection[str], *, lock: bool = False
) -> dict[str, Customer]:
    """The existing ones of these customers by id, locked with `lock`."""
    if not customer_ids:
        return {}
    sql, params = rows_by_key(
        "customers_customer",
        CUSTOMER.sql("t"),
        "external_id",
        sorted(customer_ids),
        "t.project_id = %s",
        [project.pk],
        lock=lock,
    )
    found = CUSTOMER.load(fetch(sql, params))
    for customer in found:
        customer.project = project
    return {customer.external_id: customer for customer in found}
