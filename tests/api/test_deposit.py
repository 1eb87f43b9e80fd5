"""POST /v1/customers/deposit (also served as POST /v1/billing/deposit): every rule and error."""

import json
from decimal import Decimal

import pytest
from django.test import Client

from credits_project.json import loads
from customers.models import ApiKey, Customer, Project
from ledger.models import CreditAccount, LedgerEntry, Transaction
from tests.support import assert_error, envelope

pytestmark = pytest.mark.django_db

DEPOSIT = "/v1/customers/deposit"


@pytest.fixture
def api(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")


def post(api: Client, body, path: str = DEPOSIT, **headers):
    raw = body if isinstance(body, str) else json.dumps(body)
    return api.post(path, data=raw, content_type="application/json", headers=headers)


def only_field(response) -> str:
    return response.json()["error"]["details"]["field"]


def the_account() -> CreditAccount:
    (account,) = CreditAccount.objects.all()
    return account


def test_first_deposit_creates_the_customer_and_answers_with_the_new_account(api, project):
    response = post(
        api,
        {
            "customer_id": "c1",
            "amount": 100,
            "name": "Alice",
            "email": "alice@example.com",
            "metadata": {"plan": "pro", "seats": 3, "ratio": 0.25, "tags": ["a", "b"]},
        },
    )

    assert response.status_code == 200
    account = the_account()
    (grant,) = LedgerEntry.objects.all()
    assert response.json() == {
        "customer_id": "c1",
        "account_id": str(account.pk),
        "wallet": "default",
        "credit_type": "default",
        "source": "default",
        "total_amount": 100,
        "added_amount": 100,
        "starts_at": None,
        "expires_at": None,
        "record_id": str(grant.pk),
        "is_idempotent_replay": False,
    }
    customer = Customer.objects.get(project=project, external_id="c1")
    assert (customer.name, customer.email) == ("Alice", "alice@example.com")
    assert customer.metadata == {
        "plan": "pro",
        "seats": 3,
        "ratio": Decimal("0.25"),
        "tags": ["a", "b"],
    }
    assert (account.customer, account.total, account.used, account.frozen) == (
        customer,
        Decimal(100),
        Decimal(0),
        Decimal(0),
    )


def test_deposit_is_also_served_at_billing_deposit(api):
    response = post(api, {"customer_id": "c1", "amount": 5}, path="/v1/billing/deposit")

    assert response.status_code == 200
    assert response.json()["total_amount"] == 5
    assert the_account().total == Decimal(5)


def test_deposit_without_profile_fields_creates_a_customer_with_null_name_and_email(api, project):
    assert post(api, {"customer_id": "c1", "amount": 1}).status_code == 200

    customer = Customer.objects.get(project=project, external_id="c1")
    assert (customer.name, customer.email, customer.metadata) == (None, None, {})


def test_deposit_writes_one_grant_entry_with_the_key_as_actor_and_the_idempotency_key_as_ref(
    api, api_key
):
    response = post(
        api,
        {
            "customer_id": "c1",
            "amount": 12.5,
            "idempotency_key": "order-42",
            "business_type": "ORDER",
            "description": "top-up",
        },
    )

    assert response.status_code == 200
    (grant,) = LedgerEntry.objects.all()
    prefix = api_key.split(".", 1)[0]
    assert ApiKey.objects.filter(prefix=prefix).exists()
    assert {
        "id": str(grant.pk),
        "account": grant.account_id,
        "operation_type": grant.operation_type,
        "amount": grant.amount,
        "transaction_id": grant.transaction_id,
        "business_type": grant.business_type,
        "description": grant.description,
        "actor": grant.actor,
    } == {
        "id": response.json()["record_id"],
        "account": int(response.json()["account_id"]),
        "operation_type": "GRANT",
        "amount": Decimal("12.5"),
        "transaction_id": "order-42",
        "business_type": "ORDER",
        "description": "top-up",
        "actor": f"api_key:{prefix}",
    }
    assert the_account().business_type == "ORDER"


def test_deposit_without_an_idempotency_key_writes_a_grant_without_ref_and_no_transaction(api):
    assert post(api, {"customer_id": "c1", "amount": 1}).status_code == 200
    assert post(api, {"customer_id": "c1", "amount": 1}).status_code == 200

    assert list(LedgerEntry.objects.values_list("transaction_id", flat=True)) == [None, None]
    assert CreditAccount.objects.count() == 2
    assert not Transaction.objects.exists()


def test_later_deposits_update_only_the_profile_fields_they_send(api, project):
    post(
        api,
        {"customer_id": "c1", "amount": 1, "name": "A", "email": "a@x.com", "metadata": {"k": "v"}},
    )

    post(api, {"customer_id": "c1", "amount": 1, "name": "B"})
    customer = Customer.objects.get(project=project, external_id="c1")
    assert (customer.name, customer.email, customer.metadata) == ("B", "a@x.com", {"k": "v"})

    post(api, {"customer_id": "c1", "amount": 1, "email": "b@x.com", "metadata": {"n": 1}})
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.metadata) == ("B", "b@x.com", {"n": 1})

    post(api, {"customer_id": "c1", "amount": 1, "name": None, "metadata": None})
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.metadata) == ("B", "b@x.com", {"n": 1})


@pytest.mark.parametrize(
    ("fields", "wallet", "source"),
    [
        ({}, "default", "default"),
        ({"wallet": "promo_2026"}, "promo_2026", "default"),
        ({"credit_type": "membership_gold"}, "membership_gold", "default"),
        ({"wallet": "promo_2026", "credit_type": "membership_gold"}, "promo_2026", "default"),
        ({"wallet": None, "credit_type": "legacy"}, "legacy", "default"),
        ({"source": "stripe_checkout"}, "default", "stripe_checkout"),
        ({"wallet": "w" * 64, "source": "s" * 64}, "w" * 64, "s" * 64),
    ],
)
def test_deposit_wallet_defaults_and_credit_type_alias_where_wallet_wins(
    api, fields, wallet, source
):
    response = post(api, {"customer_id": "c1", "amount": 1, **fields})

    assert response.status_code == 200
    body = response.json()
    assert (body["wallet"], body["credit_type"], body["source"]) == (wallet, wallet, source)
    account = the_account()
    assert (account.wallet, account.source) == (wallet, source)


def test_validity_window_is_stored_and_rendered_in_utc_with_milliseconds(api):
    response = post(
        api,
        {
            "customer_id": "c1",
            "amount": 1,
            "starts_at": "2030-01-01T12:00:00+02:00",
            "expires_at": "2030-02-01T00:00:00.123456Z",
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["starts_at"], body["expires_at"]) == (
        "2030-01-01T10:00:00.000Z",
        "2030-02-01T00:00:00.123Z",
    )
    account = the_account()
    assert account.starts_at.isoformat() == "2030-01-01T10:00:00+00:00"
    assert account.expires_at.isoformat() == "2030-02-01T00:00:00.123456+00:00"


def test_deposit_dated_in_the_past_is_accepted(api):
    response = post(
        api,
        {
            "customer_id": "c1",
            "amount": 1,
            "starts_at": "2020-01-01T00:00:00Z",
            "expires_at": "2020-06-01T00:00:00Z",
        },
    )

    assert response.status_code == 200
    assert response.json()["expires_at"] == "2020-06-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("amount", "rendered"),
    [
        ("1", "1"),
        ("1000000000000", "1000000000000"),
        ("999999999999.999999", "999999999999.999999"),
        ("0.000001", "0.000001"),
        ("1e-06", "0.000001"),
        ("1E+3", "1000"),
        ("1000.000000", "1000"),
        ("0.1000000", "0.1"),
        ("0.25", "0.25"),
        ("12.50", "12.5"),
    ],
)
def test_any_json_number_spelling_is_accepted_and_rendered_exactly(api, amount, rendered):
    response = post(api, '{"customer_id":"c1","amount":' + amount + "}")

    assert response.status_code == 200
    text = response.content.decode()
    assert f'"total_amount":{rendered},"added_amount":{rendered},' in text
    assert the_account().total == Decimal(amount)


def test_ids_in_the_response_are_json_strings(api):
    text = post(api, {"customer_id": "c1", "amount": 1}).content.decode()

    account, grant = the_account(), LedgerEntry.objects.get()
    assert f'"account_id":"{account.pk}"' in text
    assert f'"record_id":"{grant.pk}"' in text


def test_ten_deposits_of_a_tenth_sum_to_exactly_one(api):
    for _ in range(10):
        assert post(api, '{"customer_id":"c1","amount":0.1}').status_code == 200

    text = api.get("/v1/customers/c1").content.decode()
    assert '"balance":{"total":1,"used":0,"frozen":0,"available":1}' in text


BAD_BODIES = [
    # (case, body fields over {"customer_id": "c1", "amount": 1}, status, code, details.field)
    ("customer_id missing", {"customer_id": ...}, "customer_id_required", "customer_id"),
    ("customer_id null", {"customer_id": None}, "customer_id_required", "customer_id"),
    ("customer_id empty", {"customer_id": ""}, "customer_id_required", "customer_id"),
    ("customer_id too long", {"customer_id": "c" * 256}, "invalid_request", "customer_id"),
    ("customer_id number", {"customer_id": 7}, "invalid_request", "customer_id"),
    ("customer_id list", {"customer_id": ["c1"]}, "invalid_request", "customer_id"),
    ("amount missing", {"amount": ...}, "amount_must_be_positive", "amount"),
    ("amount null", {"amount": None}, "amount_must_be_positive", "amount"),
    ("amount zero", {"amount": 0}, "amount_must_be_positive", "amount"),
    ("amount zero point zero", {"amount": Decimal("0.0")}, "amount_must_be_positive", "amount"),
    ("amount negative", {"amount": -5}, "amount_must_be_positive", "amount"),
    ("amount negative fraction", {"amount": Decimal("-0.5")}, "amount_must_be_positive", "amount"),
    ("amount string", {"amount": "10"}, "invalid_amount", "amount"),
    ("amount true", {"amount": True}, "invalid_amount", "amount"),
    ("amount false", {"amount": False}, "invalid_amount", "amount"),
    ("amount object", {"amount": {"value": 1}}, "invalid_amount", "amount"),
    ("amount list", {"amount": [1]}, "invalid_amount", "amount"),
    ("amount 7 decimals", {"amount": Decimal("1.0000001")}, "invalid_amount", "amount"),
    ("amount over 10^12", {"amount": Decimal("1000000000000.000001")}, "invalid_amount", "amount"),
    ("amount 2^63", {"amount": 2**63}, "invalid_amount", "amount"),
    ("amount 1e400", {"amount": Decimal("1e400")}, "invalid_amount", "amount"),
    ("amount 5000 digits", {"amount": Decimal("9" * 5000)}, "invalid_amount", "amount"),
    ("amount tiny", {"amount": Decimal("1e-999999999")}, "invalid_amount", "amount"),
    (
        "amount 32 significant digits",
        {"amount": Decimal("1.0000000000000000000000000000001")},
        "invalid_amount",
        "amount",
    ),
    ("starts_at naive", {"starts_at": "2030-01-01T00:00:00"}, "invalid_starts_at", "starts_at"),
    ("starts_at date only", {"starts_at": "2030-01-01"}, "invalid_starts_at", "starts_at"),
    ("starts_at garbage", {"starts_at": "tomorrow"}, "invalid_starts_at", "starts_at"),
    ("starts_at number", {"starts_at": 1767225600}, "invalid_starts_at", "starts_at"),
    (
        "starts_at out of range in utc",
        {"starts_at": "0001-01-01T00:00:00+01:00"},
        "invalid_starts_at",
        "starts_at",
    ),
    ("expires_at naive", {"expires_at": "2030-01-01T00:00:00"}, "invalid_expires_at", "expires_at"),
    ("expires_at garbage", {"expires_at": ""}, "invalid_expires_at", "expires_at"),
    (
        "expires_at equals starts_at",
        {"starts_at": "2030-01-01T00:00:00Z", "expires_at": "2030-01-01T01:00:00+01:00"},
        "invalid_datetime_range",
        "expires_at",
    ),
    (
        "expires_at before starts_at",
        {"starts_at": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z"},
        "invalid_datetime_range",
        "expires_at",
    ),
    ("wallet empty", {"wallet": ""}, "invalid_request", "wallet"),
    ("wallet too long", {"wallet": "w" * 65}, "invalid_request", "wallet"),
    ("wallet number", {"wallet": 3}, "invalid_request", "wallet"),
    ("credit_type empty", {"credit_type": ""}, "invalid_request", "credit_type"),
    ("source empty", {"source": ""}, "invalid_request", "source"),
    ("source too long", {"source": "s" * 65}, "invalid_request", "source"),
    ("idempotency_key empty", {"idempotency_key": ""}, "invalid_request", "idempotency_key"),
    ("idempotency_key long", {"idempotency_key": "k" * 256}, "invalid_request", "idempotency_key"),
    ("idempotency_key number", {"idempotency_key": 42}, "invalid_request", "idempotency_key"),
    ("name too long", {"name": "n" * 256}, "invalid_request", "name"),
    ("name not a string", {"name": {"first": "A"}}, "invalid_request", "name"),
    ("email invalid", {"email": "not-an-email"}, "invalid_request", "email"),
    ("email too long", {"email": "a" * 245 + "@example.com"}, "invalid_request", "email"),
    ("metadata list", {"metadata": ["a"]}, "invalid_metadata", "metadata"),
    ("metadata string", {"metadata": "{}"}, "invalid_metadata", "metadata"),
    ("metadata too big", {"metadata": {"k": "v" * 16_400}}, "invalid_metadata", "metadata"),
    (
        "metadata huge number",
        {"metadata": {"k": Decimal("1e999999999")}},
        "invalid_metadata",
        "metadata",
    ),
    ("description too long", {"description": "d" * 1001}, "invalid_request", "description"),
    (
        "business_type lowercase",
        {"business_type": "order"},
        "invalid_business_type",
        "business_type",
    ),
    (
        "business_type unknown",
        {"business_type": "REFUND"},
        "invalid_business_type",
        "business_type",
    ),
]


def render(fields: dict) -> str:
    """JSON for a body, numbers written exactly as given (a `Decimal` keeps its spelling)."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, dict):
            text = render(value)
        else:
            text = str(value) if isinstance(value, Decimal) else json.dumps(value)
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def body_with(overrides: dict) -> str:
    fields = {"customer_id": "c1", "amount": 1, **overrides}
    return render({k: v for k, v in fields.items() if v is not ...})


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_invalid_deposit_is_rejected_with_its_code_and_field_and_changes_nothing(
    api, overrides, code, field
):
    response = post(api, body_with(overrides))

    body = response.json()
    assert (response.status_code, body["error"]["details"]["field"]) == (400, field)
    assert body == envelope(response, code, body["error"]["details"])
    assert not Customer.objects.exists()
    assert not CreditAccount.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"customer_id": "c" * 255},
        {"idempotency_key": "k" * 255},
        {"name": "n" * 255},
        {"name": ""},
        {"email": "a" * 242 + "@example.com"},
        {"description": "d" * 1000},
        {"metadata": {}},
        {"business_type": "TOKEN_USAGE"},
        {"unknown_field_from_a_newer_sdk": {"ignored": True}},
    ],
)
def test_fields_at_their_limits_are_accepted(api, overrides):
    assert post(api, body_with(overrides)).status_code == 200


def test_metadata_of_exactly_16384_bytes_is_accepted_and_one_more_byte_is_not(api, project):
    # {"k":"vvv…"} is 8 bytes of syntax plus the value; "é" is two bytes in UTF-8.
    fits = {"k": "é" + "v" * (16_384 - 8 - 2)}
    too_big = {"k": "é" + "v" * (16_384 - 8 - 1)}
    assert len(json.dumps(fits, ensure_ascii=False, separators=(",", ":")).encode()) == 16_384

    assert post(api, {"customer_id": "c1", "amount": 1, "metadata": fits}).status_code == 200
    response = post(api, {"customer_id": "c1", "amount": 1, "metadata": too_big})
    assert_error(response, 400, "invalid_metadata", {"field": "metadata", "max_bytes": 16_384})
    assert Customer.objects.get(project=project).metadata == fits


def test_metadata_numbers_are_stored_and_returned_exactly(api, project):
    raw = (
        '{"customer_id":"c1","amount":1,"metadata":{"precise":0.12345678901234567890123456789012,'
        '"big":123456789012345678901234567890123,"exp":1E+3}}'
    )
    assert post(api, raw).status_code == 200

    text = api.get("/v1/customers/c1").content.decode()
    # Key order is the database's (PostgreSQL's jsonb sorts keys); the numbers are exact.
    assert '"precise":0.12345678901234567890123456789012' in text
    assert '"big":123456789012345678901234567890123' in text
    assert '"exp":1000' in text
    assert loads(text)["metadata"] == {
        "precise": Decimal("0.12345678901234567890123456789012"),
        "big": 123456789012345678901234567890123,
        "exp": 1000,
    }


# --- idempotency ---------------------------------------------------------------------------


def test_repeated_deposit_with_the_same_key_replays_the_original_response(api):
    body = {
        "customer_id": "c1",
        "amount": 10,
        "idempotency_key": "k1",
        "wallet": "promo",
        "starts_at": "2020-01-01T00:00:00Z",
    }
    first = post(api, body)
    second = post(api, body)

    assert first.status_code == second.status_code == 200
    assert second.json() == {**first.json(), "is_idempotent_replay": True}
    assert first.json()["is_idempotent_replay"] is False
    assert CreditAccount.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_replay_ignores_description_name_email_and_metadata(api, project):
    post(
        api,
        {
            "customer_id": "c1",
            "amount": 10,
            "idempotency_key": "k1",
            "name": "A",
            "description": "first",
        },
    )

    response = post(
        api,
        {
            "customer_id": "c1",
            "amount": 10,
            "idempotency_key": "k1",
            "name": "B",
            "email": "b@x.com",
            "metadata": {"x": 1},
            "description": "second",
        },
    )

    assert response.status_code == 200
    assert response.json()["is_idempotent_replay"] is True
    customer = Customer.objects.get(project=project)
    assert (customer.name, customer.email, customer.metadata) == ("A", None, {})
    assert LedgerEntry.objects.get().description == "first"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"amount": 10}, {"amount": Decimal("10.000")}),
        ({"amount": 1000}, {"amount": Decimal("1E+3")}),
        ({"amount": Decimal("0.5")}, {"amount": Decimal("0.50")}),
        ({"wallet": "w"}, {"credit_type": "w"}),
        ({}, {"wallet": "default", "source": "default", "business_type": "UNDEFINED"}),
        (
            {"starts_at": "2030-01-01T00:00:00Z", "expires_at": "2031-01-01T00:00:00Z"},
            {"starts_at": "2030-01-01T01:00:00+01:00", "expires_at": "2030-12-31T19:00:00-05:00"},
        ),
    ],
)
def test_repeat_that_differs_only_in_spelling_is_a_replay(api, first, second):
    base = {"customer_id": "c1", "amount": 10, "idempotency_key": "k1"}
    assert post(api, body_with({**base, **first})).status_code == 200

    response = post(api, body_with({**base, **second}))

    assert response.status_code == 200, response.content
    assert response.json()["is_idempotent_replay"] is True
    assert CreditAccount.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 11},
        {"amount": Decimal("10.000001")},
        {"wallet": "promo"},
        {"credit_type": "promo"},
        {"source": "stripe"},
        {"starts_at": "2030-01-01T00:00:00Z"},
        {"expires_at": "2030-01-01T00:00:00Z"},
        {"business_type": "ORDER"},
    ],
)
def test_same_key_with_other_parameters_is_an_idempotency_conflict(api, change):
    base = {"customer_id": "c1", "amount": 10, "idempotency_key": "k1"}
    assert post(api, base).status_code == 200

    response = post(api, body_with({**base, **change}))

    assert_error(response, 409, "idempotency_conflict", {"field": "idempotency_key"})
    assert CreditAccount.objects.count() == 1


def test_deposit_with_reused_key_for_another_customer_is_a_transaction_conflict(api, project):
    assert (
        post(api, {"customer_id": "c1", "amount": 10, "idempotency_key": "k1"}).status_code == 200
    )

    response = post(api, {"customer_id": "c2", "amount": 10, "idempotency_key": "k1"})

    assert_error(response, 409, "transaction_conflict", {"field": "idempotency_key"})
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["c1"]
    assert CreditAccount.objects.count() == 1


def test_failed_deposit_stores_nothing_under_its_key(api):
    bad = post(
        api, {"customer_id": "c1", "amount": 10, "idempotency_key": "k1", "business_type": "nope"}
    )
    assert bad.status_code == 400

    good = post(api, {"customer_id": "c1", "amount": 99, "idempotency_key": "k1"})

    assert good.status_code == 200
    assert good.json()["is_idempotent_replay"] is False
    assert good.json()["total_amount"] == 99


def test_idempotency_key_is_read_from_the_header_when_the_body_has_none(api):
    first = post(api, {"customer_id": "c1", "amount": 10}, **{"Idempotency-Key": "hdr-1"})
    second = post(api, {"customer_id": "c1", "amount": 10}, **{"Idempotency-Key": "hdr-1"})

    assert first.json()["is_idempotent_replay"] is False
    assert second.json() == {**first.json(), "is_idempotent_replay": True}
    assert LedgerEntry.objects.get().transaction_id == "hdr-1"


def test_an_idempotency_key_in_the_body_other_than_the_header_is_refused_and_stores_nothing(
    api,
):
    response = post(
        api,
        {"customer_id": "c1", "amount": 10, "idempotency_key": "body-1"},
        **{"Idempotency-Key": "hdr-1"},
    )

    assert_error(response, 400, "idempotency_key_conflict", {"field": "idempotency_key"})
    assert not CreditAccount.objects.exists()


def test_the_same_idempotency_key_in_the_body_and_the_header_is_one_key(api):
    both = {"Idempotency-Key": "k-1"}
    first = post(api, {"customer_id": "c1", "amount": 10, "idempotency_key": "k-1"}, **both)
    by_header = post(api, {"customer_id": "c1", "amount": 10}, **both)
    by_body = post(api, {"customer_id": "c1", "amount": 10, "idempotency_key": "k-1"})

    assert first.json()["is_idempotent_replay"] is False
    assert by_header.json()["is_idempotent_replay"] is True
    assert by_body.json()["is_idempotent_replay"] is True
    assert list(LedgerEntry.objects.values_list("transaction_id", flat=True)) == ["k-1"]


@pytest.mark.parametrize("header", ["", "k" * 256])
def test_invalid_idempotency_key_header_is_an_invalid_request_naming_the_field(api, header):
    response = post(api, {"customer_id": "c1", "amount": 10}, **{"Idempotency-Key": header})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert only_field(response) == "idempotency_key"
    assert not CreditAccount.objects.exists()


def test_idempotency_keys_and_customer_ids_are_scoped_to_the_project(api, make_key):
    other = Client(HTTP_AUTHORIZATION=f"Bearer {make_key(Project.objects.create(name='other'))}")
    body = {"customer_id": "c1", "amount": 10, "idempotency_key": "k1"}
    assert post(api, body).status_code == 200

    response = post(other, {**body, "amount": 20})

    assert response.status_code == 200
    assert response.json()["is_idempotent_replay"] is False
    assert Customer.objects.filter(external_id="c1").count() == 2


# --- over real HTTP --------------------------------------------------------------------------


def test_deposit_over_http_replays_byte_for_byte_but_for_the_replay_flag(http):
    raw = (
        '{"customer_id":"c/1 é","amount":999999999999.999999,"idempotency_key":"k 1/é",'
        '"wallet":"promo","source":"stripe","starts_at":"2030-01-01T00:00:00+05:30"}'
    )
    headers = {"Content-Type": "application/json"}
    first = http.post(DEPOSIT, content=raw.encode(), headers=headers)
    second = http.post(DEPOSIT, content=raw.encode(), headers=headers)

    assert first.status_code == second.status_code == 200
    account, grant = the_account(), LedgerEntry.objects.get()
    expected = (
        '{"customer_id":"c/1 é","account_id":"%s","wallet":"promo","credit_type":"promo",'
        '"source":"stripe","total_amount":999999999999.999999,'
        '"added_amount":999999999999.999999,"starts_at":"2029-12-31T18:30:00.000Z",'
        '"expires_at":null,"record_id":"%s","is_idempotent_replay":%s}'
    )
    assert first.text == expected % (account.pk, grant.pk, "false")
    assert second.text == expected % (account.pk, grant.pk, "true")
    assert account.total == Decimal("999999999999.999999")
