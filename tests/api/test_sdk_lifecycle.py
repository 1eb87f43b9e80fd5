"""The published Python SDK (`velobase-billing` 0.2.2) against the service under gunicorn: the
whole staged-billing lifecycle, with the balance read back after every step."""

import pytest
from velobase_billing import (
    ConflictError,
    CustomerBalance,
    NotFoundError,
    ValidationError,
    Velobase,
)

pytestmark = pytest.mark.http

HOUR = 3600


@pytest.fixture
def client(service, api_key, transactional_db):
    with Velobase(api_key=api_key, base_url=service.base_url, max_retries=0) as sdk:
        yield sdk


def balance(client: Velobase, customer_id: str = "user_42") -> tuple[float, float, float, float]:
    """(total, used, frozen, available) as the SDK reads them."""
    customer = client.customers.get(customer_id)
    summed = customer.balance
    return summed.total, summed.used, summed.frozen, summed.available


def test_sdk_deposit_freeze_consume_unfreeze_deduct_and_replay(client):
    deposited = client.customers.deposit(
        customer_id="user_42", amount=1000, idempotency_key="topup-1", name="Ada"
    )
    assert (deposited.customer_id, deposited.total_amount, deposited.added_amount) == (
        "user_42",
        1000,
        1000,
    )
    assert (deposited.wallet, deposited.credit_type, deposited.is_idempotent_replay) == (
        "default",
        "default",
        False,
    )
    promo = client.customers.deposit(
        customer_id="user_42",
        amount=100,
        wallet="promo",
        expires_at="2999-01-01T00:00:00Z",
        idempotency_key="promo-1",
    )
    customer = client.customers.get("user_42")
    assert (customer.id, customer.name) == ("user_42", "Ada")
    assert customer.balance == CustomerBalance(total=1100, used=0, frozen=0, available=1100)

    # Freeze: soonest-expiring credits first, so the promo wallet is held before the default.
    frozen = client.billing.freeze(
        customer_id="user_42",
        amount=300,
        transaction_id="job-1",
        business_type="TASK",
        description="render video",
        unfreeze_after_seconds=HOUR,
    )
    assert (frozen.transaction_id, frozen.frozen_amount, frozen.is_idempotent_replay) == (
        "job-1",
        300,
        False,
    )
    assert [(d["account_id"], d["amount"]) for d in frozen.freeze_details] == [
        (promo.account_id, 100),
        (deposited.account_id, 200),
    ]
    assert frozen.unfreeze_after is not None
    assert frozen.consume_after is None
    assert balance(client) == (1100, 0, 300, 800)

    # Partial consume: the actual cost is taken in the freeze's order, the rest comes back.
    consumed = client.billing.consume(transaction_id="job-1", actual_amount=120.5)
    assert (consumed.consumed_amount, consumed.returned_amount) == (120.5, 179.5)
    assert [(d["account_id"], d["amount"]) for d in consumed.consume_details] == [
        (promo.account_id, 100),
        (deposited.account_id, 20.5),
    ]
    assert consumed.is_idempotent_replay is False
    assert balance(client) == (1100, 120.5, 0, 979.5)

    # Another freeze, released in full.
    client.billing.freeze(
        customer_id="user_42", amount=200, transaction_id="job-2", consume_after_seconds=HOUR
    )
    assert balance(client) == (1100, 120.5, 200, 779.5)
    unfrozen = client.billing.unfreeze(transaction_id="job-2")
    assert (unfrozen.transaction_id, unfrozen.unfrozen_amount) == ("job-2", 200)
    assert [(d["account_id"], d["amount"]) for d in unfrozen.unfreeze_details] == [
        (deposited.account_id, 200)
    ]
    assert unfrozen.is_idempotent_replay is False
    assert balance(client) == (1100, 120.5, 0, 979.5)

    # A direct deduction.
    deducted = client.billing.deduct(
        customer_id="user_42", amount=50, transaction_id="order-7", business_type="ORDER"
    )
    assert (deducted.deducted_amount, deducted.is_idempotent_replay) == (50, False)
    assert [(d["account_id"], d["amount"]) for d in deducted.deduct_details] == [
        (deposited.account_id, 50)
    ]
    assert balance(client) == (1100, 170.5, 0, 929.5)

    # Every retry replays its original answer and moves nothing.
    assert client.customers.deposit(
        customer_id="user_42", amount=1000, idempotency_key="topup-1"
    ).model_dump() == {**deposited.model_dump(), "is_idempotent_replay": True}
    assert client.billing.freeze(
        customer_id="user_42",
        amount=300,
        transaction_id="job-1",
        business_type="TASK",
        description="a retry may say anything here",
        unfreeze_after_seconds=HOUR,
    ).model_dump() == {**frozen.model_dump(), "is_idempotent_replay": True}
    assert client.billing.consume(transaction_id="job-1").model_dump() == {
        **consumed.model_dump(),
        "is_idempotent_replay": True,
    }
    assert client.billing.unfreeze(transaction_id="job-2").model_dump() == {
        **unfrozen.model_dump(),
        "is_idempotent_replay": True,
    }
    assert client.billing.deduct(
        customer_id="user_42", amount=50, transaction_id="order-7", business_type="ORDER"
    ).model_dump() == {**deducted.model_dump(), "is_idempotent_replay": True}
    assert balance(client) == (1100, 170.5, 0, 929.5)


def test_sdk_raises_its_error_classes_for_the_service_errors(client):
    client.customers.deposit(customer_id="user_42", amount=10, idempotency_key="topup-1")
    client.billing.freeze(
        customer_id="user_42", amount=5, transaction_id="job-1", unfreeze_after_seconds=HOUR
    )
    client.billing.unfreeze(transaction_id="job-1")

    failures = [
        (
            ValidationError,
            "insufficient balance",
            lambda: client.billing.deduct(
                customer_id="user_42", amount=11, transaction_id="order-1"
            ),
        ),
        (
            ValidationError,
            "no frozen credits to consume for this transaction",
            lambda: client.billing.consume(transaction_id="job-1"),
        ),
        (
            ConflictError,
            "this transaction id is already used by another customer or operation",
            lambda: client.billing.deduct(customer_id="user_42", amount=1, transaction_id="job-1"),
        ),
        (
            ConflictError,
            "this idempotency key was already used with different parameters",
            lambda: client.billing.freeze(
                customer_id="user_42", amount=6, transaction_id="job-1", unfreeze_after_seconds=HOUR
            ),
        ),
        (
            NotFoundError,
            "customer not found",
            lambda: client.billing.deduct(customer_id="nobody", amount=1, transaction_id="order-2"),
        ),
    ]
    for error_class, message, call in failures:
        with pytest.raises(error_class) as raised:
            call()
        assert raised.value.message == message
    assert balance(client) == (10, 0, 0, 10)


def test_sdk_lists_and_pages_a_ledger_with_refunds_voids_debts_and_repayments(
    client, service, project
):
    from decimal import Decimal

    from ledger import services

    client.customers.deposit(customer_id="user_42", amount=10, idempotency_key="first")
    client.customers.deposit(customer_id="user_42", amount=5, wallet="promo")
    services.set_credit_limit(
        project=project, customer_id="user_42", limit=Decimal(50), actor="test"
    )
    client.billing.deduct(customer_id="user_42", amount=30, transaction_id="job")  # 15 owed
    services.refund(
        project=project,
        transaction_id="job",
        refund_id="r1",
        amount=Decimal(10),  # takes 10 of the 15 owed off
        actor="test",
    )
    pay = client.customers.deposit(customer_id="user_42", amount=8, idempotency_key="pay")
    services.void(
        project=project,
        customer_id="user_42",
        account_id=int(pay.account_id),  # 8, of which 5 paid the debt: 3 voided
        void_id="v1",
        actor="test",
    )

    pages, cursor = [], None
    while True:
        page = client.customers.ledger("user_42", limit=2, cursor=cursor)
        pages.append(page)
        if not page.has_more:
            break
        cursor = page.next_cursor
    items = [item for page in pages for item in page.items]

    kinds = {item.operation_type for item in items}
    assert {"GRANT", "CONSUME", "DEBT", "REFUND", "REPAY", "VOID"} <= kinds
    assert len(items) == pages[0].total_count == len({item.id for item in items})
    debt = next(item for item in items if item.operation_type == "DEBT")
    assert debt.account_id.startswith("credit_line:") and debt.wallet is None
    refunds = client.customers.ledger("user_42", operation_type="REFUND")
    assert {item.transaction_id for item in refunds.items} == {"r1"}
