"""Each event type is written with its change, reaches the endpoint once, verifies with the
`standardwebhooks` library and carries exact amounts; a rolled-back change writes none."""

from decimal import Decimal

import pytest
from django.db import transaction

from credits_project.errors import InsufficientBalance
from credits_project.json import loads
from ledger import services
from ledger.selectors.consistency import check_ledger
from ledger.services import expire_due, settle_due
from ledger.services.notices import notify_expiring
from ledger.webhooks.delivery import fan_out
from ledger.webhooks.models import WebhookDelivery, WebhookEvent
from tests.support import DAY, T0, deposit
from tests.webhooks.support import deliver_all, endpoint, receiver

pytestmark = pytest.mark.django_db

MINUTE = DAY / (24 * 60)


def deduct(project, transaction_id: str, amount: str, customer_id: str = "c1", **fields):
    fields.setdefault("now", T0)
    return services.deduct(
        project=project,
        customer_id=customer_id,
        transaction_id=transaction_id,
        amount=Decimal(amount),
        actor="test",
        **fields,
    )


def watched(project, threshold: str | None, wallet: str | None = None, notice_days=None):
    project.low_balance_threshold = None if threshold is None else Decimal(threshold)
    project.low_balance_wallet = wallet
    project.expiring_notice_days = notice_days
    project.save()
    return project


def outbox(event_type: str | None = None) -> list[dict]:
    events = WebhookEvent.objects.order_by("id")
    if event_type:
        events = events.filter(type=event_type)
    return [event.payload for event in events]


def test_every_event_type_arrives_once_signed_and_with_exact_amounts(project):
    watched(project, "50", notice_days=7)
    with receiver() as hooks:
        secret = endpoint(project, hooks.url).secret
        account = deposit(project, "100.5", expires_at=T0 + 3 * DAY, now=T0).account_id
        deduct(project, "d1", "60.25")  # 100.5 -> 40.25: below 50
        services.freeze(
            project=project,
            customer_id="c1",
            transaction_id="f1",
            amount=Decimal("10.125"),
            actor="test",
            consume_after_seconds=60,
            now=T0,
        )  # already below: no second low-balance notice
        assert settle_due(now=T0 + 2 * MINUTE) == 1
        assert notify_expiring(now=T0 + 3 * MINUTE) == 1
        assert notify_expiring(now=T0 + 4 * MINUTE) == 0  # once per account
        assert expire_due(now=T0 + 4 * DAY) == 1
        assert notify_expiring(now=T0 + 4 * DAY) == 0

        assert deliver_all(T0 + 4 * DAY) == 5
        assert deliver_all(T0 + 5 * DAY) == 0
        received = [r.verified(secret) for r in hooks.accepted()]

    assert [r["type"] for r in received] == [
        "credits.deposited",
        "credits.low_balance",
        "freeze.auto_settled",
        "credits.expiring",
        "credits.expired",
    ]
    assert [r.event_id for r in hooks.received] == [r["id"] for r in received]
    assert [r["id"] for r in received] == [e["id"] for e in outbox()]
    assert all(r["id"].startswith("evt_") for r in received)
    assert {(r["project"], r["customer_id"]) for r in received} == {(project.name, "c1")}
    deposited, low, settled, expiring, expired = received
    assert deposited["created_at"] == "2026-04-07T12:00:00.000Z"
    assert deposited["data"] == {
        "account_id": account,
        "wallet": "default",
        "source": "default",
        "amount": Decimal("100.5"),
        "starts_at": None,
        "expires_at": "2026-04-10T12:00:00.000Z",
        "business_type": "UNDEFINED",
        "idempotency_key": None,
    }
    assert low["data"] == {
        "wallet": None,
        "threshold": 50,
        "balance_before": Decimal("100.5"),
        "balance_after": Decimal("40.25"),
        "transaction_id": "d1",
    }
    assert settled["data"] == {
        "transaction_id": "f1",
        "settlement": "consumed",
        "frozen_amount": Decimal("10.125"),
        "consumed_amount": Decimal("10.125"),
        "returned_amount": 0,
        "overage_amount": 0,
    }
    assert expiring["data"] == {
        "account_id": account,
        "wallet": "default",
        "source": "default",
        "amount": Decimal("30.125"),
        "expires_at": "2026-04-10T12:00:00.000Z",
        "notice_days": 7,
    }
    assert expired["data"] == {
        "account_id": account,
        "wallet": "default",
        "source": "default",
        "amount": Decimal("30.125"),
        "expires_at": "2026-04-10T12:00:00.000Z",
    }
    assert b'"amount":30.125' in hooks.accepted()[-1].body  # as the API writes amounts
    assert set(WebhookDelivery.objects.values_list("status", "attempts", "response_code")) == {
        ("delivered", 1, 200)
    }


def test_low_balance_is_sent_once_per_crossing(project):
    watched(project, "50")
    endpoint(project, "http://127.0.0.1:9/unused")
    deposit(project, 100, now=T0)
    deduct(project, "d1", "30")  # 70
    deduct(project, "d2", "30")  # 40: crossed
    deduct(project, "d3", "10")  # 30: still below
    deposit(project, 100, now=T0)  # 130
    deduct(project, "d4", "80")  # 50: at the threshold is not below it
    deduct(project, "d5", "0.000001")  # crossed again

    assert [
        (e["data"]["transaction_id"], e["data"]["balance_before"], e["data"]["balance_after"])
        for e in outbox("credits.low_balance")
    ] == [
        ("d2", 70, 40),
        ("d5", 50, Decimal("49.999999")),
    ]


def test_low_balance_counts_a_freeze_and_a_consumes_overage(project):
    watched(project, "50")
    endpoint(project, "http://127.0.0.1:9/unused")
    deposit(project, 100, now=T0)
    freeze = {"project": project, "customer_id": "c1", "actor": "test", "now": T0}
    services.freeze(transaction_id="f1", amount=Decimal(10), **freeze)  # 90
    services.consume(
        project=project, transaction_id="f1", actual_amount=Decimal(20), actor="t", now=T0
    )  # overage 10: 80
    services.freeze(transaction_id="f2", amount=Decimal(20), **freeze)  # 60
    services.consume(
        project=project, transaction_id="f2", actual_amount=Decimal(35), actor="t", now=T0
    )  # overage 15: 45, crossed
    services.freeze(transaction_id="f3", amount=Decimal(40), **freeze)  # 5

    assert [
        (e["data"]["transaction_id"], e["data"]["balance_after"])
        for e in outbox("credits.low_balance")
    ] == [("f2", 45)]


def test_low_balance_of_one_wallet_watches_only_that_wallet(project):
    watched(project, "10", wallet="gpu")
    endpoint(project, "http://127.0.0.1:9/unused")
    deposit(project, 100, wallet="cpu", now=T0)
    deposit(project, 20, wallet="gpu", now=T0)
    deduct(project, "d1", "95", wallets=["cpu"])
    deduct(project, "d2", "15", wallets=["gpu"])

    assert [
        (e["data"]["wallet"], e["data"]["balance_before"], e["data"]["balance_after"])
        for e in outbox("credits.low_balance")
    ] == [("gpu", 20, 5)]


def test_a_project_without_an_enabled_endpoint_writes_no_events(project):
    watched(project, "50", notice_days=7)
    endpoint(project, "http://127.0.0.1:9/off", enabled=False)
    deposit(project, 100, expires_at=T0 + DAY, now=T0)
    deduct(project, "d1", "60")
    notify_expiring(now=T0)
    expire_due(now=T0 + 2 * DAY)

    assert outbox() == []


def test_an_endpoint_gets_only_the_event_types_it_asks_for(project):
    watched(project, "50")
    with receiver() as hooks:
        endpoint(project, hooks.url, event_types=["credits.low_balance"])
        deposit(project, 100, now=T0)
        deduct(project, "d1", "60")
        deliver_all(T0)

    assert [loads(r.body)["type"] for r in hooks.accepted()] == ["credits.low_balance"]
    assert len(outbox()) == 2  # both written: the endpoint filters at delivery


def test_a_rolled_back_charge_or_deposit_writes_and_sends_nothing(project):
    watched(project, "50")
    with receiver() as hooks:
        endpoint(project, hooks.url)
        deposit(project, 100, now=T0)
        WebhookEvent.objects.all().delete()

        with pytest.raises(InsufficientBalance):
            deduct(project, "d1", "100.000001")
        with pytest.raises(RuntimeError), transaction.atomic():
            deduct(project, "d2", "60")  # would cross the threshold
            deposit(project, 5, now=T0)
            raise RuntimeError("the caller's transaction fails after the charge")

        assert outbox() == []
        assert deliver_all(T0 + DAY) == 0
    assert hooks.received == []


def test_check_ledger_finds_a_delivery_for_another_customer_than_its_events(project):
    endpoint(project, "http://127.0.0.1:9/unused")
    deposit(project, 1, customer_id="c1", now=T0)
    deposit(project, 2, customer_id="c2", now=T0)
    fan_out(now=T0)
    assert check_ledger().ok
    first, second = WebhookDelivery.objects.order_by("event_id")

    WebhookDelivery.objects.filter(pk=first.pk).update(customer_id=second.customer_id)

    assert check_ledger().problems == [
        f"webhook delivery {first.pk} of {first.event.event_id}: not for its event's customer, "
        "or to another project's endpoint"
    ]


def test_credits_returned_to_an_expired_account_send_their_own_expiry(project):
    endpoint(project, "http://127.0.0.1:9/unused")
    account = deposit(project, 10, expires_at=T0 + DAY, now=T0).account_id
    services.freeze(
        project=project,
        customer_id="c1",
        transaction_id="f1",
        amount=Decimal(4),
        actor="test",
        now=T0,
    )
    expire_due(now=T0 + 2 * DAY)  # the 6 not frozen
    services.unfreeze(project=project, transaction_id="f1", actor="test", now=T0 + 3 * DAY)

    assert [(e["data"]["account_id"], e["data"]["amount"]) for e in outbox("credits.expired")] == [
        (account, 6),
        (account, 4),
    ]
