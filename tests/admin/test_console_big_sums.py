"""Sums past 2^63 micro-credits (about 9.2 * 10^12 credits), made of valid deposits and
charges of one tenant: every console page and API read that sums answers them exactly, on
SQLite (whose integer SUM overflows there) as on PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from ledger import services
from ledger.selectors import console
from ledger.selectors.consistency import check_ledger
from tests.support import ProjectFactory, deposit

MAX = Decimal(10**12)  # the largest amount one operation takes
TEN_MAX = 10 * MAX  # 10^19 micro-credits: past 2^63
DAY = dt.timedelta(days=1)


@pytest.fixture
def whale(project):
    """30 deposits of 10^12 expiring in three days: 10 deducted, 10 frozen, 10 left; and a
    second customer whose 10 deposits of 10^12 expired unused."""
    now = timezone.now()
    for n in range(30):
        deposit(
            project, MAX, customer_id="whale", idempotency_key=f"d{n}", expires_at=now + 3 * DAY
        )
    for n in range(10):
        services.deduct(
            project=project, customer_id="whale", transaction_id=f"x{n}", amount=MAX, actor="t"
        )
        services.freeze(
            project=project, customer_id="whale", transaction_id=f"f{n}", amount=MAX, actor="t"
        )
        deposit(
            project,
            MAX,
            customer_id="lapsed",
            idempotency_key=f"l{n}",
            now=now - 2 * DAY,
            expires_at=now - DAY,
        )
    services.expire_due()
    return Customer.objects.get(project=project, external_id="whale")


def test_the_console_pages_that_sum_answer_past_2_to_the_63(operator_client, project, whale):
    ProjectFactory()  # the customer list sums every project's customers
    customer_page = reverse("admin:customers_customer_change", args=[whale.pk])
    grant = reverse("admin:customers_customer_credit_action", args=[whale.pk, "grant"])
    for url, query in [
        (reverse("admin:customers_customer_changelist"), {}),
        (customer_page, {}),
        (grant, {}),
        (reverse("credits_overview"), {"project": project.pk}),
    ]:
        response = operator_client.get(url, query)
        assert response.status_code == 200, url
    page = operator_client.get(customer_page).content.decode()
    assert "30000000000000" in page and "10000000000000" in page  # total, available


def test_the_console_sums_are_exact_past_2_to_the_63(project, whale):
    now = timezone.now()

    breakdown = console.wallet_breakdown(whale, at=now)
    assert (breakdown.total, breakdown.used, breakdown.frozen) == (3 * TEN_MAX, TEN_MAX, TEN_MAX)
    assert breakdown.available == TEN_MAX
    listed = Customer.objects.annotate(available_now=console.available_subquery(now))
    assert {c.external_id: c.available_now for c in listed} == {"whale": TEN_MAX, "lapsed": None}

    overview = console.project_overview(project, at=now)
    assert overview.outstanding == [("default", TEN_MAX)]
    assert (overview.expiring_7, overview.expiring_30) == (TEN_MAX, TEN_MAX)
    assert (overview.open_freezes, overview.frozen_total) == (10, TEN_MAX)
    assert [(who, amount) for who, amount, _ in overview.top_consumers] == [("whale", TEN_MAX)]
    assert overview.granted[-1][1] == 3 * TEN_MAX
    assert overview.consumed[-1][1] == TEN_MAX
    assert sum(amount for _, amount in overview.breakage) == TEN_MAX

    history = console.available_history(whale, at=now, current={"default": TEN_MAX}, days=3)
    # Granted 3 * 10^13 today, of which freezes and deducts took 2 * 10^13.
    assert [level for _, level in history["default"]][-2:] == [0, TEN_MAX]
    assert check_ledger().ok


def test_the_top_consumers_order_exactly_among_sums_past_2_to_the_63(project):
    for customer, deducts in [("nine", 9), ("ten", 10), ("eleven", 11), ("two", 2)]:
        for n in range(deducts):
            deposit(project, MAX, customer_id=customer, idempotency_key=f"{customer}{n}")
            services.deduct(
                project=project,
                customer_id=customer,
                transaction_id=f"{customer}{n}",
                amount=MAX,
                actor="t",
            )
    # One more credit-millionth makes "ten" a hair above ten times the maximum.
    deposit(project, Decimal("0.000001"), customer_id="ten", idempotency_key="tiny")
    services.deduct(
        project=project,
        customer_id="ten",
        transaction_id="tiny",
        amount=Decimal("0.000001"),
        actor="t",
    )

    top = console.project_overview(project).top_consumers

    assert [(who, amount) for who, amount, _ in top] == [
        ("eleven", 11 * MAX),
        ("ten", TEN_MAX + Decimal("0.000001")),
        ("nine", 9 * MAX),
        ("two", 2 * MAX),
    ]


def test_the_api_reads_of_a_balance_past_2_to_the_63_are_exact(api_key, project, whale):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

    now = api.get("/v1/customers/whale")
    assert now.status_code == 200, now.content
    assert now.json()["balance"] == {
        "total": 3 * 10**13,
        "used": 10**13,
        "frozen": 10**13,
        "available": 10**13,
    }
    at = timezone.now().isoformat()
    earlier = api.get("/v1/customers/whale", {"as_of": at})
    assert earlier.status_code == 200, earlier.content
    assert earlier.json()["balance"]["available"] == 10**13
