"""`POST /v1/billing/quote` and `GET /v1/customers/{id}?as_of=...` over HTTP."""

import datetime as dt
import time

import httpx
import pytest
from django.utils import timezone

from ledger.models import LedgerEntry, Transaction
from tests.support import assert_error, envelope

pytestmark = pytest.mark.http

QUOTE = "/v1/billing/quote"


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def deposit(http, amount, **fields) -> str:
    body = {"customer_id": "c1", "amount": amount, **fields}
    return ok(http.post("/v1/customers/deposit", json=body))["account_id"]


def detail(account_id, amount, wallet="default", source="default") -> dict:
    return {
        "account_id": account_id,
        "wallet": wallet,
        "credit_type": wallet,
        "source": source,
        "amount": amount,
    }


def test_quote_names_the_accounts_a_deduct_then_draws_and_the_balance_after_it(http):
    never = deposit(http, 100)
    sooner = deposit(http, 10, expires_at="2999-01-01T00:00:00Z")
    promo = deposit(http, 5, wallet="promo", source="campaign", expires_at="2998-01-01T00:00:00Z")
    ok(
        http.post(
            "/v1/billing/freeze", json={"customer_id": "c1", "transaction_id": "f", "amount": 2}
        )
    )
    body = {"customer_id": "c1", "amount": 20.5, "description": "render"}
    entries_before = LedgerEntry.objects.count()

    quote = ok(http.post(QUOTE, json=body))

    assert quote == {
        "customer_id": "c1",
        "amount": 20.5,
        "quote_details": [
            detail(promo, 3, "promo", "campaign"),
            detail(sooner, 10),
            detail(never, 7.5),
        ],
        "balance_before": {"total": 115, "used": 0, "frozen": 2, "available": 113},
        "balance_after": {"total": 115, "used": 20.5, "frozen": 2, "available": 92.5},
        "quoted_at": quote["quoted_at"],
    }
    assert LedgerEntry.objects.count() == entries_before
    deducted = ok(http.post("/v1/billing/deduct", json={**body, "transaction_id": "job"}))
    assert deducted["deduct_details"] == quote["quote_details"]
    assert ok(http.get("/v1/customers/c1"))["balance"] == quote["balance_after"]


def test_quote_restricted_to_a_wallet_draws_only_there(http):
    deposit(http, 100)
    promo = deposit(http, 5, wallet="promo")

    quote = ok(http.post(QUOTE, json={"customer_id": "c1", "amount": 4, "wallet": "promo"}))

    assert quote["quote_details"] == [detail(promo, 4, "promo")]
    assert quote["balance_after"]["available"] == 101


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        (
            {"customer_id": "c1", "amount": 100.000001},
            400,
            "insufficient_balance",
            {"requested": 100.000001, "available": 100, "wallet": None},
        ),
        (
            {"customer_id": "c1", "amount": 1, "credit_types": ["promo"]},
            400,
            "insufficient_balance_in_selected_credit_types",
            {"requested": 1, "available": 0, "wallet": "promo"},
        ),
        (
            {"customer_id": "nobody", "amount": 1},
            404,
            "customer_not_found",
            {"customer_id": "nobody"},
        ),
        ({"customer_id": "c1", "amount": -1}, 400, "amount_must_be_positive", {"field": "amount"}),
        ({"amount": 1}, 400, "customer_id_required", {"field": "customer_id"}),
    ],
)
def test_quote_gets_the_error_the_deduct_would_get_and_writes_nothing(
    http, body, status, code, details
):
    deposit(http, 100)
    entries_before = LedgerEntry.objects.count()

    quoted = http.post(QUOTE, json=body)
    deducted = http.post("/v1/billing/deduct", json={**body, "transaction_id": "t"})

    assert_error(quoted, status, code, details)
    assert_error(deducted, status, code, details)
    assert LedgerEntry.objects.count() == entries_before
    assert not Transaction.objects.exists()


def test_as_of_after_the_last_change_equals_the_live_read(http):
    deposit(http, 100)
    deposit(http, 7, wallet="promo", expires_at="2999-01-01T00:00:00Z")
    ok(
        http.post(
            "/v1/billing/deduct", json={"customer_id": "c1", "transaction_id": "d", "amount": 8}
        )
    )
    ok(
        http.post(
            "/v1/billing/freeze", json={"customer_id": "c1", "transaction_id": "f", "amount": 3}
        )
    )
    after_last_change = timezone.now()
    time.sleep(0.01)

    live = ok(http.get("/v1/customers/c1"))
    as_of = ok(http.get("/v1/customers/c1", params={"as_of": after_last_change.isoformat()}))

    assert as_of == live


def test_as_of_before_a_charge_reads_the_balance_before_it(http):
    deposit(http, 100)
    time.sleep(0.01)
    before_charge = timezone.now()
    time.sleep(0.01)
    ok(
        http.post(
            "/v1/billing/deduct", json={"customer_id": "c1", "transaction_id": "d", "amount": 8}
        )
    )

    then = ok(http.get("/v1/customers/c1", params={"as_of": before_charge.isoformat()}))

    assert then["balance"] == {"total": 100, "used": 0, "frozen": 0, "available": 100}
    assert ok(http.get("/v1/customers/c1"))["balance"]["available"] == 92


@pytest.mark.parametrize(
    "as_of",
    ["yesterday", "2026-01-01T00:00:00", "", "2999-01-01T00:00:00Z"],
    ids=["not a date", "no timezone", "empty", "over ten years ahead"],
)
def test_an_as_of_that_is_not_an_instant_within_ten_years_is_invalid_as_of(http, as_of):
    deposit(http, 100)

    response = http.get("/v1/customers/c1", params={"as_of": as_of})

    assert_error(response, 400, "invalid_as_of", {"field": "as_of"})


def test_as_of_before_the_customer_existed_is_customer_not_found(http):
    deposit(http, 100)
    long_ago = (timezone.now() - dt.timedelta(days=1)).isoformat()

    response = http.get("/v1/customers/c1", params={"as_of": long_ago})

    assert response.json() == envelope(response, "customer_not_found", {"customer_id": "c1"})
    assert response.status_code == 404


def test_quote_and_as_of_are_in_the_openapi_schema(http):
    schema = http.get("/v1/openapi.json").json()

    assert "post" in schema["paths"]["/v1/billing/quote"]
    assert "QuoteResult" in schema["components"]["schemas"]
    parameters = schema["paths"]["/v1/customers/{customer_id}"]["get"]["parameters"]
    assert "as_of" in {parameter["name"] for parameter in parameters}
