"""A write that reaches a read-only node (SQLSTATE 25006: a standby being promoted, or a
DATABASE_URL that leads to a standby) is a database outage like any other: a retryable 503
`service_unavailable`, never a 500. Shown on the test cluster through a connection whose
transactions are read-only (`default_transaction_read_only=on`)."""

from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest

from ledger import services
from ledger.models import Transaction
from tests.server import Service, shared_database_url

pytestmark = [pytest.mark.http, pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

CUSTOMER = "on-a-read-only-node"


@pytest.fixture
def read_only_service():
    options = quote("-c default_transaction_read_only=on")
    server = Service(workers=1, env={"DATABASE_URL": f"{shared_database_url()}?options={options}"})
    yield server
    server.stop()


def test_a_charge_on_a_read_only_node_is_a_retryable_503_and_changes_nothing(
    read_only_service, http, project, api_key
):
    services.deposit(project=project, customer_id=CUSTOMER, amount=Decimal(100), actor="t")
    # Through the writable service first: the key's last use is recorded, so the read-only
    # one's authentication has nothing to write and the charge itself meets the read-only node.
    assert http.get(f"/v1/customers/{CUSTOMER}").status_code == 200
    headers = {"Authorization": f"Bearer {api_key}"}
    url = read_only_service.base_url

    charge = httpx.post(
        f"{url}/v1/billing/deduct",
        headers=headers,
        json={"customer_id": CUSTOMER, "amount": 1, "transaction_id": "t-1"},
        timeout=30,
    )
    read = httpx.get(f"{url}/v1/customers/{CUSTOMER}", headers=headers, timeout=30)

    assert charge.status_code == 503, charge.text
    error = charge.json()["error"]
    assert (error["code"], error["retryable"]) == ("service_unavailable", True)
    assert not Transaction.objects.filter(transaction_id="t-1").exists()
    assert read.status_code == 200
    assert read.json()["balance"]["available"] == 100
