"""Every action of every page of the console, walked as read-only support staff: each declares
the permission it needs, support is offered none that changes data, and a POST of any of them
changes nothing. Revoking a key is written to the admin history with the actor."""

from decimal import Decimal

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core import serializers
from django.test import RequestFactory
from django.urls import reverse

from customers.models import ApiKey
from ledger import services
from ledger.models import OperatorAction
from ledger.webhooks.delivery import fan_out
from ledger.webhooks.models import WebhookDelivery
from tests.admin.conftest import staff
from tests.support import ApiKeyFactory
from tests.webhooks.support import endpoint


def registered_actions() -> list[tuple[admin.ModelAdmin, str, object]]:
    """(model admin, action name, action) for every action on every registered page."""
    return [
        (model_admin, name, function)
        for model_admin in admin.site._registry.values()
        for function, name, _ in model_admin._get_base_actions()
    ]


def everything() -> dict[str, str]:
    """Every row of every model but the sessions, serialized: what no refused action changes."""
    return {
        model._meta.label: serializers.serialize("json", model._base_manager.order_by("pk"))
        for model in apps.get_models()
        if model._meta.app_label != "sessions"
    }


@pytest.fixture
def one_of_each(project):
    """A row on every page that has actions: keys, customers, credits, slot and entitlement
    events, an operator's action, a webhook endpoint and its delivery, login records."""
    ApiKeyFactory(project=project)
    endpoint(project, "http://127.0.0.1:9/hooks")
    services.deposit(
        project=project, customer_id="c1", amount=Decimal(10), actor="test", wallet="promo"
    )
    services.deduct(
        project=project, customer_id="c1", transaction_id="d1", amount=Decimal(1), actor="test"
    )
    services.grant_capacity(
        project=project, customer_id="c1", wallet="jobs", amount=2, actor="test"
    )
    services.set_entitlement(
        project=project, customer_id="c1", feature_key="tier", value="pro", actor="test"
    )
    fan_out()
    login = {"username": "mallory", "ip_address": "127.0.0.1", "path_info": "/admin/login/"}
    AccessAttempt.objects.create(**login, failures_since_start=1)
    AccessFailureLog.objects.create(**login)
    AccessLog.objects.create(**login)
    OperatorAction.objects.create(
        customer=project.customers.get(),
        actor="staff:alice",
        action=OperatorAction.Action.GRANT,
        reason="r",
        transaction_id="t1",
        token="0" * 64,
    )
    assert WebhookDelivery.objects.exists()


def test_every_action_of_the_console_declares_the_permission_it_needs(db):
    walked = registered_actions()

    assert {name for _, name, _ in walked} >= {"delete_selected", "revoke_selected", "resend"}
    undeclared = [
        f"{model_admin}.{name}"
        for model_admin, name, function in walked
        if not getattr(function, "allowed_permissions", ())
    ]
    assert undeclared == []


def test_support_is_offered_no_action_and_posting_each_one_changes_nothing(
    support_client, one_of_each
):
    support = staff("sue", "support")
    request = RequestFactory().get("/")
    request.user = support
    before = everything()

    walked = 0
    for model_admin, name, _ in registered_actions():
        model = model_admin.model
        selected = list(model._base_manager.values_list("pk", flat=True))
        assert selected, f"no {model._meta.label} to act on"
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = support_client.post(
            changelist,
            {"action": name, "_selected_action": selected, "index": 0, "post": "yes"},
            follow=True,
        )
        assert response.status_code in (200, 403), (name, response.status_code)
        assert everything() == before, f"{model._meta.label}: {name} changed data"
        assert model_admin.get_actions(request) == {}, f"{model._meta.label}: {name} offered"
        walked += 1

    assert walked >= 3


def test_revoking_keys_in_the_console_writes_each_to_the_history_with_the_actor(client, project):
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-long-1"))
    keys = [ApiKeyFactory(project=project), ApiKeyFactory(project=project)]

    response = client.post(
        reverse("admin:customers_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [k.pk for k in keys], "index": 0},
        follow=True,
    )

    assert "Revoked 2 key(s)." in response.content.decode()
    assert all(key.revoked for key in ApiKey.objects.all())
    history = LogEntry.objects.order_by("object_id")
    assert sorted(e.object_id for e in history) == sorted(str(k.pk) for k in keys)
    assert {(e.user.username, e.action_flag) for e in history} == {("root", CHANGE)}
    assert {e.get_change_message() for e in history} == {"Revoked the API key."}
