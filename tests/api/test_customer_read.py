"""GET /v1/customers/{customer_id}: profile, balance, open accounts and the wallet breakdown."""

import datetime as dt
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db.models import JSONField, Value
from django.test import Client
from django.utils import timezone

from customers.models import Customer, Project
from ledger import services
from ledger.models import CreditAccount
from tests.support import deposit

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
FAR_FUTURE = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def api(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")


def counters(total, used=0, frozen=0) -> dict:
    return {"total": total, "used": used, "frozen": frozen, "available": total - used - frozen}


def account_view(account_id, wallet, source, total, used=0, frozen=0, starts=None, expires=None):
    return {
        "account_id": account_id,
        "account_type": "CREDIT",
        "credit_type": wallet,
        "wallet": wallet,
        "source": source,
        **counters(total, used, frozen),
        "starts_at": starts,
        "expires_at": expires,
    }


def source_view(source, total, used=0, frozen=0, starts=None, expires=None):
    return {
        "source": source,
        **counters(total, used, frozen),
        "starts_at": starts,
        "expires_at": expires,
    }


def test_customer_view_has_profile_balance_open_accounts_and_sorted_wallets(api, project):
    expiring = "2099-01-01T00:00:00.000Z"
    a1 = deposit(
        project,
        1000,
        now=T0 + 1 * SECOND,
        profile=services.Profile(
            name="Alice", email="a@x.com", metadata={"plan": "pro", "limits": {"rpm": 60}}
        ),
    ).account_id
    a2 = deposit(
        project, 500, now=T0 + 2 * SECOND, source="free_trial", expires_at=FAR_FUTURE
    ).account_id
    a3 = deposit(project, 200, now=T0 + 3 * SECOND, wallet="alpha").account_id
    a4 = deposit(project, 300, now=T0 + 4 * SECOND, wallet="alpha").account_id
    deposit(project, 50, now=T0 + 5 * SECOND, wallet="spent")
    deposit(project, 700, now=T0 + 6 * SECOND, starts_at=FAR_FUTURE)  # not started: left out
    deposit(
        project, 400, now=T0 + 7 * SECOND, expires_at=T0 + dt.timedelta(days=1)
    )  # expired: left out
    deposit(project, 9, now=T0 + 8 * SECOND, customer_id="someone-else")
    services.deduct(
        project=project,
        customer_id="c1",
        transaction_id="d1",
        amount=Decimal(50),
        actor="test",
        wallets=["spent"],
    )
    services.freeze(
        project=project,
        customer_id="c1",
        transaction_id="f1",
        amount=Decimal(100),
        actor="test",
        wallets=["alpha"],
    )

    response = api.get("/v1/customers/c1")

    assert response.status_code == 200
    assert response.json() == {
        "id": "c1",
        "name": "Alice",
        "email": "a@x.com",
        "metadata": {"plan": "pro", "limits": {"rpm": 60}},
        "created_at": "2026-01-01T00:00:01.000Z",
        "balance": counters(2050, used=50, frozen=100),
        # The default wallet first; each group in consumption order (soonest expiry first,
        # then oldest); the exhausted account in "spent" is not listed.
        "accounts": [
            account_view(a2, "default", "free_trial", 500, expires=expiring),
            account_view(a1, "default", "default", 1000),
            account_view(a3, "alpha", "default", 200, frozen=100),
            account_view(a4, "alpha", "default", 300),
        ],
        "wallets": {
            "alpha": {
                **counters(500, frozen=100),
                "sources": [source_view("default", 500, frozen=100)],
            },
            "default": {
                **counters(1500),
                "sources": [
                    source_view("free_trial", 500, expires=expiring),
                    source_view("default", 1000),
                ],
            },
            "spent": {**counters(50, used=50), "sources": []},
        },
    }
    assert list(response.json()["wallets"]) == ["alpha", "default", "spent"]


def test_sources_group_accounts_by_source_and_validity_window(api, project):
    window = {"starts_at": T0, "expires_at": FAR_FUTURE}
    deposit(project, 1, now=T0 + 1 * SECOND, source="trial", **window)
    deposit(project, 2, now=T0 + 2 * SECOND, source="trial")
    deposit(project, 4, now=T0 + 3 * SECOND, source="trial", **window)
    deposit(project, 8, now=T0 + 4 * SECOND, source="paid")

    wallet = api.get("/v1/customers/c1").json()["wallets"]["default"]

    dates = {"starts": "2026-01-01T00:00:00.000Z", "expires": "2099-01-01T00:00:00.000Z"}
    assert wallet == {
        **counters(15),
        "sources": [
            source_view("trial", 5, **dates),
            source_view("trial", 2),
            source_view("paid", 8),
        ],
    }


def test_customer_with_only_inactive_accounts_has_zero_balance_and_no_wallets(api, project):
    deposit(project, 5, starts_at=FAR_FUTURE)
    deposit(project, 7, expires_at=T0)

    body = api.get("/v1/customers/c1").json()

    assert (body["balance"], body["accounts"], body["wallets"]) == (counters(0), [], {})
    assert CreditAccount.objects.count() == 2


def test_account_counts_from_the_moment_it_starts_without_any_background_job(api, project):
    starts_at = timezone.now() + 2 * SECOND
    deposit(project, 3, starts_at=starts_at)
    assert api.get("/v1/customers/c1").json()["balance"] == counters(0)
    assert timezone.now() < starts_at  # the read above really happened before the start

    time.sleep(max(0.0, (starts_at - timezone.now()).total_seconds()) + 0.05)

    assert api.get("/v1/customers/c1").json()["balance"] == counters(3)


def test_unknown_customer_is_not_found(api):
    response = api.get("/v1/customers/nobody")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "customer not found",
            "type": "not_found",
            "code": "customer_not_found",
            "details": {"customer_id": "nobody"},
            "retryable": False,
            "request_id": response.headers["X-Request-Id"],
        }
    }


def test_another_projects_key_gets_customer_not_found_for_our_customer(api, project, make_key):
    deposit(project, 10)
    other = Client(HTTP_AUTHORIZATION=f"Bearer {make_key(Project.objects.create(name='other'))}")

    response = other.get("/v1/customers/c1")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert response.json()["error"]["details"] == {"customer_id": "c1"}
    assert api.get("/v1/customers/c1").status_code == 200


def test_same_customer_id_in_two_projects_is_two_customers(api, project, make_key):
    other_project = Project.objects.create(name="other")
    other = Client(HTTP_AUTHORIZATION=f"Bearer {make_key(other_project)}")
    deposit(project, 10)
    deposit(other_project, 3)

    assert api.get("/v1/customers/c1").json()["balance"] == counters(10)
    assert other.get("/v1/customers/c1").json()["balance"] == counters(3)


def test_get_customers_deposit_reads_the_customer_named_deposit(api, project):
    assert api.get("/v1/customers/deposit").status_code == 404
    deposit(project, 4, customer_id="deposit")

    response = api.get("/v1/customers/deposit")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["balance"]) == ("deposit", counters(4))


# --- over real HTTP: ids are routed from the undecoded request target -----------------------

ODD_IDS = [
    "a/b",
    "/leading/and/trailing/",
    "user+1@x.com",
    "with space",
    "  ",
    "héllo wörld",
    "客户/42",
    "emoji 🎉",
    "100%",
    "%2F",
    "a?b#c&d=e",
    "ledger",
    "deposit",
    "c" * 255,
    "é" * 255,
]


def test_odd_customer_ids_round_trip_over_http(http):
    seen = {}
    for index, customer_id in enumerate(ODD_IDS, start=1):
        deposited = http.post(
            "/v1/customers/deposit", json={"customer_id": customer_id, "amount": index}
        )
        assert deposited.status_code == 200, (customer_id, deposited.text)
        read = http.get(f"/v1/customers/{quote(customer_id, safe='')}")
        seen[customer_id] = (read.status_code, read.json().get("id"), read.json().get("balance"))

    assert seen == {
        customer_id: (200, customer_id, counters(index))
        for index, customer_id in enumerate(ODD_IDS, start=1)
    }


def test_get_customers_deposit_over_http_reads_the_customer_named_deposit(http):
    http.post("/v1/customers/deposit", json={"customer_id": "deposit", "amount": 2})

    response = http.get("/v1/customers/deposit")

    assert response.status_code == 200
    assert response.json()["id"] == "deposit"


@pytest.mark.parametrize(
    ("raw_id", "reason"),
    [
        ("c" * 256, {"reason": "too_long", "max_length": 255}),
        (quote("é" * 256, safe=""), {"reason": "too_long", "max_length": 255}),
        ("a%00b", {"reason": "nul_character"}),
        ("%FF", {"reason": "not_utf8"}),
        ("%C3%28", {"reason": "not_utf8"}),
    ],
    ids=["256 chars", "256 non-ascii chars", "nul", "invalid utf-8", "bad utf-8 sequence"],
)
def test_bad_path_customer_id_is_an_invalid_request_naming_customer_id(http, raw_id, reason):
    response = http.get(f"/v1/customers/{raw_id}")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "invalid request",
            "type": "bad_request",
            "code": "invalid_request",
            "details": {"field": "customer_id", **reason},
            "retryable": False,
            "request_id": response.headers["X-Request-Id"],
        }
    }


def test_another_projects_key_gets_not_found_over_http(http, service, make_key):
    http.post("/v1/customers/deposit", json={"customer_id": "a/b", "amount": 1})
    other_key = make_key(Project.objects.create(name="other"))

    response = http.get("/v1/customers/a%2Fb", headers={"Authorization": f"Bearer {other_key}"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


@pytest.mark.parametrize("stored", [[1, 2, 3], "str", 42, None, True])
def test_a_stored_profile_the_api_would_refuse_reads_as_200_with_empty_metadata(
    api, project, stored
):
    deposit(project, 10, customer_id="c1")
    Customer.objects.filter(external_id="c1").update(
        metadata=Value(stored, JSONField()), email="not-an-email"
    )

    response = api.get("/v1/customers/c1")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["metadata"], body["email"], body["balance"]["available"]) == (
        {},
        "not-an-email",
        10,
    )
