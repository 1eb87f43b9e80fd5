"""What webhooks cost the API, counted through Django's test client like the other budgets.

An event's INSERT is conditional on the project having an enabled endpoint, and travels with
the operation's other writes on PostgreSQL: it costs no statement there, and one on SQLite.
A deposit always sends it (so with or without endpoints it costs the same); a charge only when
it takes the balance across the project's low-balance threshold. The threshold itself costs a
charge nothing: the project is read with the API key.
"""

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger import services
from ledger.webhooks.models import WebhookEndpoint, WebhookEvent
from tests.support import ApiKeyFactory, ProjectFactory

pytestmark = pytest.mark.django_db

EXTRA = 0 if connection.vendor == "postgresql" else 1


def api(client, project):
    headers = {"Authorization": f"Bearer {ApiKeyFactory(project=project).raw_key}"}
    assert client.get("/v1/health", headers=headers).status_code == 200  # last_used_at fresh

    def post(path: str, body: dict) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                path, json.dumps(body), content_type="application/json", headers=headers
            )
        assert response.status_code == 200, response.content
        return len(captured)

    return post


def project_with(*, endpoint: bool, threshold: str | None):
    project = ProjectFactory(
        low_balance_threshold=None if threshold is None else Decimal(threshold)
    )
    if endpoint:
        WebhookEndpoint.objects.create(project=project, url="http://127.0.0.1:9/")
    services.deposit(project=project, customer_id="c1", amount=Decimal(100), actor="setup")
    return project


def test_a_deposit_costs_the_same_with_or_without_endpoints(client):
    plain = api(client, project_with(endpoint=False, threshold=None))
    hooked = api(client, project_with(endpoint=True, threshold=None))
    body = {"customer_id": "c1", "amount": 5, "idempotency_key": "k1"}

    assert hooked("/v1/customers/deposit", body) == plain("/v1/customers/deposit", body)
    assert WebhookEvent.objects.filter(type="credits.deposited").count() == 2  # 1 + the setup


@pytest.mark.parametrize("path", ["/v1/billing/deduct", "/v1/billing/freeze"])
def test_a_charge_pays_nothing_for_webhooks_unless_it_crosses_the_threshold(client, path):
    plain = api(client, project_with(endpoint=False, threshold=None))
    watched_without_endpoint = api(client, project_with(endpoint=False, threshold="50"))
    hooked = api(client, project_with(endpoint=True, threshold="50"))

    def charge(post, transaction_id, amount):
        return post(path, {"customer_id": "c1", "transaction_id": transaction_id, "amount": amount})

    baseline = charge(plain, "t1", 10)
    assert charge(hooked, "t1", 10) == baseline  # 90: not crossed, no event
    assert charge(hooked, "t2", 50) == baseline + EXTRA  # 40: crossed, one event
    assert charge(watched_without_endpoint, "t1", 60) == baseline + EXTRA  # tried, not stored
    assert charge(hooked, "t3", 10) == baseline  # still below: no event
    assert WebhookEvent.objects.filter(type="credits.low_balance").count() == 1
