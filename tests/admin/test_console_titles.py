"""List titles that say what they list, and no Delete a project's kept rows would refuse."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from customers.models import Project
from ledger import services


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("admin:ledger_ledgerentry_changelist", "Ledger entries"),
        ("admin:ledger_creditaccount_changelist", "Credit accounts"),
        ("admin:ledger_operatoraction_changelist", "Operator actions"),
    ],
)
def test_a_read_only_list_is_titled_by_what_it_lists(operator_client, page, title):
    response = operator_client.get(reverse(page))

    assert response.status_code == 200
    assert f"<h1>{title}</h1>" in response.content.decode()
    assert "to view</h1>" not in response.content.decode()


def test_only_an_empty_project_offers_delete(client, db):
    get_user_model().objects.create_superuser("root", "", "pw-for-tests")
    client.login(username="root", password="pw-for-tests")
    used = Project.objects.create(name="used")
    services.deposit(project=used, customer_id="c1", amount=Decimal(1), actor="test")
    empty = Project.objects.create(name="empty")

    used_page = client.get(reverse("admin:customers_project_change", args=[used.pk]))
    empty_page = client.get(reverse("admin:customers_project_change", args=[empty.pk]))
    refused = client.post(
        reverse("admin:customers_project_delete", args=[used.pk]), {"post": "yes"}
    )

    assert 'class="deletelink"' not in used_page.content.decode()
    assert 'class="deletelink"' in empty_page.content.decode()
    assert refused.status_code == 403
    assert Project.objects.filter(pk=used.pk).exists()
