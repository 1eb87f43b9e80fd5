"""Statement budgets of the billing endpoints, authentication included.

Counted as `django_assert_max_num_queries` counts them (SAVEPOINTs included) through Django's
test client. A charge touching one account costs at most 10 statements and a settlement 11 (it
locks the customer before it reads the freeze), and one spanning ten accounts costs exactly as
many: accounts are read, updated and written to the ledger in batches, never one statement per
account. Two of those are paid only by an operation that uses an account up: it reads and
writes the customer's spent sums.
"""

import json
from decimal import Decimal

import pytest
from django.db import connection

from ledger.services import deposit, freeze

pytestmark = pytest.mark.django_db

CHARGE_BUDGET = 10
BUDGET = 11  # a settlement's


@pytest.fixture
def api(client, api_key):
    """POST as the project's key; one first request makes the key's `last_used_at` fresh, so
    the measured requests do not also pay for its (at most once per 5 minutes) update."""
    headers = {"Authorization": f"Bearer {api_key}"}
    assert client.get("/v1/health", headers=headers).status_code == 200

    def post(path: str, body: dict) -> dict:
        response = client.post(
            path, data=json.dumps(body), content_type="application/json", headers=headers
        )
        assert response.status_code == 200, response.content
        return response.json()

    return post


def customer_with_accounts(project, customer_id: str, accounts: int) -> None:
    for _ in range(accounts):
        deposit(project=project, customer_id=customer_id, amount=Decimal(10), actor="setup")


def held(project, customer_id: str, transaction_id: str, accounts: int) -> None:
    """A freeze of `customer_id` holding credits on `accounts` accounts."""
    customer_with_accounts(project, customer_id, accounts)
    freeze(
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=Decimal(10 * accounts),
        actor="setup",
    )


def measure(django_assert_max_num_queries, call) -> tuple[int, dict]:
    with django_assert_max_num_queries(BUDGET) as captured:
        result = call()
    return len(captured), result


@pytest.mark.parametrize(
    ("path", "details"),
    [("/v1/billing/freeze", "freeze_details"), ("/v1/billing/deduct", "deduct_details")],
    ids=["freeze", "deduct"],
)
def test_charge_costs_the_same_few_statements_for_one_or_ten_accounts(
    api, project, django_assert_max_num_queries, path, details
):
    customer_with_accounts(project, "one", 1)
    customer_with_accounts(project, "ten", 10)

    one, one_result = measure(
        django_assert_max_num_queries,
        lambda: api(path, {"customer_id": "one", "transaction_id": "t1", "amount": 10}),
    )
    ten, ten_result = measure(
        django_assert_max_num_queries,
        lambda: api(path, {"customer_id": "ten", "transaction_id": "t10", "amount": 100}),
    )

    assert (len(one_result[details]), len(ten_result[details])) == (1, 10)
    assert one <= CHARGE_BUDGET
    assert ten == one


def test_a_deduct_that_uses_an_account_up_pays_for_the_spent_sums(
    api, project, django_assert_max_num_queries
):
    customer_with_accounts(project, "partly", 1)
    customer_with_accounts(project, "whole", 1)

    partly, _ = measure(
        django_assert_max_num_queries,
        lambda: api(
            "/v1/billing/deduct", {"customer_id": "partly", "transaction_id": "d1", "amount": 5}
        ),
    )
    whole, _ = measure(
        django_assert_max_num_queries,
        lambda: api(
            "/v1/billing/deduct", {"customer_id": "whole", "transaction_id": "d2", "amount": 10}
        ),
    )

    # It reads the sums first; PostgreSQL writes them with the rest of the operation.
    assert whole == partly + (1 if connection.vendor == "postgresql" else 2)


@pytest.mark.parametrize("actual_amount", [None, 5, 0], ids=["whole-freeze", "partial", "nothing"])
def test_consume_costs_the_same_few_statements_for_one_or_ten_accounts(
    api, project, django_assert_max_num_queries, actual_amount
):
    held(project, "one", "f1", 1)
    held(project, "ten", "f10", 10)
    body = {} if actual_amount is None else {"actual_amount": actual_amount}

    one, _ = measure(
        django_assert_max_num_queries,
        lambda: api("/v1/billing/consume", {"transaction_id": "f1", **body}),
    )
    ten, ten_result = measure(
        django_assert_max_num_queries,
        lambda: api("/v1/billing/consume", {"transaction_id": "f10", **body}),
    )

    expected_items = {None: 10, 5: 1, 0: 0}[actual_amount]
    assert len(ten_result["consume_details"]) == expected_items
    assert one <= BUDGET
    assert ten == one


def test_unfreeze_costs_the_same_few_statements_for_one_or_ten_accounts(
    api, project, django_assert_max_num_queries
):
    held(project, "one", "f1", 1)
    held(project, "ten", "f10", 10)

    one, _ = measure(
        django_assert_max_num_queries,
        lambda: api("/v1/billing/unfreeze", {"transaction_id": "f1"}),
    )
    ten, ten_result = measure(
        django_assert_max_num_queries,
        lambda: api("/v1/billing/unfreeze", {"transaction_id": "f10"}),
    )

    assert len(ten_result["unfreeze_details"]) == 10
    assert one <= BUDGET
    assert ten == one


def test_replays_stay_within_the_budget(api, project, django_assert_max_num_queries):
    held(project, "c1", "f1", 3)
    api("/v1/billing/consume", {"transaction_id": "f1", "actual_amount": 12})
    customer_with_accounts(project, "c2", 3)
    api("/v1/billing/deduct", {"customer_id": "c2", "transaction_id": "d1", "amount": 25})

    with django_assert_max_num_queries(BUDGET):
        assert api("/v1/billing/consume", {"transaction_id": "f1"})["is_idempotent_replay"]
    with django_assert_max_num_queries(BUDGET):
        body = {"customer_id": "c2", "transaction_id": "d1", "amount": 25}
        assert api("/v1/billing/deduct", body)["is_idempotent_replay"]


def test_consume_with_an_overage_pays_one_more_read_for_available_accounts(
    api, project, django_assert_max_num_queries
):
    """The overage is drawn from available credits, which costs one extra read of the
    customer's spendable accounts, whatever their number."""
    held(project, "one", "f1", 1)
    customer_with_accounts(project, "one", 1)
    held(project, "ten", "f10", 10)
    customer_with_accounts(project, "ten", 10)

    with django_assert_max_num_queries(BUDGET + 1) as one:
        api("/v1/billing/consume", {"transaction_id": "f1", "actual_amount": 15})
    with django_assert_max_num_queries(BUDGET + 1) as ten:
        result = api("/v1/billing/consume", {"transaction_id": "f10", "actual_amount": 195})

    assert len(result["consume_details"]) == 20
    assert len(ten) == len(one)


def test_a_customer_with_a_credit_line_pays_one_statement_more_per_charge(
    api, project, django_assert_max_num_queries
):
    from ledger.services import set_credit_limit

    customer_with_accounts(project, "plain", 1)
    customer_with_accounts(project, "trusted", 1)
    set_credit_limit(project=project, customer_id="trusted", limit=Decimal(100), actor="setup")

    plain, _ = measure(
        django_assert_max_num_queries,
        lambda: api(
            "/v1/billing/deduct", {"customer_id": "plain", "transaction_id": "p", "amount": 5}
        ),
    )
    trusted, _ = measure(
        django_assert_max_num_queries,
        lambda: api(
            "/v1/billing/deduct", {"customer_id": "trusted", "transaction_id": "t", "amount": 5}
        ),
    )
    # Into debt, using the account up: the line's update and its `credits.debt_opened` event
    # travel with the rest of the writes on PostgreSQL; SQLite runs each write on its own.
    with django_assert_max_num_queries(BUDGET + 3) as owing:
        result = api(
            "/v1/billing/deduct", {"customer_id": "trusted", "transaction_id": "o", "amount": 50}
        )

    # The lines are read once the customer is locked, in a statement of their own.
    assert trusted == plain + 1
    assert result["on_credit_amount"] == 45
    spent_sums = 1 if connection.vendor == "postgresql" else 2
    line_update_and_event = 0 if connection.vendor == "postgresql" else 2
    assert len(owing) == trusted + spent_sums + line_update_and_event
