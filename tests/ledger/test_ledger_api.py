"""GET /v1/customers/{customer_id}/ledger: filters, order, cursor walks, total_count."""

import datetime as dt
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.core import signing
from django.db import connection
from django.test import Client

from credits_project import sealing
from ledger import services
from ledger.models import LedgerEntry
from ledger.selectors.ledger_pages import CURSOR_PURPOSE, LedgerQuery, cursor_context
from tests.support import deposit

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def client(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")


def ledger(client: Client, customer_id: str, **params) -> tuple[int, dict]:
    response = client.get(f"/v1/customers/{quote(customer_id, safe='')}/ledger", params)
    return response.status_code, response.json()


def walk(client: Client, customer_id: str, limit: int, **filters) -> list[str]:
    seen, cursor = [], None
    for _ in range(10_000):
        params = {"limit": limit, **filters, **({"cursor": cursor} if cursor else {})}
        status, page = ledger(client, customer_id, **params)
        assert status == 200, page
        seen += [item["id"] for item in page["items"]]
        assert (page["next_cursor"] is not None) == page["has_more"]
        if not page["has_more"]:
            return seen
        cursor = page["next_cursor"]
    raise AssertionError("walk did not end")


def test_entries_come_newest_first_with_every_field(client, project):
    deposit(
        project,
        100,
        idempotency_key="dep-1",
        business_type="ORDER",
        description="top-up",
        now=T0,
    )
    services.freeze(
        project=project,
        customer_id="c1",
        transaction_id="f1",
        amount=Decimal(30),
        actor="test",
        business_type="TASK",
        description="job",
        now=T0 + dt.timedelta(seconds=1),
    )
    services.consume(
        project=project,
        transaction_id="f1",
        actual_amount=Decimal("12.5"),
        actor="test",
        now=T0 + dt.timedelta(seconds=2),
    )

    status, page = ledger(client, "c1")

    assert status == 200
    assert [(i["operation_type"], i["amount"]) for i in page["items"]] == [
        ("UNFREEZE", 17.5),
        ("CONSUME", 12.5),
        ("FREEZE", 30),
        ("GRANT", 100),
    ]
    grant = page["items"][-1]
    account_id = grant["account_id"]
    assert grant == {
        "id": grant["id"],
        "operation_type": "GRANT",
        "amount": 100,
        "wallet": "default",
        "credit_type": "default",
        "source": "default",
        "account_id": account_id,
        "transaction_id": "dep-1",
        "business_type": "ORDER",
        "description": "top-up",
        "status": "ACTIVE",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    assert isinstance(grant["id"], str) and isinstance(account_id, str)
    assert {i["business_type"] for i in page["items"][:3]} == {"TASK"}
    assert {i["description"] for i in page["items"][:3]} == {"job"}
    assert {i["transaction_id"] for i in page["items"][:3]} == {"f1"}
    assert page["total_count"] == 4 and page["has_more"] is False
    assert page["next_cursor"] is None


def test_status_tells_pending_active_and_expired_accounts(client, project):
    now = dt.datetime.now(dt.UTC)
    deposit(project, 1, starts_at=now + dt.timedelta(days=1))
    deposit(project, 2)
    deposit(
        project,
        3,
        starts_at=now - dt.timedelta(days=2),
        expires_at=now - dt.timedelta(days=1),
    )

    status, page = ledger(client, "c1")

    assert status == 200
    assert {i["amount"]: i["status"] for i in page["items"]} == {
        1: "PENDING",
        2: "ACTIVE",
        3: "EXPIRED",
    }


def test_expire_entries_carry_the_grant_business_type_and_no_transaction(client, project):
    deposit(project, 5, business_type="FREE_TRIAL", expires_at=T0 + dt.timedelta(days=1), now=T0)
    services.expire_due(now=T0 + dt.timedelta(days=2))

    status, page = ledger(client, "c1", operation_type="EXPIRE")

    assert status == 200
    [item] = page["items"]
    assert (
        item["amount"],
        item["business_type"],
        item["description"],
        item["transaction_id"],
        item["status"],
    ) == (5, "FREE_TRIAL", "expired", None, "EXPIRED")
    assert page["total_count"] == 1


def test_operation_type_filter_counts_and_deposit_is_an_alias_of_grant(client, project):
    for _ in range(3):
        deposit(project, 10)
    services.deduct(
        project=project, customer_id="c1", transaction_id="d1", amount=Decimal(15), actor="test"
    )

    _, grants = ledger(client, "c1", operation_type="GRANT")
    _, deposits = ledger(client, "c1", operation_type="DEPOSIT")
    _, consumes = ledger(client, "c1", operation_type="CONSUME")
    _, everything = ledger(client, "c1")

    assert grants == deposits
    assert grants["total_count"] == 3 and len(grants["items"]) == 3
    assert consumes["total_count"] == 2
    assert {i["operation_type"] for i in consumes["items"]} == {"CONSUME"}
    assert everything["total_count"] == 5


def test_transaction_id_filter_returns_only_that_transactions_entries(client, project):
    deposit(project, 100)
    services.freeze(
        project=project, customer_id="c1", transaction_id="f1", amount=Decimal(5), actor="test"
    )
    services.freeze(
        project=project, customer_id="c1", transaction_id="f2", amount=Decimal(7), actor="test"
    )
    services.unfreeze(project=project, transaction_id="f1", actor="test")

    status, page = ledger(client, "c1", transaction_id="f1")

    assert status == 200
    assert [(i["operation_type"], i["amount"]) for i in page["items"]] == [
        ("UNFREEZE", 5),
        ("FREEZE", 5),
    ]
    assert page["total_count"] == 2


def test_a_walk_over_1000_entries_with_one_timestamp_returns_each_exactly_once(client, project):
    deposit(project, 1, now=T0)
    customer = project.customers.get()
    account = customer.accounts.get()
    LedgerEntry.objects.bulk_create(
        LedgerEntry(
            customer=customer,
            account=account,
            operation_type="GRANT",
            amount=1,
            actor="test",
            created_at=T0,
        )
        for _ in range(999)
    )

    seen = walk(client, "c1", limit=37)

    assert len(seen) == 1000
    assert len(set(seen)) == 1000
    assert seen == sorted(seen, key=int, reverse=True)
    _, first = ledger(client, "c1", limit=1)
    assert first["total_count"] == 1000


def test_entries_added_during_a_walk_never_repeat_or_skip_existing_ones(client, project):
    for i in range(25):
        deposit(project, 1, now=T0 + dt.timedelta(seconds=i // 5))
    existing = set(walk(client, "c1", limit=100))

    seen, cursor = [], None
    for step in range(100):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        status, page = ledger(client, "c1", **params)
        assert status == 200
        seen += [item["id"] for item in page["items"]]
        # New entries keep arriving, some with a timestamp equal to ones already walked.
        deposit(project, 1, now=T0 + dt.timedelta(seconds=step % 3))
        deposit(project, 1)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]

    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "1e2", "٣"])
def test_a_limit_outside_1_to_100_is_invalid(client, project, limit):
    deposit(project, 10)

    status, body = ledger(client, "c1", limit=limit)

    assert status == 400
    assert body["error"]["code"] == "invalid_limit"
    assert body["error"]["details"]["field"] == "limit"


def test_limit_bounds_are_accepted(client, project):
    deposit(project, 10)
    assert ledger(client, "c1", limit="1")[0] == 200
    assert ledger(client, "c1", limit="100")[0] == 200


def test_an_unknown_operation_type_is_invalid(client, project):
    deposit(project, 10)

    status, body = ledger(client, "c1", operation_type="grant")

    assert (status, body["error"]["code"]) == (400, "invalid_operation_type")


def cursor_for(client, customer_id, **filters) -> str:
    status, page = ledger(client, customer_id, limit=1, **filters)
    assert status == 200 and page["has_more"]
    return page["next_cursor"]


def test_a_forged_corrupted_or_foreign_cursor_is_invalid(client, project):
    for customer_id in ("c1", "c2"):
        deposit(project, 10, customer_id=customer_id)
        deposit(project, 10, customer_id=customer_id)
    good = cursor_for(client, "c1")
    forged = signing.dumps(
        [[1, None, None], ["2026-01-01T00:00:00+00:00", 10**9]], salt="wrong-salt"
    )

    for bad, params in [
        ("nonsense", {}),
        (good[:-3] + ("abc" if not good.endswith("abc") else "xyz"), {}),
        (forged, {}),
        (good, {"operation_type": "GRANT"}),  # issued for other filters
        (good, {"transaction_id": "x"}),
    ]:
        status, body = ledger(client, "c1", cursor=bad, **params)
        assert (status, body["error"]["code"]) == (400, "invalid_cursor"), (bad, params)

    status, body = ledger(client, "c2", cursor=good)  # another customer's cursor
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")


def test_a_cursor_with_a_well_sealed_but_malformed_payload_is_invalid(client, project):
    deposit(project, 10)
    customer = project.customers.get()
    context = cursor_context(LedgerQuery(customer=customer))
    for payload in (b"", b"short", b"\x00" * 15, b"\x00" * 17, b"\x7f" * 8 + b"\x00" * 8):
        cursor = sealing.seal(payload, purpose=CURSOR_PURPOSE, context=context)
        status, body = ledger(client, "c1", cursor=cursor)
        assert (status, body["error"]["code"]) == (400, "invalid_cursor"), payload


def test_another_projects_customer_is_not_found(client, project, make_key):
    from customers.models import Project

    other = Project.objects.create(name="other")
    deposit(other, 10, customer_id="theirs")

    status, body = ledger(client, "theirs")

    assert (status, body["error"]["code"]) == (404, "customer_not_found")


def test_the_ledger_read_costs_a_constant_number_of_queries(
    client, project, django_assert_max_num_queries
):
    for i in range(60):
        deposit(project, 1, now=T0 + dt.timedelta(seconds=i))
    client.get("/v1/health")  # makes the key's last_used_at fresh
    cursor = cursor_for(client, "c1")

    with django_assert_max_num_queries(4):
        status, _ = ledger(client, "c1", limit=50, cursor=cursor)
    assert status == 200


def test_total_count_is_read_from_trigger_kept_counters(client, project):
    deposit(project, 10)
    deposit(project, 10)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT operation_type, entries FROM ledger_ledgercounter c "
            "JOIN customers_customer u ON u.id = c.customer_id WHERE u.project_id = %s",
            [project.pk],
        )
        assert cursor.fetchall() == [("GRANT", 2)]
