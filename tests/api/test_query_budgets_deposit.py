"""Statement budgets of deposit and customer reads, authentication included.

Counted as `django_assert_max_num_queries` counts them (savepoints included). The key's
`last_used_at` is made fresh by one request first, as it is for a busy key.
"""

import json
from decimal import Decimal

import pytest
from django.test import Client

from ledger import services
from ledger.models import CreditAccount, LedgerEntry, Transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_key) -> Client:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert client.get("/v1/health").status_code == 200  # last_used_at is now fresh
    return client


def deposit(api: Client, body: dict):
    return api.post("/v1/customers/deposit", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("accounts", [1, 50])
def test_reading_a_customer_takes_at_most_4_queries_however_many_accounts(
    api, project, django_assert_max_num_queries, accounts
):
    for index in range(accounts):
        services.deposit(
            project=project,
            customer_id="c1",
            amount=Decimal(index + 1),
            actor="test",
            wallet=f"w{index % 3}",
            source=f"s{index % 2}",
        )

    with django_assert_max_num_queries(4):
        response = api.get("/v1/customers/c1")

    assert response.status_code == 200
    assert len(response.json()["accounts"]) == accounts
    assert response.json()["balance"]["total"] == accounts * (accounts + 1) // 2


def test_first_deposit_to_a_new_customer_with_a_key_takes_at_most_10_queries(
    api, django_assert_max_num_queries
):
    body = {"customer_id": "new", "amount": 5, "idempotency_key": "k1", "name": "N"}

    with django_assert_max_num_queries(10):
        response = deposit(api, body)

    assert response.status_code == 200
    assert (CreditAccount.objects.count(), LedgerEntry.objects.count()) == (1, 1)
    assert Transaction.objects.get().transaction_id == "k1"


def test_deposit_to_an_existing_customer_with_a_key_takes_at_most_10_queries(
    api, django_assert_max_num_queries
):
    deposit(api, {"customer_id": "c1", "amount": 1, "idempotency_key": "k0"})

    with django_assert_max_num_queries(10):
        response = deposit(
            api, {"customer_id": "c1", "amount": 5, "idempotency_key": "k1", "name": "changed"}
        )

    assert response.status_code == 200
    assert response.json()["is_idempotent_replay"] is False


def test_deposit_replay_takes_at_most_6_queries(api, django_assert_max_num_queries):
    body = {"customer_id": "c1", "amount": 5, "idempotency_key": "k1"}
    deposit(api, body)

    with django_assert_max_num_queries(6):
        response = deposit(api, body)

    assert response.json()["is_idempotent_replay"] is True
