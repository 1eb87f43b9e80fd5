"""The console's model forms validate each field the way the API validates the same field: the
customer's profile as a deposit's, a project's notice settings as an amount and a wallet name.
What they refuse is shown on the field and saves nothing; what they save the API can render."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from customers.models import Customer, Project
from tests.support import deposit


@pytest.fixture
def superuser_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-long-1"))
    return client


def edit_customer(client, customer: Customer, **fields):
    form = {"name": "", "email": "", "metadata": "{}", **fields}
    return client.post(reverse("admin:customers_customer_change", args=[customer.pk]), form)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metadata": "[1, 2, 3]"}, "metadata"),
        ({"metadata": '"str"'}, "metadata"),
        ({"metadata": "42"}, "metadata"),
        ({"metadata": json.dumps({"k": "x" * 17_000})}, "metadata"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
    ],
)
def test_the_customer_form_refuses_what_the_api_refuses_and_saves_nothing(
    superuser_client, project, fields, field
):
    deposit(project, 10, customer_id="c1")
    customer = Customer.objects.get()

    response = edit_customer(superuser_client, customer, **fields)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert (customer.metadata, customer.email) == ({}, None)


def test_what_the_customer_form_saves_the_api_reads_back(superuser_client, project, api_key):
    deposit(project, 10, customer_id="c1")
    customer = Customer.objects.get()

    response = edit_customer(
        superuser_client,
        customer,
        name="Ada",
        email="ada@example.com",
        metadata='{"plan": "pro", "seats": 3.50}',
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    emptied = edit_customer(superuser_client, customer, name="Ada", metadata="")
    assert emptied.status_code == 302

    read = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}").get("/v1/customers/c1")
    assert read.status_code == 200
    assert (read.json()["name"], read.json()["email"], read.json()["metadata"]) == (
        "Ada",
        None,
        {},
    )


def edit_project(client, project: Project, **fields):
    form = {
        "name": project.name,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "low_balance_threshold": "",
        "low_balance_wallet": "",
        "expiring_notice_days": "",
        **fields,
    }
    return client.post(reverse("admin:customers_project_change", args=[project.pk]), form)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"low_balance_threshold": "10000000000000"}, "low_balance_threshold"),
        ({"low_balance_threshold": "0"}, "low_balance_threshold"),
        ({"low_balance_threshold": "-5"}, "low_balance_threshold"),
        ({"expiring_notice_days": "1000000000"}, "expiring_notice_days"),
        ({"expiring_notice_days": "0"}, "expiring_notice_days"),
    ],
)
def test_the_project_form_refuses_notice_settings_the_service_cannot_use(
    superuser_client, project, fields, field
):
    response = edit_project(superuser_client, project, **fields)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    project.refresh_from_db()
    assert (project.low_balance_threshold, project.expiring_notice_days) == (None, None)


def test_the_project_form_saves_valid_notice_settings(superuser_client, project):
    response = edit_project(
        superuser_client,
        project,
        low_balance_threshold="12.5",
        low_balance_wallet="promo",
        expiring_notice_days="7",
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    project = Project.objects.get(pk=project.pk)
    assert (str(project.low_balance_threshold), project.low_balance_wallet) == ("12.5", "promo")
    assert project.expiring_notice_days == 7
