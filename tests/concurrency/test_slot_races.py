"""Concurrent slot and entitlement writes: real threads released together by a barrier,
outside a wrapping transaction, calling the services. The customer's lock decides each race
on PostgreSQL; SQLite serializes every writer; the same outcome must hold on both."""

import datetime as dt
from collections import Counter

import pytest

from credits_project.errors import SlotCapacityBelowInUse, SlotInsufficientCapacity
from ledger import services
from ledger.models import Entitlement, EntitlementEvent, SlotEvent, SlotHolding, SlotPool
from ledger.selectors.consistency import check_ledger
from tests.concurrency.test_deposit_races import THREADS, run_together
from tests.ledger.support import T0

pytestmark = pytest.mark.django_db(transaction=True)


def grant(project, amount: int, customer_id: str = "c1") -> None:
    services.grant_capacity(
        project=project, customer_id=customer_id, wallet="gpu", amount=amount, actor="test"
    )


def claim(project, resource_id: str, **fields):
    return services.claim(
        project=project,
        customer_id="c1",
        wallet="gpu",
        resource_id=resource_id,
        actor="test",
        **fields,
    )


def test_claims_racing_for_the_last_units_never_take_more_than_the_capacity(project):
    grant(project, 3)

    results = run_together(lambda i: claim(project, f"job-{i}"))

    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 3
    assert all(isinstance(r, SlotInsufficientCapacity) for r in lost), lost
    pool = SlotPool.objects.get()
    assert (pool.capacity, pool.in_use) == (3, 3)
    assert SlotHolding.objects.count() == 3
    assert SlotEvent.objects.filter(type="CLAIM").count() == 3


def test_concurrent_claims_of_one_resource_make_one_holding(project):
    grant(project, 10)

    results = run_together(lambda _: claim(project, "same-job", amount=2))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.holding_id for r in results}) == 1
    assert Counter(r.is_idempotent_replay for r in results) == {True: THREADS - 1, False: 1}
    assert SlotPool.objects.get().in_use == 2
    assert SlotHolding.objects.count() == 1
    assert SlotEvent.objects.filter(type="CLAIM").count() == 1


def test_a_revoke_racing_claims_never_leaves_capacity_below_what_is_in_use(project):
    grant(project, THREADS)

    def work(i: int):
        if i % 2:
            return claim(project, f"job-{i}")
        return services.revoke_capacity(
            project=project, customer_id="c1", wallet="gpu", amount=2, actor="test"
        )

    results = run_together(work)

    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, SlotInsufficientCapacity | SlotCapacityBelowInUse) for e in errors)
    pool = SlotPool.objects.get()
    claimed = SlotHolding.objects.count()
    revoked = SlotEvent.objects.filter(type="REVOKE_CAPACITY").count()
    assert 0 <= pool.in_use <= pool.capacity
    assert pool.in_use == claimed
    assert pool.capacity == THREADS - 2 * revoked
    assert check_ledger().problems == []


def test_concurrent_releases_of_one_holding_free_it_once(project):
    grant(project, 2)
    claim(project, "job")
    claim(project, "other")

    results = run_together(
        lambda _: services.release(
            project=project, customer_id="c1", wallet="gpu", resource_id="job", actor="test"
        )
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Counter(r.is_idempotent_replay for r in results) == {True: THREADS - 1, False: 1}
    assert SlotPool.objects.get().in_use == 1
    assert SlotEvent.objects.filter(type="RELEASE").count() == 1


def test_concurrent_sets_of_one_feature_leave_one_value_and_an_event_per_change(project):
    services.set_entitlement(
        project=project, customer_id="c1", feature_key="tier", value="start", actor="test"
    )

    results = run_together(
        lambda i: services.set_entitlement(
            project=project, customer_id="c1", feature_key="tier", value=f"v{i}", actor="test"
        )
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    (current,) = Entitlement.objects.all()
    events = list(EntitlementEvent.objects.order_by("id"))
    assert len(events) == THREADS + 1
    # Each set saw the value the one before it left: the events chain from the first value
    # to the current one, and each answer's old value is its event's.
    chain = [(e.old_value, e.new_value) for e in events]
    assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))
    assert chain[-1][1] == current.value
    assert sorted(r.old_value for r in results) == sorted(old for old, _ in chain[1:])
    assert sum(r.is_created for r in results) == 0


def test_concurrent_first_sets_for_a_new_customer_make_one_customer_and_one_entitlement(project):
    results = run_together(
        lambda i: services.set_entitlement(
            project=project, customer_id="fresh", feature_key="tier", value=f"v{i}", actor="test"
        )
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Entitlement.objects.count() == 1
    assert sum(r.is_created for r in results) == 1
    assert EntitlementEvent.objects.count() == THREADS


def test_two_schedulers_release_each_expired_lease_exactly_once(project):
    customers = [f"c{i}" for i in range(20)]
    for customer_id in customers:
        grant(project, 5, customer_id=customer_id)
        for job in range(3):
            services.claim(
                project=project,
                customer_id=customer_id,
                wallet="gpu",
                resource_id=f"job-{job}",
                actor="test",
                ttl_seconds=1,
                now=T0,
            )

    def scheduler(_: int) -> int:
        released = 0
        while batch := services.release_due(now=T0 + dt.timedelta(seconds=2), batch_size=7):
            released += batch
        return released

    results = run_together(scheduler, count=2)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 60
    releases = SlotEvent.objects.filter(type="RELEASE")
    assert releases.count() == 60
    assert set(releases.values_list("actor", flat=True)) == {"scheduler"}
    assert len(set(releases.values_list("holding_id", flat=True))) == 60
    assert not SlotHolding.objects.exists()
    assert set(SlotPool.objects.values_list("in_use", flat=True)) == {0}
