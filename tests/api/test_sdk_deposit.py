"""The published Python SDK (velobase-billing 0.2.2) against the service under gunicorn:
deposits and customer reads, with customer ids that need percent-encoding."""

from collections.abc import Iterator

import pytest
from velobase_billing import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
    Velobase,
)

from ledger.models import CreditAccount, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

ODD_IDS = ["user+1@x.com", "org/team/user", "with space", "ünïcødé 客户", "a+b/c d@é"]


@pytest.fixture
def sdk(service, api_key, transactional_db) -> Iterator[Velobase]:
    with Velobase(api_key=api_key, base_url=service.base_url, max_retries=0) as client:
        yield client


def test_sdk_deposit_returns_the_typed_response(sdk):
    result = sdk.customers.deposit(
        customer_id="c1",
        amount=1000,
        wallet="promo_campaign_2026",
        source="free_trial",
        starts_at="2026-01-01T00:00:00Z",
        expires_at="2099-01-01T00:00:00+00:00",
        idempotency_key="sdk-1",
        name="Alice",
        email="alice@example.com",
        metadata={"plan": "pro"},
    )

    account = CreditAccount.objects.get()
    assert result.model_dump() == {
        "customer_id": "c1",
        "account_id": str(account.pk),
        "wallet": "promo_campaign_2026",
        "source": "free_trial",
        "credit_type": "promo_campaign_2026",
        "total_amount": 1000,
        "added_amount": 1000,
        "starts_at": "2026-01-01T00:00:00.000Z",
        "expires_at": "2099-01-01T00:00:00.000Z",
        "record_id": str(LedgerEntry.objects.get().pk),
        "is_idempotent_replay": False,
    }


def test_sdk_deposit_retry_with_the_same_key_is_a_replay(sdk):
    first = sdk.customers.deposit(customer_id="c1", amount=10, idempotency_key="k1")
    second = sdk.customers.deposit(customer_id="c1", amount=10, idempotency_key="k1")

    assert second.model_dump() == {**first.model_dump(), "is_idempotent_replay": True}
    assert CreditAccount.objects.count() == 1


def test_sdk_get_reads_profile_and_wallets(sdk):
    sdk.customers.deposit(customer_id="c1", amount=700, name="Alice", metadata={"plan": "pro"})
    sdk.customers.deposit(customer_id="c1", amount=300, credit_type="promo", source="trial")

    customer = sdk.customers.get("c1")

    assert (customer.id, customer.name, customer.email, customer.metadata) == (
        "c1",
        "Alice",
        None,
        {"plan": "pro"},
    )
    assert sorted(customer.wallets) == ["default", "promo"]
    assert customer.wallets["promo"].sources[0].source == "trial"
    assert customer.balance.model_dump() == {
        "total": 1000.0,
        "used": 0.0,
        "frozen": 0.0,
        "available": 1000.0,
    }
    assert customer.created_at.endswith("Z")


def test_sdk_deposit_and_get_round_trip_customer_ids_that_need_encoding(sdk):
    for index, customer_id in enumerate(ODD_IDS, start=1):
        # The SDK also sends the key as a header, so it must be ASCII there.
        deposited = sdk.customers.deposit(
            customer_id=customer_id, amount=index, idempotency_key=f"key {index}"
        )
        assert deposited.customer_id == customer_id

    read = {customer_id: sdk.customers.get(customer_id) for customer_id in ODD_IDS}

    assert {cid: (c.id, c.balance.total) for cid, c in read.items()} == {
        cid: (cid, float(index)) for index, cid in enumerate(ODD_IDS, start=1)
    }


def test_sdk_raises_its_typed_errors_with_our_messages(sdk, service):
    sdk.customers.deposit(customer_id="c1", amount=1, idempotency_key="k1")

    with pytest.raises(NotFoundError, match="customer not found"):
        sdk.customers.get("nobody/else")
    with pytest.raises(ConflictError, match="already used by another customer"):
        sdk.customers.deposit(customer_id="c2", amount=1, idempotency_key="k1")
    with pytest.raises(ConflictError, match="already used with different parameters"):
        sdk.customers.deposit(customer_id="c1", amount=2, idempotency_key="k1")
    with pytest.raises(ValidationError, match="amount must be a positive number"):
        sdk.customers.deposit(customer_id="c1", amount=0)
    stranger = Velobase(api_key="abcd1234.nope", base_url=service.base_url, max_retries=0)
    with stranger, pytest.raises(AuthenticationError, match="invalid API key"):
        stranger.customers.get("c1")
