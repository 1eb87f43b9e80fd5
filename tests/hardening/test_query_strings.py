"""Query parameters that are not UTF-8 are refused like such path ids, over the real HTTP stack
(gunicorn hands the query string over undecoded)."""

import pytest

LEDGER = "/v1/customers/c1/ledger"


@pytest.fixture
def customer(http) -> None:
    deposit = {"customer_id": "c1", "amount": 10, "idempotency_key": "setup"}
    assert http.post("/v1/customers/deposit", json=deposit).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("transaction_id=%ed%a0%80", "transaction_id"),  # an encoded surrogate
        ("transaction_id=%ff", "transaction_id"),
        ("cursor=%c3%28", "cursor"),
        ("limit=%e2%82", "limit"),  # a truncated sequence
        ("operation_type=GRANT%80", "operation_type"),
        ("limit=5&transaction_id=ok&cursor=%fe", "cursor"),
    ],
)
def test_a_query_parameter_that_is_not_utf8_is_an_invalid_request(http, customer, query, field):
    response = http.get(f"{LEDGER}?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("bad_request", "invalid_request")
    assert error["details"] == {"field": field, "reason": "not_utf8"}


def test_a_parameter_name_that_is_not_utf8_is_an_invalid_request(http, customer):
    response = http.get(f"{LEDGER}?%ff=1")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "query", "reason": "not_utf8"}


def test_utf8_query_parameters_still_work(http, customer):
    euro = http.get(f"{LEDGER}?transaction_id=%E2%82%AC+job&limit=5")
    plain = http.get(f"{LEDGER}?operation_type=GRANT")

    assert (euro.status_code, euro.json()["total_count"]) == (200, 0)
    assert (plain.status_code, plain.json()["total_count"]) == (200, 1)
