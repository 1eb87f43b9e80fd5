"""Reads on standbys, for the views that opt in, with every client reading its own writes.

With `DATABASE_REPLICA_URL` set (settings name it the `replica` database), a view that only
reads may run inside `reads_from_standby()`: the ledger pages, `as_of` reads, the console's
overview, its charts and its CSV export do. Everything else, and everything inside a
transaction anywhere, reads and writes the primary (`default`). One mechanism routes both the
ORM (`StandbyRouter`, the project's database router) and the hot path's plain SQL
(`credits_project.sql.database()` asks `alias_for_reads()`), so no service or selector names
a node.

A standby is read only once it has replayed every commit the primary had made when the block
began: the block first takes the primary's snapshot, then waits up to
`DATABASE_REPLICA_WAIT_SECONDS` (0.1 s) for the standby's own snapshot to see every transaction
that one sees as finished, and otherwise reads the primary. A page read right after a deposit,
through any host, therefore shows the deposit, with no state kept between requests (pinning a
client to the primary after its writes would need a cache shared by every host). The price is
one trivial statement on the primary and one or more on the standby per block. A standby that
cannot be reached, or a URL whose hosts lead to a primary (`prefer-standby` falls back to one),
also reads the primary.
"""

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

T = TypeVar("T")

STANDBY = "replica"
POLL_SECONDS = 0.005
# Whether this standby's snapshot sees as finished every transaction the primary's snapshot
# (the parameter) sees as finished: it has replayed each one's commit or abort. Snapshots, not
# WAL positions: the primary's flushed position may end inside a record still being written,
# which no standby can replay until it is whole.
CAUGHT_UP = (
    "SELECT pg_is_in_recovery(), pg_snapshot_xmax(s) >= pg_snapshot_xmax(p) AND NOT EXISTS ("
    "SELECT FROM pg_snapshot_xip(s) AS x WHERE x < pg_snapshot_xmax(p) "
    "AND x NOT IN (SELECT pg_snapshot_xip(p))) "
    "FROM (SELECT pg_current_snapshot() AS s, %s::pg_snapshot AS p) AS snapshots"
)

logger = logging.getLogger("credits.replicas")

# The database the current block reads from; None outside any block.
_reading_from: ContextVar[str | None] = ContextVar("credits_reading_from", default=None)


def alias_for_reads() -> str:
    """The database a read runs on now: the standby chosen by the enclosing
    `reads_from_standby()`, unless a transaction is open on the primary; else the primary."""
    alias = _reading_from.get()
    if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return alias


@contextmanager
def reads_from_standby() -> Iterator[None]:
    """Reads in this block (outside transactions) go to a standby that has replayed every
    commit the primary had made at its start, else to the primary. Does nothing without a
    standby configured, or inside another such block."""
    if STANDBY not in settings.DATABASES or _reading_from.get() is not None:
        yield
        return
    token = _reading_from.set(_caught_up_standby() or DEFAULT_DB_ALIAS)
    try:
        yield
    finally:
        _reading_from.reset(token)


def streamed_from_standby(items: Iterable[T]) -> Iterator[T]:
    """`items`, read inside `reads_from_standby()`: for a response streamed after its view
    returned (the block opens with the first item, and closes with the response)."""
    with reads_from_standby():
        yield from items


def _caught_up_standby() -> str | None:
    """`STANDBY` once it sees every transaction the primary saw as finished when asked,
    waiting for it at most `DATABASE_REPLICA_WAIT_SECONDS`; None when it does not, or cannot
    say."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        (primary_snapshot,) = cursor.fetchone()
    give_up = time.monotonic() + settings.DATABASE_REPLICA_WAIT_SECONDS
    try:
        with connections[STANDBY].cursor() as cursor:
            while True:
                cursor.execute(CAUGHT_UP, [primary_snapshot])
                in_recovery, caught_up = cursor.fetchone()
                if not in_recovery:
                    return None  # a primary, perhaps not the one DATABASE_URL leads to
                if caught_up:
                    return STANDBY
                if time.monotonic() >= give_up:
                    return None
                time.sleep(POLL_SECONDS)
    except DatabaseError as exc:
        logger.warning("standby unavailable, reading from the primary: %s", exc)
        return None


class StandbyRouter:
    """The database router (`DATABASE_ROUTERS`) while a standby is configured: reads go where
    `alias_for_reads()` says, writes and migrations to the primary."""

    def db_for_read(self, model, **hints) -> str:
        return alias_for_reads()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, whichever node a row was read from

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
