"""The billing endpoints over HTTP, against the service under gunicorn: freeze, consume,
unfreeze, deduct and the transaction read. Each answer is checked for its status and exact body."""

import datetime as dt
import re
from urllib.parse import quote

import httpx
import pytest
from django.utils import timezone

from customers.models import Project
from ledger.services import settle_due
from tests.support import assert_error

pytestmark = pytest.mark.http

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def post(http: httpx.Client, path: str, body: dict) -> httpx.Response:
    return http.post(path, json=body)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def deposit(http: httpx.Client, amount=100, customer_id="c1", **fields) -> str:
    """Deposit over HTTP; returns the new account's id."""
    body = ok(
        post(
            http, "/v1/customers/deposit", {"customer_id": customer_id, "amount": amount, **fields}
        )
    )
    return body["account_id"]


def item(account_id: str, amount, wallet: str = "default", source: str = "default") -> dict:
    return {
        "account_id": account_id,
        "wallet": wallet,
        "credit_type": wallet,
        "source": source,
        "amount": amount,
    }


def instant(value: str) -> dt.datetime:
    assert TIMESTAMP.fullmatch(value), value
    return dt.datetime.fromisoformat(value)


def assert_recent(value: str, before: dt.datetime, offset: dt.timedelta = dt.timedelta()) -> None:
    """`value` is a rendered timestamp between `before` and now, shifted by `offset`."""
    moment = instant(value)
    after = timezone.now()
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) + offset <= moment
    assert moment <= after + offset


def freeze(http, transaction_id="job", amount=10, customer_id="c1", **fields) -> httpx.Response:
    body = {"customer_id": customer_id, "transaction_id": transaction_id, "amount": amount}
    return post(http, "/v1/billing/freeze", {**body, **fields})


def deduct(http, transaction_id="order", amount=10, customer_id="c1", **fields) -> httpx.Response:
    body = {"customer_id": customer_id, "transaction_id": transaction_id, "amount": amount}
    return post(http, "/v1/billing/deduct", {**body, **fields})


def consume(http, transaction_id="job", **fields) -> httpx.Response:
    return post(http, "/v1/billing/consume", {"transaction_id": transaction_id, **fields})


def unfreeze(http, transaction_id="job") -> httpx.Response:
    return post(http, "/v1/billing/unfreeze", {"transaction_id": transaction_id})


def balance(http, customer_id="c1") -> dict:
    return ok(http.get(f"/v1/customers/{customer_id}"))["balance"]


@pytest.fixture
def other_http(service, make_key) -> httpx.Client:
    """A client of another project, on the same service."""
    key = make_key(Project.objects.create(name="other-project"))
    with httpx.Client(
        base_url=service.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


# --- freeze --------------------------------------------------------------------------------


def test_freeze_answers_with_the_held_accounts_in_consumption_order(http):
    never = deposit(http, 100)
    later = deposit(http, 10, wallet="promo", source="campaign", expires_at="2999-01-02T00:00:00Z")
    sooner = deposit(http, 2.5, expires_at="2999-01-01T00:00:00+02:00")

    body = ok(freeze(http, amount=20.000001, business_type="TASK", description="job"))

    assert body == {
        "transaction_id": "job",
        "frozen_amount": 20.000001,
        "freeze_details": [
            item(sooner, 2.5),
            item(later, 10, "promo", "campaign"),
            item(never, 7.500001),
        ],
        "unfreeze_after": None,
        "consume_after": None,
        "is_idempotent_replay": False,
    }
    assert balance(http) == {
        "total": 112.5,
        "used": 0,
        "frozen": 20.000001,
        "available": 92.499999,
    }


def test_freeze_amounts_render_exactly_as_json_numbers(http):
    deposit(http, 100)

    response = freeze(http, amount=0.000001)

    assert response.status_code == 200
    assert '"frozen_amount":0.000001,' in response.text
    assert '"amount":0.000001}' in response.text


@pytest.mark.parametrize(
    ("field", "seconds"),
    [
        ("unfreeze_after_seconds", 1),
        ("unfreeze_after_seconds", 2_592_000),
        ("consume_after_seconds", 60),
        ("consume_after_seconds", 604_800),
    ],
)
def test_freeze_with_a_ttl_answers_an_absolute_deadline(http, field, seconds):
    deposit(http, 100)
    other = ({"unfreeze_after_seconds", "consume_after_seconds"} - {field}).pop()
    before = timezone.now()

    body = ok(freeze(http, **{field: seconds, other: None}))

    assert body[other.removesuffix("_seconds")] is None
    assert_recent(body[field.removesuffix("_seconds")], before, dt.timedelta(seconds=seconds))


def test_freeze_with_both_ttls_is_invalid_auto_settlement(http):
    deposit(http, 100)

    response = freeze(http, unfreeze_after_seconds=60, consume_after_seconds=60)

    assert_error(response, 400, "invalid_auto_settlement", {"field": "consume_after_seconds"})
    assert balance(http)["frozen"] == 0


@pytest.mark.parametrize(
    ("field", "maximum", "value"),
    [
        ("unfreeze_after_seconds", 2_592_000, 0),
        ("unfreeze_after_seconds", 2_592_000, -1),
        ("unfreeze_after_seconds", 2_592_000, 2_592_001),
        ("unfreeze_after_seconds", 2_592_000, 60.0),
        ("unfreeze_after_seconds", 2_592_000, "60"),
        ("unfreeze_after_seconds", 2_592_000, True),
        ("consume_after_seconds", 604_800, 0),
        ("consume_after_seconds", 604_800, 604_801),
        ("consume_after_seconds", 604_800, 60.0),
        ("consume_after_seconds", 604_800, "60"),
        ("consume_after_seconds", 604_800, True),
        ("consume_after_seconds", 604_800, [60]),
    ],
)
def test_freeze_with_a_ttl_out_of_range_or_not_an_integer_is_invalid(http, field, maximum, value):
    deposit(http, 100)

    response = freeze(http, **{field: value})

    assert_error(response, 400, "invalid_auto_settlement_ttl", {"field": field, "maximum": maximum})


def test_freeze_ttl_in_exponent_notation_is_not_an_integer(http):
    deposit(http, 100)

    response = http.post(
        "/v1/billing/freeze",
        content=b'{"customer_id":"c1","transaction_id":"t","amount":1,"consume_after_seconds":6e1}',
        headers={"Content-Type": "application/json"},
    )

    assert_error(
        response,
        400,
        "invalid_auto_settlement_ttl",
        {"field": "consume_after_seconds", "maximum": 604_800},
    )


# --- wallet restriction --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
@pytest.mark.parametrize(
    ("restriction", "field"),
    [
        ({"credit_types": []}, "credit_types"),
        ({"credit_types": "promo"}, "credit_types"),
        ({"credit_types": {"promo": True}}, "credit_types"),
        ({"credit_types": [""]}, "credit_types"),
        ({"credit_types": ["promo", 1]}, "credit_types"),
        ({"credit_types": ["promo", None]}, "credit_types"),
        ({"wallet": ""}, "wallet"),
        ({"wallet": 5}, "wallet"),
        ({"wallet": ["promo"]}, "wallet"),
        ({"wallet": "promo", "credit_types": ["promo"]}, "credit_types"),
        ({"wallet": None, "credit_types": []}, "credit_types"),
    ],
    ids=[
        "empty-list",
        "string",
        "object",
        "empty-name",
        "number-name",
        "null-name",
        "empty-wallet",
        "number-wallet",
        "list-wallet",
        "both-forms",
        "null-wallet-empty-list",
    ],
)
def test_invalid_wallet_restriction_is_invalid_credit_types(http, path, restriction, field):
    deposit(http, 100, wallet="promo")
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 1, **restriction}

    response = post(http, path, body)

    assert_error(response, 400, "invalid_credit_types", {"field": field})
    assert balance(http) == {"total": 100, "used": 0, "frozen": 0, "available": 100}


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
@pytest.mark.parametrize(
    "restriction",
    [
        {"credit_types": ["promo"]},
        {"wallet": "promo"},
        {"credit_types": ["promo"], "wallet": None},
        {"wallet": "promo", "credit_types": None},
    ],
    ids=["credit-types", "wallet", "null-wallet", "null-credit-types"],
)
def test_either_restriction_form_limits_the_charge_to_that_wallet(http, path, restriction):
    deposit(http, 100, expires_at="2999-01-01T00:00:00Z")
    promo = deposit(http, 100, wallet="promo")
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 7, **restriction}

    result = ok(post(http, path, body))

    details = "freeze_details" if path.endswith("freeze") else "deduct_details"
    assert result[details] == [item(promo, 7, "promo")]


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_null_restrictions_count_as_absent(http, path):
    sooner = deposit(http, 5, wallet="promo", expires_at="2999-01-01T00:00:00Z")
    default = deposit(http, 100)
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 7}

    result = ok(post(http, path, {**body, "credit_types": None, "wallet": None}))

    details = "freeze_details" if path.endswith("freeze") else "deduct_details"
    assert result[details] == [item(sooner, 5, "promo"), item(default, 2)]


@pytest.mark.parametrize(
    ("first", "repeat"),
    [
        ({"wallet": "promo"}, {"credit_types": ["promo"]}),
        ({"credit_types": ["promo"]}, {"wallet": "promo"}),
        ({"credit_types": ["promo", "gold"]}, {"credit_types": ["gold", "promo", "gold"]}),
    ],
    ids=["wallet-then-list", "list-then-wallet", "order-and-duplicates"],
)
@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_the_same_wallets_in_another_form_replay(http, path, first, repeat):
    deposit(http, 100, wallet="promo")
    deposit(http, 100, wallet="gold")
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 7}
    original = ok(post(http, path, {**body, **first}))

    again = ok(post(http, path, {**body, **repeat}))

    assert again == {**original, "is_idempotent_replay": True}
    assert balance(http)["available"] == 193


# --- balance errors ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_charge_above_the_available_balance_is_insufficient_balance(http, path):
    deposit(http, 100)
    deposit(http, 1000, expires_at="2001-01-01T00:00:00Z")  # already expired
    ok(deduct(http, "spent", 30))
    ok(freeze(http, "held", 50))
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 500}

    response = post(http, path, body)

    assert_error(
        response,
        400,
        "insufficient_balance",
        {"requested": 500, "available": 20, "wallet": None},
    )
    assert balance(http) == {"total": 100, "used": 30, "frozen": 50, "available": 20}
    assert_error(
        http.get("/v1/billing/transactions/t1"),
        404,
        "transaction_not_found",
        {"transaction_id": "t1"},
    )


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_charge_of_one_micro_credit_above_available_is_refused_and_exactly_available_passes(
    http, path
):
    deposit(http, 100)
    ok(deduct(http, "spent", 30.5))
    body = {"customer_id": "c1", "transaction_id": "t1"}

    above = post(http, path, {**body, "amount": 69.500001})

    assert_error(
        above,
        400,
        "insufficient_balance",
        {"requested": 69.500001, "available": 69.5, "wallet": None},
    )
    ok(post(http, path, {**body, "amount": 69.5}))
    assert balance(http)["available"] == 0


def test_consume_overage_of_one_micro_credit_above_available_is_refused_then_exact_passes(http):
    deposit(http, 100)
    ok(freeze(http, amount=40))
    ok(deduct(http, "spent", 59.75))

    above = consume(http, actual_amount=40.250001)

    assert_error(
        above,
        400,
        "insufficient_balance",
        {"requested": 0.250001, "available": 0.25, "wallet": None},
    )
    assert balance(http) == {"total": 100, "used": 59.75, "frozen": 40, "available": 0.25}
    assert ok(consume(http, actual_amount=40.25))["overage_amount"] == 0.25
    assert balance(http) == {"total": 100, "used": 100, "frozen": 0, "available": 0}


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_charge_the_selected_wallets_cannot_cover_names_the_wallet(http, path):
    deposit(http, 100)
    deposit(http, 0.5, wallet="promo")
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 1, "wallet": "promo"}

    response = post(http, path, body)

    assert_error(
        response,
        400,
        "insufficient_balance_in_selected_credit_types",
        {"requested": 1, "available": 0.5, "wallet": "promo"},
    )


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_failed_charge_stores_nothing_and_a_retry_after_a_deposit_succeeds(http, path):
    deposit(http, 5)
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 8}
    assert post(http, path, body).status_code == 400
    deposit(http, 5)

    result = ok(post(http, path, body))

    assert result["is_idempotent_replay"] is False
    assert balance(http)["available"] == 2


# --- request errors ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_charge_request_field_errors(http, path):
    deposit(http, 100)
    base = {"customer_id": "c1", "transaction_id": "t1", "amount": 1}

    assert_error(
        post(http, path, {**base, "customer_id": ""}),
        400,
        "customer_id_required",
        {"field": "customer_id"},
    )
    assert_error(
        post(http, path, {**base, "transaction_id": None}),
        400,
        "transaction_id_required",
        {"field": "transaction_id"},
    )
    assert_error(
        post(http, path, {**base, "amount": 0}),
        400,
        "amount_must_be_positive",
        {"field": "amount"},
    )
    assert_error(
        post(http, path, {**base, "amount": "1"}), 400, "invalid_amount", {"field": "amount"}
    )
    assert_error(
        post(http, path, {**base, "business_type": "task"}),
        400,
        "invalid_business_type",
        {"field": "business_type"},
    )
    assert_error(
        post(http, path, {**base, "customer_id": "nobody"}),
        404,
        "customer_not_found",
        {"customer_id": "nobody"},
    )


@pytest.mark.parametrize("path", ["/v1/billing/consume", "/v1/billing/unfreeze"])
def test_settlement_without_transaction_id_is_transaction_id_required(http, path):
    assert_error(post(http, path, {}), 400, "transaction_id_required", {"field": "transaction_id"})
    assert_error(
        post(http, path, {"transaction_id": ""}),
        400,
        "transaction_id_required",
        {"field": "transaction_id"},
    )


@pytest.mark.parametrize(
    ("actual_amount", "code"),
    [
        (-1, "actual_amount_must_be_non_negative"),
        (-0.000001, "actual_amount_must_be_non_negative"),
        ("5", "invalid_amount"),
        (0.0000001, "invalid_amount"),
        (False, "invalid_amount"),
    ],
)
def test_consume_with_an_invalid_actual_amount_is_rejected(http, actual_amount, code):
    deposit(http, 100)
    ok(freeze(http, amount=10))

    response = consume(http, actual_amount=actual_amount)

    assert_error(response, 400, code, {"field": "actual_amount"})
    assert balance(http)["frozen"] == 10


# --- consume -------------------------------------------------------------------------------


def test_consume_of_part_of_a_freeze_answers_what_it_took_and_returned(http):
    sooner = deposit(http, 10, expires_at="2999-01-01T00:00:00Z")
    default = deposit(http, 100)
    ok(freeze(http, amount=25))
    before = timezone.now()

    body = ok(consume(http, actual_amount=12.5))

    assert body == {
        "transaction_id": "job",
        "consumed_amount": 12.5,
        "returned_amount": 12.5,
        "consume_details": [item(sooner, 10), item(default, 2.5)],
        "consumed_at": body["consumed_at"],
        "is_idempotent_replay": False,
    }
    assert_recent(body["consumed_at"], before)
    assert balance(http) == {"total": 110, "used": 12.5, "frozen": 0, "available": 97.5}


def test_consume_without_or_with_null_actual_amount_takes_the_whole_freeze(http):
    account = deposit(http, 100)
    ok(freeze(http, "a", 10))
    ok(freeze(http, "b", 20))

    first = ok(consume(http, "a"))
    second = ok(consume(http, "b", actual_amount=None))

    assert {k: v for k, v in first.items() if k != "consumed_at"} == {
        "transaction_id": "a",
        "consumed_amount": 10,
        "consume_details": [item(account, 10)],
        "is_idempotent_replay": False,
    }
    assert second["consumed_amount"] == 20
    assert "returned_amount" not in second
    assert "overage_amount" not in second
    assert balance(http) == {"total": 100, "used": 30, "frozen": 0, "available": 70}


def test_consume_of_zero_returns_everything(http):
    deposit(http, 100)
    ok(freeze(http, amount=10))

    body = ok(consume(http, actual_amount=0))

    assert {k: v for k, v in body.items() if k != "consumed_at"} == {
        "transaction_id": "job",
        "consumed_amount": 0,
        "returned_amount": 10,
        "consume_details": [],
        "is_idempotent_replay": False,
    }
    assert balance(http) == {"total": 100, "used": 0, "frozen": 0, "available": 100}


def test_consume_above_the_freeze_draws_the_overage_from_available_credits(http):
    held = deposit(http, 10, expires_at="2999-01-01T00:00:00Z")
    extra = deposit(http, 100)
    ok(freeze(http, amount=8))

    body = ok(consume(http, actual_amount=15))

    assert {k: v for k, v in body.items() if k != "consumed_at"} == {
        "transaction_id": "job",
        "consumed_amount": 15,
        "overage_amount": 7,
        "consume_details": [item(held, 10), item(extra, 5)],
        "is_idempotent_replay": False,
    }
    assert balance(http) == {"total": 110, "used": 15, "frozen": 0, "available": 95}


def test_consume_with_an_overage_nothing_can_cover_fails_and_keeps_the_freeze(http):
    deposit(http, 10)
    ok(freeze(http, amount=8))

    response = consume(http, actual_amount=20)

    assert_error(
        response,
        400,
        "insufficient_balance",
        {"requested": 12, "available": 2, "wallet": None},
    )
    assert balance(http) == {"total": 10, "used": 0, "frozen": 8, "available": 2}
    assert ok(http.get("/v1/billing/transactions/job"))["state"] == "FROZEN"
    assert ok(consume(http, actual_amount=10))["is_idempotent_replay"] is False


def test_consume_after_consume_replays_and_another_amount_conflicts(http):
    deposit(http, 100)
    ok(freeze(http, amount=10))
    original = ok(consume(http, actual_amount=4))

    replays = [consume(http), consume(http, actual_amount=4), consume(http, actual_amount=None)]
    conflict = consume(http, actual_amount=10)

    for response in replays:
        assert ok(response) == {**original, "is_idempotent_replay": True}
    assert_error(conflict, 409, "idempotency_conflict", {"field": "actual_amount"})
    assert balance(http) == {"total": 100, "used": 4, "frozen": 0, "available": 96}


def test_consume_after_a_default_consume_with_the_frozen_amount_replays(http):
    deposit(http, 100)
    ok(freeze(http, amount=10))
    original = ok(consume(http))

    again = ok(consume(http, actual_amount=10.000))

    assert again == {**original, "is_idempotent_replay": True}


# --- unfreeze ------------------------------------------------------------------------------


def test_unfreeze_returns_the_whole_freeze_and_replays_on_repeat(http):
    sooner = deposit(http, 10, wallet="promo", expires_at="2999-01-01T00:00:00Z")
    default = deposit(http, 100)
    ok(freeze(http, amount=15))
    before = timezone.now()

    body = ok(unfreeze(http))
    again = ok(unfreeze(http))

    assert body == {
        "transaction_id": "job",
        "unfrozen_amount": 15,
        "unfreeze_details": [item(sooner, 10, "promo"), item(default, 5)],
        "unfrozen_at": body["unfrozen_at"],
        "is_idempotent_replay": False,
    }
    assert_recent(body["unfrozen_at"], before)
    assert again == {**body, "is_idempotent_replay": True}
    assert balance(http) == {"total": 110, "used": 0, "frozen": 0, "available": 110}


# --- state rules ---------------------------------------------------------------------------


def test_settling_an_unknown_transaction_or_a_deposit_key_is_rejected(http):
    deposit(http, 100, idempotency_key="dep-1")

    assert_error(
        consume(http, "nope"), 400, "no_consumable_freeze_records", {"transaction_id": "nope"}
    )
    assert_error(unfreeze(http, "nope"), 400, "no_unfreezable_records", {"transaction_id": "nope"})
    assert_error(
        consume(http, "dep-1"), 400, "no_consumable_freeze_records", {"transaction_id": "dep-1"}
    )
    assert_error(
        unfreeze(http, "dep-1"), 400, "no_unfreezable_records", {"transaction_id": "dep-1"}
    )


def test_settling_another_projects_freeze_is_as_if_unknown(http, other_http):
    deposit(other_http, 100)
    ok(freeze(other_http))

    assert_error(consume(http), 400, "no_consumable_freeze_records", {"transaction_id": "job"})
    assert_error(unfreeze(http), 400, "no_unfreezable_records", {"transaction_id": "job"})
    assert_error(
        http.get("/v1/billing/transactions/job"),
        404,
        "transaction_not_found",
        {"transaction_id": "job"},
    )
    assert balance(other_http)["frozen"] == 10


def test_settling_a_deducts_id_is_rejected_as_no_freeze(http):
    deposit(http, 100)
    ok(deduct(http, "order"))

    assert_error(
        consume(http, "order"), 400, "no_consumable_freeze_records", {"transaction_id": "order"}
    )
    assert_error(
        unfreeze(http, "order"), 400, "no_unfreezable_records", {"transaction_id": "order"}
    )
    assert balance(http)["used"] == 10


def test_consume_after_a_client_unfreeze_is_no_consumable_freeze_records(http):
    deposit(http, 100)
    ok(freeze(http))
    ok(unfreeze(http))

    assert_error(consume(http), 400, "no_consumable_freeze_records", {"transaction_id": "job"})


def test_unfreeze_after_consume_is_freeze_records_already_consumed(http):
    deposit(http, 100)
    ok(freeze(http))
    ok(consume(http, actual_amount=3))

    assert_error(unfreeze(http), 400, "freeze_records_already_consumed", {"transaction_id": "job"})
    assert balance(http) == {"total": 100, "used": 3, "frozen": 0, "available": 97}


def test_consume_after_the_scheduler_unfroze_is_freeze_auto_unfrozen(http):
    deposit(http, 100)
    ok(freeze(http, unfreeze_after_seconds=60))
    assert settle_due(now=timezone.now() + dt.timedelta(minutes=2)) == 1

    assert_error(consume(http), 400, "freeze_auto_unfrozen", {"transaction_id": "job"})
    assert ok(unfreeze(http))["is_idempotent_replay"] is True


def test_consume_after_the_scheduler_consumed_replays_its_response(http):
    account = deposit(http, 100)
    ok(freeze(http, consume_after_seconds=60))
    assert settle_due(now=timezone.now() + dt.timedelta(minutes=2)) == 1

    body = ok(consume(http))

    assert {k: v for k, v in body.items() if k != "consumed_at"} == {
        "transaction_id": "job",
        "consumed_amount": 10,
        "consume_details": [item(account, 10)],
        "is_idempotent_replay": True,
    }


# --- idempotency and conflicts -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_repeated_charge_replays_the_stored_response_even_with_another_description(http, path):
    deposit(http, 100)
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 10, "business_type": "TASK"}
    original = ok(post(http, path, {**body, "description": "first"}))

    again = ok(post(http, path, {**body, "description": "second"}))

    assert again == {**original, "is_idempotent_replay": True}
    assert ok(http.get("/v1/billing/transactions/t1"))["description"] == "first"
    assert balance(http)["available"] == 90


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
@pytest.mark.parametrize(
    "changed",
    [
        {"amount": 11},
        {"wallet": "default"},
        {"credit_types": ["default", "promo"]},
        {"business_type": "ORDER"},
    ],
    ids=["amount", "wallet", "credit-types", "business-type"],
)
def test_repeated_charge_with_other_parameters_is_an_idempotency_conflict(http, path, changed):
    deposit(http, 100)
    body = {"customer_id": "c1", "transaction_id": "t1", "amount": 10}
    ok(post(http, path, body))

    response = post(http, path, {**body, **changed})

    assert_error(response, 409, "idempotency_conflict", {"field": "transaction_id"})
    assert balance(http)["available"] == 90


def test_freeze_repeated_with_another_ttl_is_an_idempotency_conflict(http):
    deposit(http, 100)
    ok(freeze(http, unfreeze_after_seconds=60))

    assert_error(
        freeze(http, unfreeze_after_seconds=61),
        409,
        "idempotency_conflict",
        {"field": "transaction_id"},
    )
    assert_error(
        freeze(http, consume_after_seconds=60),
        409,
        "idempotency_conflict",
        {"field": "transaction_id"},
    )
    assert_error(freeze(http), 409, "idempotency_conflict", {"field": "transaction_id"})


@pytest.mark.parametrize("path", ["/v1/billing/freeze", "/v1/billing/deduct"])
def test_charge_id_of_another_customer_is_a_transaction_conflict(http, path):
    deposit(http, 100, customer_id="alice")
    deposit(http, 100, customer_id="bob")
    body = {"customer_id": "alice", "transaction_id": "t1", "amount": 10}
    ok(post(http, path, body))

    response = post(http, path, {**body, "customer_id": "bob"})

    assert_error(response, 409, "transaction_conflict", {"field": "transaction_id"})
    assert balance(http, "bob")["available"] == 100


def test_freeze_with_a_deducts_id_and_deduct_with_a_freezes_id_are_transaction_conflicts(http):
    deposit(http, 100)
    ok(deduct(http, "order"))
    ok(freeze(http, "job"))

    assert_error(freeze(http, "order"), 409, "transaction_conflict", {"field": "transaction_id"})
    assert_error(deduct(http, "job"), 409, "transaction_conflict", {"field": "transaction_id"})
    assert balance(http) == {"total": 100, "used": 10, "frozen": 10, "available": 80}


def test_charge_ids_are_separate_per_project(http, other_http):
    deposit(http, 100)
    deposit(other_http, 100)
    ok(freeze(other_http, amount=30))

    body = ok(freeze(http, amount=10))

    assert body["is_idempotent_replay"] is False
    assert body["frozen_amount"] == 10


# --- GET /v1/billing/transactions/{id} -----------------------------------------------------


def test_reading_an_unknown_transaction_is_transaction_not_found(http):
    deposit(http, 100, idempotency_key="dep-1")

    assert_error(
        http.get("/v1/billing/transactions/nope"),
        404,
        "transaction_not_found",
        {"transaction_id": "nope"},
    )
    assert_error(
        http.get("/v1/billing/transactions/dep-1"),
        404,
        "transaction_not_found",
        {"transaction_id": "dep-1"},
    )


def test_reading_a_frozen_freeze(http):
    sooner = deposit(http, 10, wallet="promo", expires_at="2999-01-01T00:00:00Z")
    default = deposit(http, 100)
    frozen = ok(
        freeze(
            http, amount=15, unfreeze_after_seconds=3600, business_type="TASK", description="render"
        )
    )

    body = ok(http.get("/v1/billing/transactions/job"))

    created = instant(frozen["unfreeze_after"]) - dt.timedelta(hours=1)
    assert body == {
        "transaction_id": "job",
        "customer_id": "c1",
        "kind": "FREEZE",
        "state": "FROZEN",
        "settled_by": None,
        "amount": 15,
        "frozen_amount": 15,
        "consumed_amount": 0,
        "returned_amount": 0,
        "overage_amount": 0,
        "unfreeze_after": frozen["unfreeze_after"],
        "consume_after": None,
        "business_type": "TASK",
        "description": "render",
        "details": [item(sooner, 10, "promo"), item(default, 5)],
        "created_at": body["created_at"],
        "settled_at": None,
        "refunded_amount": 0,
    }
    assert instant(body["created_at"]) == created


def test_reading_a_partly_consumed_freeze(http):
    first = deposit(http, 10, expires_at="2999-01-01T00:00:00Z")
    deposit(http, 100)
    ok(freeze(http, amount=15, consume_after_seconds=600))
    consumed = ok(consume(http, actual_amount=4))

    body = ok(http.get("/v1/billing/transactions/job"))

    assert {k: v for k, v in body.items() if k not in ("created_at", "consume_after")} == {
        "transaction_id": "job",
        "customer_id": "c1",
        "kind": "FREEZE",
        "state": "CONSUMED",
        "settled_by": "client",
        "amount": 15,
        "frozen_amount": 0,
        "consumed_amount": 4,
        "returned_amount": 11,
        "overage_amount": 0,
        "unfreeze_after": None,
        "business_type": "UNDEFINED",
        "description": "",
        "details": [item(first, 4)],
        "settled_at": consumed["consumed_at"],
        "refunded_amount": 0,
    }
    assert instant(body["consume_after"]) - instant(body["created_at"]) == dt.timedelta(minutes=10)


def test_reading_a_freeze_consumed_with_an_overage(http):
    first = deposit(http, 10, expires_at="2999-01-01T00:00:00Z")
    second = deposit(http, 100)
    ok(freeze(http, amount=5))
    ok(consume(http, actual_amount=12))

    body = ok(http.get("/v1/billing/transactions/job"))

    assert (body["state"], body["amount"], body["frozen_amount"]) == ("CONSUMED", 5, 0)
    assert (body["consumed_amount"], body["returned_amount"], body["overage_amount"]) == (12, 0, 7)
    assert body["details"] == [item(first, 10), item(second, 2)]


def test_reading_an_unfrozen_freeze(http):
    deposit(http, 100)
    ok(freeze(http, amount=15))
    unfrozen = ok(unfreeze(http))

    body = ok(http.get("/v1/billing/transactions/job"))

    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "transaction_id": "job",
        "customer_id": "c1",
        "kind": "FREEZE",
        "state": "UNFROZEN",
        "settled_by": "client",
        "amount": 15,
        "frozen_amount": 0,
        "consumed_amount": 0,
        "returned_amount": 15,
        "overage_amount": 0,
        "unfreeze_after": None,
        "consume_after": None,
        "business_type": "UNDEFINED",
        "description": "",
        "details": [],
        "settled_at": unfrozen["unfrozen_at"],
        "refunded_amount": 0,
    }


def test_reading_a_deduct(http):
    account = deposit(http, 100)
    deducted = ok(deduct(http, "order", 30, business_type="ORDER", description="one-off"))

    body = ok(http.get("/v1/billing/transactions/order"))

    assert body == {
        "transaction_id": "order",
        "customer_id": "c1",
        "kind": "DEDUCT",
        "state": "DEDUCTED",
        "settled_by": "client",
        "amount": 30,
        "frozen_amount": 0,
        "consumed_amount": 30,
        "returned_amount": 0,
        "overage_amount": 0,
        "unfreeze_after": None,
        "consume_after": None,
        "business_type": "ORDER",
        "description": "one-off",
        "details": [item(account, 30)],
        "created_at": deducted["deducted_at"],
        "settled_at": deducted["deducted_at"],
        "refunded_amount": 0,
    }


@pytest.mark.parametrize(
    ("ttl", "state", "consumed", "returned"),
    [("unfreeze_after_seconds", "UNFROZEN", 0, 10), ("consume_after_seconds", "CONSUMED", 10, 0)],
)
def test_reading_a_freeze_the_scheduler_settled(http, ttl, state, consumed, returned):
    deposit(http, 100)
    ok(freeze(http, **{ttl: 60}))
    settled_at = timezone.now() + dt.timedelta(minutes=2)
    assert settle_due(now=settled_at) == 1

    body = ok(http.get("/v1/billing/transactions/job"))

    assert (body["state"], body["settled_by"]) == (state, "scheduler")
    assert (body["consumed_amount"], body["returned_amount"]) == (consumed, returned)
    assert instant(body["settled_at"]) == settled_at.replace(
        microsecond=settled_at.microsecond // 1000 * 1000
    )


def test_reading_a_transaction_id_with_a_slash(http):
    deposit(http, 100)
    ok(freeze(http, "jobs/42"))

    body = ok(http.get("/v1/billing/transactions/jobs%2F42"))

    assert (body["transaction_id"], body["state"]) == ("jobs/42", "FROZEN")


def test_transaction_ids_in_the_path_round_trip_slashes_and_refuse_invalid_utf8(http):
    http.post(
        "/v1/customers/deposit", json={"customer_id": "c", "amount": 10, "idempotency_key": "seed"}
    )
    for transaction_id in ("job/1", "%FF", "a b+c@x"):
        created = http.post(
            "/v1/billing/deduct",
            json={"customer_id": "c", "transaction_id": transaction_id, "amount": 1},
        )
        assert created.status_code == 200, created.text
        read = http.get(f"/v1/billing/transactions/{quote(transaction_id, safe='')}")
        assert read.status_code == 200, read.text
        assert read.json()["transaction_id"] == transaction_id

    for raw in ("%FF", "%C3%28", "a%00b"):
        response = http.get(f"/v1/billing/transactions/{raw}")
        assert response.status_code == 400, (raw, response.text)
        error = response.json()["error"]
        assert (error["code"], error["details"]["field"]) == ("invalid_request", "transaction_id")
    assert http.get("/v1/billing/transactions/job/1").status_code == 404  # a literal / splits
