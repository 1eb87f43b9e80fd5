"""Admin logins are throttled per username and address (django-axes), against the service
under gunicorn: a locked-out pair is refused even the right password until an operator resets
it, while other pairs and the API's key authentication carry on."""

from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def operator(transactional_db):
    return get_user_model().objects.create_superuser("operator", "", PASSWORD)


@pytest.fixture
def browser(service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        yield client


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    client.get("/admin/login/")
    return client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "next": "/admin/",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )


def is_logged_in(client: httpx.Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_after_repeated_wrong_passwords_the_right_one_is_refused_until_reset(operator, browser):
    statuses = [log_in(browser, "operator", f"wrong-{i}").status_code for i in range(30)]

    refused = log_in(browser, "operator", PASSWORD)

    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[4:]) == {429}  # the fifth failure locks the pair out
    assert refused.status_code == 429
    assert "Login locked" in refused.text
    assert "axes_reset_username operator" in refused.text
    assert not is_logged_in(browser)

    call_command("axes_reset")

    assert log_in(browser, "operator", PASSWORD).status_code == 302
    assert is_logged_in(browser)


def test_a_lockout_holds_one_username_from_one_address_only(operator, service, browser):
    get_user_model().objects.create_superuser("colleague", "", PASSWORD)
    for i in range(5):
        log_in(browser, "operator", f"wrong-{i}")
    assert log_in(browser, "operator", PASSWORD).status_code == 429

    with httpx.Client(base_url=service.base_url, timeout=30) as same_address:
        assert log_in(same_address, "colleague", PASSWORD).status_code == 302
    other_address = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=service.base_url, timeout=30, transport=other_address) as elsewhere:
        assert log_in(elsewhere, "operator", PASSWORD).status_code == 302

    call_command("axes_reset_username", "operator")
    assert log_in(browser, "operator", PASSWORD).status_code == 302


def test_the_api_is_untouched_by_admin_lockouts(operator, browser, http):
    for i in range(5):
        log_in(browser, "operator", f"wrong-{i}")
    assert log_in(browser, "operator", PASSWORD).status_code == 429

    assert http.get("/v1/health").status_code == 200
    unauthenticated = http.get("/v1/health", headers={"Authorization": "Bearer wrong.key"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "invalid_api_key"
