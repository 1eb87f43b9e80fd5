"""The ledger's cursors are opaque: encrypted so that nothing about the entry, its time or the
customer can be read from them, and authenticated with the walk they belong to."""

import base64
import datetime as dt
import json
import struct
import zlib

import pytest
from django.test import override_settings

from credits_project import sealing
from credits_project.errors import InvalidCursor
from ledger.models import LedgerEntry
from ledger.selectors import LedgerQuery, ledger_page
from ledger.selectors.ledger_pages import CURSOR_PURPOSE, cursor_context
from tests.ledger.support import grant

LEDGER = "/v1/customers/{}/ledger"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def first_cursor(http, customer_id: str = "c1", **params) -> str:
    page = http.get(LEDGER.format(customer_id), params={"limit": 1, **params}).json()
    assert page["has_more"]
    return page["next_cursor"]


def raw_bytes(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


@pytest.fixture
def deposits(http) -> None:
    for customer_id in ("c1", "c2"):
        for n in range(3):
            deposit = {
                "customer_id": customer_id,
                "amount": 1,
                "idempotency_key": f"{customer_id}-{n}",
            }
            assert http.post("/v1/customers/deposit", json=deposit).status_code == 200


def test_a_cursor_reveals_neither_the_entry_nor_its_time_nor_the_customer(http, deposits):
    cursor = first_cursor(http)

    last = LedgerEntry.objects.filter(customer__external_id="c1").order_by("-created_at").first()
    micros = (last.created_at - EPOCH) // dt.timedelta(microseconds=1)
    raw = raw_bytes(cursor)
    readable = [
        *(struct.pack(f"{order}q", n) for order in "<>" for n in (last.pk, micros)),
        *(struct.pack(f"{order}i", n) for order in "<>" for n in (last.pk, last.customer_id)),
        last.created_at.isoformat().encode(),
        last.created_at.isoformat()[:19].encode(),
        json.dumps([last.customer_id, None, None]).encode(),
    ]
    assert [form for form in readable if form in raw] == []
    with pytest.raises(zlib.error):
        zlib.decompress(raw)
    assert len(cursor) <= 64 and cursor.isascii()


def test_the_walk_with_sealed_cursors_returns_every_entry_once(http, deposits):
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = http.get(LEDGER.format("c1"), params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    expected = LedgerEntry.objects.filter(customer__external_id="c1").order_by("-created_at", "-id")
    assert seen == [str(pk) for pk in expected.values_list("pk", flat=True)]


def test_any_altered_character_makes_a_cursor_invalid(http, deposits):
    cursor = first_cursor(http)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    altered = [
        cursor[:i] + alphabet[(alphabet.index(c) + 1) % 64] + cursor[i + 1 :]
        for i, c in enumerate(cursor)
    ]
    altered += [cursor[:-1], cursor + "A", cursor + "=", f" {cursor}", cursor.swapcase()]

    for bad in altered:
        response = http.get(LEDGER.format("c1"), params={"limit": 1, "cursor": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_cursor", bad


def test_a_cursor_serves_only_the_customer_and_filters_it_was_issued_for(http, deposits):
    cursor = first_cursor(http)
    filtered = first_cursor(http, operation_type="GRANT")

    for customer_id, params in [
        ("c2", {"cursor": cursor}),
        ("c1", {"cursor": cursor, "operation_type": "GRANT"}),
        ("c1", {"cursor": cursor, "transaction_id": "x"}),
        ("c1", {"cursor": filtered}),
        ("c1", {"cursor": filtered, "operation_type": "CONSUME"}),
    ]:
        response = http.get(LEDGER.format(customer_id), params=params)
        assert response.status_code == 400, (customer_id, params)
        assert response.json()["error"]["code"] == "invalid_cursor"
    good = http.get(LEDGER.format("c1"), params={"cursor": filtered, "operation_type": "GRANT"})
    assert good.status_code == 200


@pytest.mark.django_db
def test_cursors_outlive_a_key_rotation_through_the_fallbacks_only(project):
    for _ in range(2):
        grant(project, 1)
    customer = project.customers.get()
    with override_settings(SECRET_KEY="old-" * 13, SECRET_KEY_FALLBACKS=[]):
        cursor = ledger_page(LedgerQuery(customer=customer, limit=1)).next_cursor
    query = LedgerQuery(customer=customer, limit=1, cursor=cursor)

    with override_settings(SECRET_KEY="new-" * 13, SECRET_KEY_FALLBACKS=["old-" * 13]):
        assert len(ledger_page(query).items) == 1
    with (
        override_settings(SECRET_KEY="new-" * 13, SECRET_KEY_FALLBACKS=[]),
        pytest.raises(InvalidCursor),
    ):
        ledger_page(query)


@pytest.mark.django_db
def test_a_token_sealed_for_another_purpose_is_not_a_cursor(project):
    for _ in range(2):
        grant(project, 1)
    customer = project.customers.get()
    query = LedgerQuery(customer=customer, limit=1)
    position = struct.pack(">qq", 0, 1)
    context = cursor_context(query)

    other = sealing.seal(position, purpose="something.else", context=context)
    right = sealing.seal(position, purpose=CURSOR_PURPOSE, context=context)

    with pytest.raises(InvalidCursor):
        ledger_page(LedgerQuery(customer=customer, limit=1, cursor=other))
    assert ledger_page(LedgerQuery(customer=customer, limit=1, cursor=right)).items == []
