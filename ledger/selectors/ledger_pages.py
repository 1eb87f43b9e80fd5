"""Pages of a customer's ledger, newest first, walked with an opaque keyset cursor.

The order is (`created_at`, `id`) descending, a total order served by the `entry_walk` indexes,
so each page is one index range scan whatever its depth. A cursor names the last entry a page
returned; the next page starts strictly after it, so every entry that existed when the walk
began is returned exactly once, however many share a timestamp and whatever arrives meanwhile.
The cursor is sealed (`credits_project.sealing`): encrypted, so that it reveals neither the
entry nor its time nor the customer, and authenticated together with the customer and filters
it was issued for, so that it serves no other walk.
"""

import datetime as dt
import json
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from credits_project import sealing
from credits_project.errors import CustomerNotFound, InvalidCursor, NotFound
from customers.models import Customer, Project
from ledger.models import LedgerCounter, LedgerEntry, Validity
from ledger.results import LedgerItem, LedgerPage

CURSOR_PURPOSE = "ledger.cursor"
# A cursor's plaintext: the last entry's `created_at` (microseconds since the epoch) and id.
POSITION = struct.Struct(">qq")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)
LINE_SOURCE = "credit_line"


@dataclass(frozen=True)
class LedgerQuery:
    customer: Customer
    limit: int = 20
    cursor: str | None = None
    operation_type: str | None = None
    transaction_id: str | None = None

    def filters(self) -> list[Any]:
        return [self.customer.pk, self.operation_type, self.transaction_id]


def customer_of(
    project: Project, customer_id: str, *, missing: type[NotFound] = CustomerNotFound
) -> Customer:
    """The customer whose ledger (or slots, or entitlements) is read; `missing` when the
    project has none."""
    customer = Customer.objects.filter(project=project, external_id=customer_id).only("id").first()
    if customer is None:
        raise missing({"customer_id": customer_id})
    return customer


def ledger_page(query: LedgerQuery, *, at: dt.datetime | None = None) -> LedgerPage:
    """One page of the customer's entries matching the query, newest first."""
    at = at or timezone.now()
    entries = LedgerEntry.objects.filter(customer=query.customer)
    if query.operation_type is not None:
        entries = entries.filter(operation_type=query.operation_type)
    if query.transaction_id is not None:
        entries = entries.filter(transaction_id=query.transaction_id)
    total_count = _count(query, entries)
    page, has_more, next_cursor = keyset_page(
        entries.select_related("account", "credit_line"), query
    )
    return LedgerPage(
        items=[entry_view(entry, at) for entry in page],
        total_count=total_count,
        has_more=has_more,
        next_cursor=next_cursor,
    )


class Walk(Protocol):
    """A walk of rows newest first: its page size, cursor and what its cursor is bound to."""

    limit: int
    cursor: str | None

    def filters(self) -> list[Any]: ...


def keyset_page(rows: QuerySet, query: Walk) -> tuple[list[Any], bool, str | None]:
    """One page of `rows` (with `created_at` and `id`) newest first, after the walk's cursor:
    the rows, whether more follow, and the cursor of the next page."""
    if query.cursor is not None:
        created_at, row_id = decode_cursor(query)
        # `created_at <= t` bounds the index range scan; the OR then only filters the few
        # rows that share the cursor's timestamp. (An OR alone would make the database
        # scan from the newest row down to the cursor: a cost growing with the depth.)
        rows = rows.filter(
            Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(id__lt=row_id))
        )
    page = list(rows.order_by("-created_at", "-id")[: query.limit + 1])
    has_more = len(page) > query.limit
    page = page[: query.limit]
    return page, has_more, encode_cursor(query, page[-1]) if has_more else None


def _count(query: LedgerQuery, entries) -> int:
    if query.transaction_id is not None:
        return entries.count()  # one transaction's entries: a handful, by index
    counters = LedgerCounter.objects.filter(customer=query.customer)
    if query.operation_type is not None:
        counters = counters.filter(operation_type=query.operation_type)
    return counters.aggregate(n=Sum("entries"))["n"] or 0


class EventWalk(Walk, Protocol):
    """A walk of a customer's events (of slots, of entitlements) within a time window."""

    from_at: dt.datetime | None
    to_at: dt.datetime | None


def event_page(
    events: QuerySet, query: EventWalk, **matching: Any
) -> tuple[list[Any], int, bool, str | None]:
    """One page of `events` newest first, of those whose fields match `matching` (a value
    that is None or an empty tuple matches all; a tuple is a choice) and that were made from
    `from_at` (inclusive) to `to_at` (exclusive): the events, how many match in all, whether
    more follow, the next page's cursor."""
    for name, value in matching.items():
        if isinstance(value, tuple):
            events = events.filter(**{f"{name}__in": value}) if value else events
        elif value is not None:
            events = events.filter(**{name: value})
    if query.from_at is not None:
        events = events.filter(created_at__gte=query.from_at)
    if query.to_at is not None:
        events = events.filter(created_at__lt=query.to_at)
    total_count = events.count()
    page, has_more, next_cursor = keyset_page(events, query)
    return page, total_count, has_more, next_cursor


def encode_cursor(query: Walk, last: Any) -> str:
    position = POSITION.pack((last.created_at - EPOCH) // MICROSECOND, last.pk)
    return sealing.seal(position, purpose=CURSOR_PURPOSE, context=cursor_context(query))


def decode_cursor(query: Walk) -> tuple[dt.datetime, int]:
    try:
        position = sealing.unseal(
            query.cursor, purpose=CURSOR_PURPOSE, context=cursor_context(query)
        )
        micros, entry_id = POSITION.unpack(position)
        return EPOCH + micros * MICROSECOND, entry_id
    except (sealing.BadToken, struct.error, OverflowError):
        raise InvalidCursor("cursor") from None


def cursor_context(query: Walk) -> bytes:
    """What a cursor is bound to: the customer and filters of the walk it was issued for."""
    return json.dumps(query.filters()).encode("ascii")


def entry_view(entry: LedgerEntry, at: dt.datetime) -> LedgerItem:
    """An entry as the ledger lists it. An entry on a credit line alone (DEBT, a freeze's
    hold on a line, a refund of debt) names the line as `credit_line:<id>`, its wallet (null
    for a line of all wallets) and the source `credit_line`; a REPAY names the account that
    paid."""
    account = entry.account
    if account is not None:
        wallet, source, account_id = account.wallet, account.source, str(account.pk)
        status = account.validity_at(at)
    else:
        line = entry.credit_line
        wallet, source = line.wallet or None, LINE_SOURCE
        account_id, status = f"credit_line:{line.pk}", Validity.ACTIVE
    return LedgerItem(
        id=str(entry.pk),
        operation_type=entry.operation_type,
        amount=entry.amount,
        wallet=wallet,
        credit_type=wallet,
        source=source,
        account_id=account_id,
        transaction_id=entry.transaction_id,
        business_type=entry.business_type,
        description=entry.description,
        status=status,
        created_at=entry.created_at,
    )
