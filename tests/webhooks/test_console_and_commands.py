"""`add_webhook`, and the console's deliveries list with its re-send action."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks import Webhook

from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.support import T0, deposit
from tests.webhooks.support import deliver_all, endpoint, receiver

pytestmark = pytest.mark.django_db


def add_webhook(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("add_webhook", *args, stdout=out)
    return out.getvalue().splitlines()


def test_add_webhook_prints_the_signing_secret_alone_on_its_last_line(project):
    lines = add_webhook(
        "--project",
        project.name,
        "--url",
        "https://example.com/hooks",
        "--events",
        "credits.low_balance, credits.expired",
    )

    added = WebhookEndpoint.objects.get()
    assert lines[-1] == added.secret
    assert added.secret.startswith("whsec_")
    Webhook(added.secret)  # a secret the library takes
    assert (added.project, added.url, added.enabled) == (project, "https://example.com/hooks", True)
    assert added.event_types == ["credits.low_balance", "credits.expired"]


def test_add_webhook_without_events_takes_all_and_each_endpoint_has_its_own_secret(project):
    first = add_webhook("--project", project.name, "--url", "http://127.0.0.1:8080/a")[-1]
    second = add_webhook("--project", project.name, "--url", "http://127.0.0.1:8080/b")[-1]

    assert first != second
    assert list(WebhookEndpoint.objects.values_list("event_types", flat=True)) == [[], []]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "nope", "--url", "https://example.com"], "no project named 'nope'"),
        (["--url", "ftp://example.com"], r"not an http\(s\) URL"),
        (["--url", "https://example.com", "--events", "credits.spent"], "unknown event type"),
    ],
)
def test_add_webhook_refuses_bad_input_and_adds_nothing(project, args, message):
    if "--project" not in args:
        args = ["--project", project.name, *args]
    with pytest.raises(CommandError, match=message):
        add_webhook(*args)
    assert not WebhookEndpoint.objects.exists()


def test_the_console_lists_deliveries_and_resends_a_failed_one(project, client):
    client.force_login(get_user_model().objects.create_superuser("operator", "", "pw-12345678"))
    with receiver(failures=1) as hooks:
        endpoint(project, hooks.url)
        deposit(project, 3, now=T0)
        deliver_all(T0)
        WebhookDelivery.objects.update(status="failed")  # as after 24 hours of failures

        listing = client.get("/admin/ledger/webhookdelivery/")
        assert listing.status_code == 200
        for shown in ("credits.deposited", "failed", "503", "HTTP 503 Service Unavailable"):
            assert shown in listing.content.decode()
        delivery = WebhookDelivery.objects.get()
        response = client.post(
            "/admin/ledger/webhookdelivery/",
            {"action": "resend", "_selected_action": [delivery.pk]},
        )
        assert response.status_code == 302
        resent = WebhookDelivery.objects.get()
        assert (resent.status, resent.attempts) == ("pending", 1)
        assert resent.next_attempt_at <= timezone.now() < resent.give_up_at
        assert deliver_all(timezone.now()) == 1

    assert [r.status for r in hooks.received] == [503, 200]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_the_console_lists_endpoints_without_letting_the_secret_be_edited(project, client):
    client.force_login(get_user_model().objects.create_superuser("operator", "", "pw-12345678"))
    hook = endpoint(project, "https://example.com/hooks")

    page = client.get(f"/admin/ledger/webhookendpoint/{hook.pk}/change/")

    assert page.status_code == 200
    assert hook.secret in page.content.decode()
    assert 'name="secret"' not in page.content.decode()


def test_the_console_refuses_unknown_event_types(project, client):
    client.force_login(get_user_model().objects.create_superuser("operator", "", "pw-12345678"))
    form = {"project": project.pk, "url": "https://example.com/h", "enabled": "on"}

    refused = client.post(
        "/admin/ledger/webhookendpoint/add/", {**form, "event_types": '["credits.spent"]'}
    )
    added = client.post(
        "/admin/ledger/webhookendpoint/add/", {**form, "event_types": '["credits.expired"]'}
    )

    assert refused.status_code == 200 and "a list of event types" in refused.content.decode()
    assert added.status_code == 302
    assert list(WebhookEndpoint.objects.values_list("event_types", flat=True)) == [
        ["credits.expired"]
    ]


def test_support_reads_endpoints_and_deliveries_but_never_a_secret_and_changes_nothing(
    project, client
):
    support = get_user_model().objects.create_user("sam", password="pw-12345678", is_staff=True)
    support.groups.add(Group.objects.get(name="support"))
    client.force_login(support)
    with receiver(failures=1) as hooks:
        hook = endpoint(project, hooks.url)
        deposit(project, 3, now=T0)
        deliver_all(T0)
    delivery = WebhookDelivery.objects.get()
    pages = {
        "endpoints": client.get("/admin/ledger/webhookendpoint/"),
        "endpoint": client.get(f"/admin/ledger/webhookendpoint/{hook.pk}/change/"),
        "deliveries": client.get("/admin/ledger/webhookdelivery/"),
        "delivery": client.get(f"/admin/ledger/webhookdelivery/{delivery.pk}/change/"),
        "index": client.get("/admin/"),
    }

    for name, page in pages.items():
        assert page.status_code == 200, name
        assert hook.secret not in page.content.decode(), name
        assert hook.secret[len("whsec_") :][:12] not in page.content.decode(), name
    assert hook.url in pages["endpoints"].content.decode()
    assert "hidden" in pages["endpoint"].content.decode()
    assert "HTTP 503" in pages["deliveries"].content.decode()
    assert 'name="_save"' not in pages["endpoint"].content.decode()
    assert "/admin/ledger/webhookendpoint/" in pages["index"].content.decode()
    assert client.get("/admin/ledger/webhookendpoint/add/").status_code == 403
    client.post(
        "/admin/ledger/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]}
    )
    assert WebhookDelivery.objects.get().next_attempt_at == delivery.next_attempt_at
