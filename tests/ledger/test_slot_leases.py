"""Leases on slot holdings: a claim with `ttl_seconds` expires, a repeat claim renews it, and
the scheduler releases what ran out, once, as the scheduler."""

import datetime as dt
import os
import re
import subprocess
import sys

import pytest
from django.utils import timezone

from ledger import services
from ledger.models import SlotEvent, SlotHolding, SlotPool
from ledger.selectors.consistency import check_ledger
from tests.ledger.support import ACTOR, T0
from tests.server import ROOT, shared_database_url

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)


def claim(project, resource_id: str, *, at: dt.datetime, **fields):
    return services.claim(
        project=project,
        customer_id="c1",
        wallet="gpu",
        resource_id=resource_id,
        actor=ACTOR,
        now=at,
        **fields,
    )


@pytest.fixture
def pool(project) -> SlotPool:
    services.grant_capacity(
        project=project, customer_id="c1", wallet="gpu", amount=3, actor=ACTOR, now=T0
    )
    return SlotPool.objects.get()


def test_a_lease_runs_out_and_the_scheduler_releases_it_once_as_the_scheduler(project, pool):
    leased = claim(project, "job", at=T0, ttl_seconds=60)
    kept = claim(project, "forever", at=T0)

    assert leased.expires_at == T0 + MINUTE
    assert kept.expires_at is None
    assert services.release_due(now=T0 + MINUTE - dt.timedelta(seconds=1)) == 0
    assert services.release_due(now=T0 + MINUTE) == 1
    assert services.release_due(now=T0 + 10 * MINUTE) == 0

    pool.refresh_from_db()
    assert pool.in_use == 1
    assert list(SlotHolding.objects.values_list("resource_id", flat=True)) == ["forever"]
    (released,) = SlotEvent.objects.filter(type="RELEASE")
    assert (released.actor, released.resource_id, released.amount) == ("scheduler", "job", 1)
    assert released.holding_id == int(leased.holding_id)
    assert released.created_at == T0 + MINUTE
    assert check_ledger().problems == []


def test_a_repeat_claim_renews_the_lease(project, pool):
    first = claim(project, "job", at=T0, ttl_seconds=60)
    renewed = claim(project, "job", at=T0 + 50 * dt.timedelta(seconds=1))
    longer = claim(project, "job", at=T0 + MINUTE, ttl_seconds=600)

    assert renewed.holding_id == first.holding_id
    assert renewed.expires_at == T0 + dt.timedelta(seconds=110)
    assert longer.expires_at == T0 + 11 * MINUTE
    assert services.release_due(now=T0 + 2 * MINUTE) == 0
    assert services.release_due(now=T0 + 11 * MINUTE) == 1
    assert SlotPool.objects.get().in_use == 0


def test_a_lease_the_client_released_first_is_left_alone(project, pool):
    claim(project, "job", at=T0, ttl_seconds=60)
    services.release(
        project=project, customer_id="c1", wallet="gpu", resource_id="job", actor=ACTOR
    )

    assert services.release_due(now=T0 + MINUTE) == 0
    assert SlotEvent.objects.filter(type="RELEASE").count() == 1


def test_after_the_scheduler_released_a_lease_a_client_release_answers_as_a_replay(project, pool):
    leased = claim(project, "job", at=T0, ttl_seconds=60)
    services.release_due(now=T0 + MINUTE)

    again = services.release(
        project=project, customer_id="c1", wallet="gpu", resource_id="job", actor=ACTOR
    )

    assert (again.holding_id, again.is_idempotent_replay, again.in_use) == (
        leased.holding_id,
        True,
        0,
    )


@pytest.mark.django_db(transaction=True)
def test_two_scheduler_processes_release_each_expired_lease_once(project):
    now = timezone.now()
    for customer_id in ("a", "b", "c", "d"):
        services.grant_capacity(
            project=project, customer_id=customer_id, wallet="gpu", amount=5, actor=ACTOR
        )
        for job in range(5):
            services.claim(
                project=project,
                customer_id=customer_id,
                wallet="gpu",
                resource_id=f"job-{job}",
                actor=ACTOR,
                ttl_seconds=1,
                now=now - MINUTE,
            )
    command = [sys.executable, "manage.py", "run_scheduler", "--once"]
    env = {**os.environ, "DATABASE_URL": shared_database_url()}

    schedulers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [scheduler.communicate(timeout=120)[0] for scheduler in schedulers]

    assert [scheduler.returncode for scheduler in schedulers] == [0, 0]
    reported = sum(int(n) for out in outputs for n in re.findall(r"released (\d+) lease", out))
    assert reported == 20
    releases = SlotEvent.objects.filter(type="RELEASE")
    assert releases.count() == 20
    assert set(releases.values_list("actor", flat=True)) == {"scheduler"}
    assert not SlotHolding.objects.exists()
    assert set(SlotPool.objects.values_list("in_use", flat=True)) == {0}
