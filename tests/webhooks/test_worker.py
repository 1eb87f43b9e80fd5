"""`run_scheduler` delivers from its own process; killed mid-delivery, it loses nothing."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import services
from ledger.webhooks.models import WebhookDelivery
from tests.server import ROOT, shared_database_url
from tests.webhooks.support import deliver_all, endpoint, receiver

pytestmark = pytest.mark.django_db(transaction=True)


def scheduler(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": shared_database_url(),
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_scheduler_once_delivers_what_is_due(project):
    with receiver() as hooks:
        secret = endpoint(project, hooks.url).secret
        services.deposit(project=project, customer_id="c1", amount=Decimal("2.5"), actor="t")
        worker = scheduler("--once")
        out, err = worker.communicate(timeout=60)

    assert worker.returncode == 0, err
    assert out.splitlines() == [
        "expired 0 account(s), settled 0 freeze(s)",
        "delivered 1 webhook(s)",
    ]
    [received] = hooks.received
    assert received.verified(secret)["data"]["amount"] == Decimal("2.5")
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_worker_killed_mid_delivery_loses_nothing(project):
    with receiver(blocking=True) as hooks:
        secret = endpoint(project, hooks.url).secret
        services.deposit(project=project, customer_id="c1", amount=Decimal(7), actor="t")
        worker = scheduler("--interval", "0.2", WEBHOOK_TIMEOUT_SECONDS="30")
        try:
            assert hooks.arrived.wait(60), "the worker never sent the delivery"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        leased = WebhookDelivery.objects.get()
        hooks.released.set()  # the receiver answers from now on

        # Another scheduler leaves it while the dead one's lease lasts: no double send ...
        assert deliver_all(timezone.now()) == 0
        # ... and sends it again once the lease has run out.
        assert deliver_all(leased.lease_expires_at + dt.timedelta(seconds=1)) == 1
        deadline = time.monotonic() + 10  # the held request is recorded once released
        while len(hooks.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert (leased.status, leased.attempts) == ("pending", 0)
    assert leased.lease_expires_at is not None
    event_ids = {r.event_id for r in hooks.received}
    assert len(hooks.received) == 2 and len(event_ids) == 1  # at least once, same webhook-id
    assert hooks.received[-1].verified(secret)["data"]["amount"] == 7
    delivered = WebhookDelivery.objects.get()
    assert (delivered.status, delivered.attempts, delivered.response_code) == ("delivered", 1, 200)
