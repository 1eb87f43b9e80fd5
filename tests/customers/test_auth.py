"""`Authorization: Bearer <api_key>`: the three 401 codes, revocation, last use, public routes."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from customers.models import ApiKey, Customer
from tests.support import assert_error

pytestmark = pytest.mark.django_db


def assert_unauthorized(response, code: str) -> None:
    assert_error(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def the_key(raw_key: str) -> ApiKey:
    return ApiKey.objects.get(prefix=raw_key.split(".", 1)[0])


@pytest.mark.parametrize("header", [None, ""], ids=["no header", "empty header"])
def test_request_without_a_key_is_missing_api_key(header):
    headers = {} if header is None else {"Authorization": header}

    assert_unauthorized(Client().get("/v1/health", headers=headers), "missing_api_key")


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token {key}",
        "Bearer  {key}",
        "Bearer {key} extra",
        "Bearer {key}x",
        "Bearer {prefix}.wrongsecretwrongsecretwrongsecret",
        "Bearer nope.nope",
        "Bearer not-a-key",
        "{key}",
        "Bearer é.é",
    ],
)
def test_anything_but_bearer_and_a_known_key_is_invalid_api_key(api_key, header):
    value = header.format(key=api_key, prefix=api_key.split(".", 1)[0])

    assert_unauthorized(
        Client().get("/v1/health", headers={"Authorization": value}), "invalid_api_key"
    )


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(api_key, scheme):
    response = Client().get("/v1/health", headers={"Authorization": f"{scheme} {api_key}"})

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_expired_key_is_invalid_api_key_and_changes_nothing(api_key):
    key = the_key(api_key)
    key.expiry_date = timezone.now() - dt.timedelta(seconds=1)
    key.save(update_fields=["expiry_date"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    assert_unauthorized(client.get("/v1/health"), "invalid_api_key")
    response = client.post(
        "/v1/customers/deposit",
        data={"customer_id": "c1", "amount": 1},
        content_type="application/json",
    )
    assert_unauthorized(response, "invalid_api_key")
    assert not Customer.objects.exists()


def test_key_expiring_later_still_authenticates(api_key):
    key = the_key(api_key)
    key.expiry_date = timezone.now() + dt.timedelta(minutes=5)
    key.save(update_fields=["expiry_date"])

    response = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}").get("/v1/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_revoked_key_is_api_key_revoked_and_changes_nothing(api_key):
    the_key(api_key).revoke()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    assert_unauthorized(client.get("/v1/health"), "api_key_revoked")
    response = client.post(
        "/v1/customers/deposit",
        data={"customer_id": "c1", "amount": 1},
        content_type="application/json",
    )
    assert_unauthorized(response, "api_key_revoked")
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/customers/deposit"),
        ("POST", "/v1/billing/deposit"),
        ("GET", "/v1/customers/c1"),
        ("GET", "/v1/customers/deposit"),
        ("GET", "/v1/health"),
        ("DELETE", "/v1/customers/c1"),
    ],
)
def test_every_api_route_needs_a_key(method, path):
    response = Client().generic(
        method, path, data='{"customer_id":"c1","amount":1}', content_type="application/json"
    )

    assert_unauthorized(response, "missing_api_key")
    assert not Customer.objects.exists()


def test_a_key_works_for_its_own_project_only(project, api_key):
    response = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}").post(
        "/v1/customers/deposit", {"customer_id": "c1", "amount": 1}, "application/json"
    )

    assert response.status_code == 200
    assert Customer.objects.get().project == project


def test_last_used_at_is_written_on_first_use_then_at_most_once_per_five_minutes(api_key):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    key = the_key(api_key)
    assert key.last_used_at is None

    client.get("/v1/health")
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None

    client.get("/v1/health")
    key.refresh_from_db()
    assert key.last_used_at == first_use

    stale = timezone.now() - dt.timedelta(minutes=5, seconds=1)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    client.get("/v1/health")
    key.refresh_from_db()
    assert key.last_used_at > stale + dt.timedelta(minutes=5)


def test_public_routes_need_no_key():
    client = Client()

    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_revocation_applies_to_the_next_request_over_http(http, api_key):
    assert http.get("/v1/health").status_code == 200
    deposit = http.post("/v1/customers/deposit", json={"customer_id": "c1", "amount": 1})
    assert deposit.status_code == 200

    call_command("revoke_api_key", api_key.split(".", 1)[0])

    health = http.get("/v1/health")
    assert health.status_code == 401
    assert health.headers["WWW-Authenticate"] == "Bearer"
    assert health.json()["error"]["code"] == "api_key_revoked"
    read = http.get("/v1/customers/c1")
    assert (read.status_code, read.json()["error"]["code"]) == (401, "api_key_revoked")


def test_the_three_auth_errors_over_http(http, service):
    missing = http.get("/v1/customers/c1", headers={"Authorization": ""})
    invalid = http.get("/v1/customers/c1", headers={"Authorization": "Basic x"})
    unknown = http.get("/v1/customers/c1", headers={"Authorization": "Bearer abcd1234.zzzz"})

    assert [r.status_code for r in (missing, invalid, unknown)] == [401, 401, 401]
    assert [r.headers["WWW-Authenticate"] for r in (missing, invalid, unknown)] == ["Bearer"] * 3
    assert [r.json()["error"]["code"] for r in (missing, invalid, unknown)] == [
        "missing_api_key",
        "invalid_api_key",
        "invalid_api_key",
    ]
