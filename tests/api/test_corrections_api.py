"""Refunds, voids and credit limits over HTTP, against the service under gunicorn: each answer's
status and exact body, each error code, and customer ids with `/` in them."""

import re
from urllib.parse import quote

import httpx
import pytest

from tests.support import assert_error

pytestmark = pytest.mark.http

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def deposit(http: httpx.Client, amount=100, customer_id="c1", **fields) -> str:
    body = {"customer_id": customer_id, "amount": amount, **fields}
    return ok(http.post("/v1/customers/deposit", json=body))["account_id"]


def deduct(http: httpx.Client, transaction_id: str, amount, customer_id="c1", **fields) -> dict:
    body = {"customer_id": customer_id, "transaction_id": transaction_id, "amount": amount}
    return ok(http.post("/v1/billing/deduct", json={**body, **fields}))


def detail(account_id: str, amount, wallet="default", source="default") -> dict:
    return {
        "account_id": account_id,
        "wallet": wallet,
        "credit_type": wallet,
        "source": source,
        "amount": amount,
    }


def test_a_refund_answers_what_it_put_back_and_a_repeat_replays_it(http):
    account = deposit(http, 100)
    deduct(http, "job", 30)

    first = ok(
        http.post(
            "/v1/billing/refund",
            json={"transaction_id": "job", "refund_id": "r1", "amount": 12.5},
        )
    )
    again = ok(
        http.post(
            "/v1/billing/refund",
            json={"transaction_id": "job", "refund_id": "r1", "amount": 12.5},
        )
    )

    assert TIMESTAMP.fullmatch(first.pop("refunded_at"))
    assert first == {
        "transaction_id": "job",
        "refund_id": "r1",
        "refunded_amount": 12.5,
        "refund_details": [detail(account, 12.5)],
        "remaining_refundable": 17.5,
        "is_idempotent_replay": False,
    }
    again.pop("refunded_at")
    assert again == {**first, "is_idempotent_replay": True}
    state = ok(http.get("/v1/billing/transactions/job"))
    assert state["refunded_amount"] == 12.5
    ledger = ok(http.get("/v1/customers/c1/ledger", params={"operation_type": "REFUND"}))
    assert [(i["operation_type"], i["amount"], i["transaction_id"]) for i in ledger["items"]] == [
        ("REFUND", 12.5, "r1")
    ]


def test_refund_errors_each_have_their_code(http):
    deposit(http, 100)
    deduct(http, "job", 30)
    ok(
        http.post(
            "/v1/billing/freeze",
            json={"customer_id": "c1", "transaction_id": "open", "amount": 5},
        )
    )
    ok(http.post("/v1/billing/refund", json={"transaction_id": "job", "refund_id": "r1"}))

    cases = [
        ({"refund_id": "x"}, 400, "transaction_id_required", {"field": "transaction_id"}),
        ({"transaction_id": "job"}, 400, "refund_id_required", {"field": "refund_id"}),
        (
            {"transaction_id": "nope", "refund_id": "x"},
            404,
            "transaction_not_found",
            {"transaction_id": "nope"},
        ),
        (
            {"transaction_id": "open", "refund_id": "x"},
            400,
            "not_refundable",
            {"transaction_id": "open", "state": "FROZEN"},
        ),
        (
            {"transaction_id": "job", "refund_id": "r2"},
            400,
            "refund_exceeds_charge",
            {"requested": 0, "remaining_refundable": 0},
        ),
        (
            {"transaction_id": "job", "refund_id": "r1", "amount": 1},
            409,
            "idempotency_conflict",
            {"field": "refund_id"},
        ),
        (
            {"transaction_id": "job", "refund_id": "x", "amount": 0},
            400,
            "amount_must_be_positive",
            {"field": "amount"},
        ),
        (
            {"transaction_id": "job", "refund_id": "x", "amount": "5"},
            400,
            "invalid_amount",
            {"field": "amount"},
        ),
    ]
    for body, status, code, details in cases:
        assert_error(http.post("/v1/billing/refund", json=body), status, code, details)


def test_a_void_of_an_account_with_a_slash_in_its_customer_id(http):
    customer = "team/alice"
    account = deposit(http, 10, customer_id=customer)
    deduct(http, "job", 4, customer_id=customer)
    path = f"/v1/customers/{quote(customer, safe='')}/accounts/{account}/void"

    preview = ok(http.post(path, json={"void_id": "v1", "mode": "clawback", "dry_run": True}))
    voided = ok(http.post(path, json={"void_id": "v1", "mode": "clawback"}))
    again = ok(http.post(path, json={"void_id": "v1", "mode": "clawback"}))

    for body in (preview, voided, again):
        assert TIMESTAMP.fullmatch(body.pop("voided_at"))
    assert voided == {
        "void_id": "v1",
        "customer_id": customer,
        "account_id": account,
        "mode": "clawback",
        "voided_amount": 6,
        "clawed_back_amount": 4,
        "entries": [
            {"operation_type": "VOID", "amount": 6, "account_id": account, "wallet": "default"},
            {"operation_type": "DEBT", "amount": 4, "account_id": None, "wallet": "default"},
        ],
        "dry_run": False,
        "is_idempotent_replay": False,
    }
    assert preview == {**voided, "dry_run": True}
    assert again == {**voided, "is_idempotent_replay": True}
    read = ok(http.get(f"/v1/customers/{quote(customer, safe='')}"))
    assert read["balance"] == {
        "total": 0,
        "used": 0,
        "frozen": 0,
        "available": 0,
        "credit_limit": 0,
        "debt": 4,
    }


def test_void_errors_each_have_their_code(http):
    account = deposit(http, 10)
    theirs = deposit(http, 10, customer_id="c2")
    ok(http.post(f"/v1/customers/c1/accounts/{account}/void", json={"void_id": "v1"}))

    cases = [
        (f"/v1/customers/c1/accounts/{account}/void", {}, 400, "void_id_required",
         {"field": "void_id"}),
        (f"/v1/customers/c1/accounts/{account}/void", {"void_id": "v2", "mode": "all"}, 400,
         "invalid_void_mode", {"field": "mode"}),
        (f"/v1/customers/c1/accounts/{account}/void", {"void_id": "v2", "dry_run": "yes"}, 400,
         "invalid_request", {"field": "dry_run", "reason": "must_be_boolean"}),
        (f"/v1/customers/c1/accounts/{account}/void", {"void_id": "v2"}, 400,
         "account_already_voided", {"account_id": account}),
        (f"/v1/customers/c1/accounts/{theirs}/void", {"void_id": "v3"}, 404,
         "account_not_found", {"account_id": theirs}),
        ("/v1/customers/c1/accounts/abc/void", {"void_id": "v3"}, 404, "account_not_found",
         {"account_id": "abc"}),
        ("/v1/customers/nobody/accounts/1/void", {"void_id": "v3"}, 404, "customer_not_found",
         {"customer_id": "nobody"}),
        (f"/v1/customers/c1/accounts/{account}/void", {"void_id": "v1", "mode": "clawback"},
         409, "idempotency_conflict", {"field": "void_id"}),
    ]  # fmt: skip
    for path, body, status, code, details in cases:
        assert_error(http.post(path, json=body), status, code, details)


def test_a_credit_limit_lets_a_deduct_go_into_debt_and_a_deposit_pays_it_back(http):
    deposit(http, 10)

    limited = ok(http.post("/v1/customers/c1/credit-limit", json={"limit": 50}))
    charged = deduct(http, "job", 30)
    repaid = ok(
        http.post(
            "/v1/customers/deposit",
            json={"customer_id": "c1", "amount": 15, "idempotency_key": "pay"},
        )
    )

    assert TIMESTAMP.fullmatch(limited.pop("updated_at"))
    assert limited == {
        "customer_id": "c1",
        "wallet": None,
        "credit_limit": 50,
        "debt": 0,
        "frozen": 0,
        "available_on_credit": 50,
    }
    assert charged["on_credit_amount"] == 20
    assert repaid["repaid_amount"] == 15
    read = ok(http.get("/v1/customers/c1"))
    assert read["balance"] == {
        "total": 25,
        "used": 25,
        "frozen": 0,
        "available": 45,
        "credit_limit": 50,
        "debt": 5,
    }
    ledger = ok(http.get("/v1/customers/c1/ledger"))
    debt, repay = (
        next(i for i in ledger["items"] if i["operation_type"] == kind)
        for kind in ("DEBT", "REPAY")
    )
    assert (debt["account_id"].startswith("credit_line:"), debt["wallet"], debt["source"]) == (
        True,
        None,
        "credit_line",
    )
    assert (repay["amount"], repay["transaction_id"]) == (15, "pay")


def test_credit_limit_errors_each_have_their_code(http):
    deposit(http, 10)

    for body, code in (
        ({}, "invalid_credit_limit"),
        ({"limit": -1}, "invalid_credit_limit"),
        ({"limit": "5"}, "invalid_credit_limit"),
        ({"limit": 10**13}, "invalid_credit_limit"),
    ):
        assert_error(
            http.post("/v1/customers/c1/credit-limit", json=body), 400, code, {"field": "limit"}
        )
    assert_error(
        http.post("/v1/customers/c1/credit-limit", json={"limit": 1, "wallet": ""}),
        400,
        "invalid_request",
        {"field": "wallet", "reason": "bad_length", "min_length": 1, "max_length": 64},
    )
    assert_error(
        http.post("/v1/customers/nobody/credit-limit", json={"limit": 1}),
        404,
        "customer_not_found",
        {"customer_id": "nobody"},
    )


def test_the_new_routes_are_in_the_openapi_schema(http):
    paths = http.get("/v1/openapi.json").json()["paths"]

    assert {"/v1/billing/refund", "/v1/customers/{customer_id}/credit-limit"} <= set(paths)
    assert "/v1/customers/{customer_id}/accounts/{account_id}/void" in paths
