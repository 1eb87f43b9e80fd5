"""Reads on standbys (DATABASE_REPLICA_URL, both standbys with
`target_session_attrs=prefer-standby`), shown by each node's own statement counts
(pg_stat_statements, which every node of the formation loads): ledger pages, `as_of` reads,
the console's overview and CSV export ran on a standby; balances, charges, quotes and
transaction lookups on the primary. A page read right after a deposit shows it, from a
standby that has replayed it, or from the primary while the standbys lag behind."""

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.ha.support import deposit, manage, services

pytestmark = [pytest.mark.ha, pytest.mark.postgres_only, pytest.mark.http]

CUSTOMER = "read-on-standbys"
PASSWORD = "a-console-password-" + uuid.uuid4().hex


@pytest.fixture
def instance(formation) -> Iterator:
    with formation.primary().connect() as primary:
        primary.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    standbys = formation.database_url(formation.standbys(), attrs="prefer-standby")
    (server,) = services(formation.database_url(), count=1, DATABASE_REPLICA_URL=standbys)
    yield server
    server.stop()


@pytest.fixture
def api(instance, project_key) -> Iterator[httpx.Client]:
    _, key = project_key
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=instance.base_url, headers=headers, timeout=30) as client:
        yield client


def ran_on(formation, request: Callable[[], httpx.Response], table: str) -> dict[str, int]:
    """Sends `request` (which must succeed) and counts, on each node, the statements naming
    `table` that ran meanwhile: {"primary": n, "standbys": n}."""
    primary, standbys = formation.primary(), formation.standbys()
    for node in [primary, *standbys]:
        with node.connect() as connection:
            connection.execute("SELECT pg_stat_statements_reset()")
    response = request()
    assert response.status_code == 200, response.text

    def calls(node) -> int:
        with node.connect() as connection:
            (count,) = connection.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE query LIKE %s AND query NOT LIKE %s",
                [f"%{table}%", "%pg_stat_statements%"],
            ).fetchone()
        return int(count)

    return {"primary": calls(primary), "standbys": sum(calls(node) for node in standbys)}


def test_reads_that_may_lag_run_on_a_standby_and_the_rest_on_the_primary(formation, instance, api):
    deposit(instance.base_url, api.headers["Authorization"].split()[1], CUSTOMER, 100)
    charge = {"customer_id": CUSTOMER, "amount": 1, "transaction_id": "on-primary"}

    on_standby = {
        "ledger page": (lambda: api.get(f"/v1/customers/{CUSTOMER}/ledger"), "ledger_ledgerentry"),
        "as_of read": (
            lambda: api.get(
                f"/v1/customers/{CUSTOMER}", params={"as_of": dt.datetime.now(dt.UTC).isoformat()}
            ),
            "ledger_ledgerentry",
        ),
    }
    on_primary = {
        "balance": (lambda: api.get(f"/v1/customers/{CUSTOMER}"), "ledger_creditaccount"),
        "quote": (lambda: api.post("/v1/billing/quote", json=charge), "ledger_creditaccount"),
        "deduct": (lambda: api.post("/v1/billing/deduct", json=charge), "ledger_creditaccount"),
        "replayed deduct": (
            lambda: api.post("/v1/billing/deduct", json=charge),
            "ledger_transaction",
        ),
        "transaction": (
            lambda: api.get("/v1/billing/transactions/on-primary"),
            "ledger_transaction",
        ),
    }
    seen = {
        name: ran_on(formation, request, table)
        for name, (request, table) in {**on_standby, **on_primary}.items()
    }
    print(seen)

    for name in on_standby:
        assert seen[name]["primary"] == 0 and seen[name]["standbys"] > 0, (name, seen[name])
    for name in on_primary:
        assert seen[name]["primary"] > 0 and seen[name]["standbys"] == 0, (name, seen[name])


def test_a_page_read_right_after_a_deposit_shows_it_from_a_standby_or_the_primary(
    formation, instance, api
):
    key = api.headers["Authorization"].split()[1]
    deposit(instance.base_url, key, CUSTOMER, 100)

    def page_after_a_deposit(idempotency_key: str) -> Callable[[], httpx.Response]:
        def request() -> httpx.Response:
            made = api.post(
                "/v1/customers/deposit",
                json={"customer_id": CUSTOMER, "amount": 7, "idempotency_key": idempotency_key},
            )
            assert made.status_code == 200, made.text
            page = api.get(f"/v1/customers/{CUSTOMER}/ledger", params={"limit": 1})
            assert page.json()["items"][0]["account_id"] == made.json()["account_id"]
            return page

        return request

    caught_up = ran_on(formation, page_after_a_deposit("while-replaying"), "ledger_ledgerentry")
    standbys = formation.standbys()
    for node in standbys:
        with node.connect() as connection:
            connection.execute("SELECT pg_wal_replay_pause()")
    try:
        lagging = ran_on(formation, page_after_a_deposit("while-paused"), "ledger_ledgerentry")
    finally:
        for node in standbys:
            with node.connect() as connection:
                connection.execute("SELECT pg_wal_replay_resume()")

    # The deposit writes an entry on the primary; the page read it on a standby once the
    # standby had replayed it, and on the primary while replay was paused.
    assert caught_up["standbys"] > 0, caught_up
    assert lagging["standbys"] == 0 and lagging["primary"] > caught_up["primary"], lagging


def test_the_console_overview_and_csv_export_read_from_a_standby(formation, instance, project_key):
    url = formation.database_url()
    username = f"staff-{uuid.uuid4().hex[:6]}"
    manage(
        url, "createsuperuser", "--noinput", "--username", username, "--email", "s@example.com",
        env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )  # fmt: skip
    deposit(instance.base_url, project_key[1], CUSTOMER, 100)
    with httpx.Client(base_url=instance.base_url, timeout=30) as console:
        login = console.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        signed_in = console.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
        assert signed_in.status_code == 302, signed_in.text

        overview = ran_on(
            formation, lambda: console.get("/admin/credits-overview/"), "ledger_ledgerentry"
        )
        export = ran_on(
            formation,
            lambda: console.get("/admin/ledger/ledgerentry/export.csv"),
            "ledger_ledgerentry",
        )

    assert overview["primary"] == 0 and overview["standbys"] > 0, overview
    assert export["primary"] == 0 and export["standbys"] > 0, export


IN_AND_OUT_OF_A_TRANSACTION = """
from django.db import transaction
from credits_project.replicas import reads_from_standby
from credits_project.sql import fetch
from customers.models import Project
with reads_from_standby():
    print(fetch("SELECT pg_is_in_recovery()")[0][0], Project.objects.all().db)
    with transaction.atomic():
        print(fetch("SELECT pg_is_in_recovery()")[0][0], Project.objects.all().db)
"""


def test_inside_a_transaction_reads_go_to_the_primary_even_in_a_standby_block(formation):
    standbys = formation.database_url(formation.standbys(), attrs="prefer-standby")
    shown = manage(
        formation.database_url(), "shell", "-v0", "-c", IN_AND_OUT_OF_A_TRANSACTION,
        env={"DATABASE_REPLICA_URL": standbys},
    )  # fmt: skip

    assert shown.split("\n")[-3:] == ["True replica", "False default", ""], shown
