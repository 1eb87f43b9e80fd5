"""The optional per-key rate limit: off by default, 429 `rate_limited` with Retry-After over it."""

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def health(api_key: str):
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}").get("/v1/health")


def test_no_limit_applies_unless_an_operator_sets_one(api_key):
    assert {health(api_key).status_code for _ in range(30)} == {200}


def test_over_the_limit_a_key_gets_429_with_retry_after(api_key, make_key, project, settings):
    settings.API_RATE_LIMIT = "3/min"

    statuses = [health(api_key).status_code for _ in range(3)]
    limited = health(api_key)
    other_key = health(make_key(project))

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    body = limited.json()["error"]
    assert (body["type"], body["code"], body["retryable"]) == ("rate_limited", "rate_limited", True)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert body["request_id"] == limited["X-Request-Id"]
    assert other_key.status_code == 200  # the limit is per key
