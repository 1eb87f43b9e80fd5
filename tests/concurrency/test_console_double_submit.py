"""One console form confirmed several times at once (a double click, a resent request) applies
once: real threads released together, outside a wrapping transaction, on both databases."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from ledger import services
from ledger.models import LedgerEntry, OperatorAction
from ledger.selectors.consistency import check_ledger
from tests.concurrency.test_deposit_races import run_together

pytestmark = pytest.mark.django_db(transaction=True)

SUBMITS = 4


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("grant", {"amount": "50", "wallet": "goodwill", "source": "support"}),
        ("deduct", {"amount": "3", "wallet": ""}),
    ],
)
def test_a_form_confirmed_several_times_at_once_applies_once(project, action, fields):
    services.deposit(project=project, customer_id="u1", amount=Decimal(10), actor="t")
    user = get_user_model().objects.create_user("alice", password="pw-long-1", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    customer = Customer.objects.get()
    url = reverse("admin:customers_customer_credit_action", args=[customer.pk, action])
    first = Client()
    first.force_login(user)
    token = re.search(r'name="token" value="([0-9a-f]+)"', first.get(url).content.decode())[1]
    data = {**fields, "reason": "once", "token": token, "confirm": "yes"}

    def submit(_: int) -> int:
        client = Client()
        client.force_login(user)
        return client.post(url, data).status_code

    statuses = run_together(submit, SUBMITS)

    assert statuses == [302] * SUBMITS, statuses
    assert OperatorAction.objects.filter(token=token).count() == 1
    assert LedgerEntry.objects.filter(actor="staff:alice").count() == 1
    assert check_ledger().ok
