"""The primary fails, or is switched over, under a charge load: two gunicorn instances on a
multi-host DATABASE_URL (`target_session_attrs=read-write`), eight clients deducting and
retrying each charge by its `transaction_id` after a dropped connection or a retryable answer.

Whatever the clients saw, every charge answered 200 is in the new primary's ledger exactly
once and the ledger holds no other; every other answer was a retryable 503 envelope; writes
came back within 20 s of a kill -9 of the whole primary node, and within 5 s of a planned
switchover; the killed node rejoined the formation as a standby.
"""

import pytest

from tests.ha.support import (
    assert_acknowledged_charges_are_the_ledgers,
    assert_only_retryable_503_envelopes,
    charges_through_a_fault,
    longest_without_a_200,
    services,
    statuses,
    writes_back_after,
)

pytestmark = [pytest.mark.ha, pytest.mark.postgres_only, pytest.mark.http]

CUSTOMER = "through-failover"
WRITES_BACK_WITHIN_SECONDS = 20.0
SWITCHOVER_GAP_SECONDS = 5.0
REJOIN_WITHIN_SECONDS = 120.0


def test_kill_9_of_the_primary_node_loses_and_repeats_no_acknowledged_charge(
    formation, project_key
):
    project, key = project_key
    url = formation.database_url()
    victim = formation.primary()
    loads, killed = charges_through_a_fault(
        services(url), key, CUSTOMER, seconds=30, fault_after=4,
        fault=lambda: formation.kill(victim.name),
    )  # fmt: skip

    back = writes_back_after(loads, killed)
    print(f"writes back {back:.1f} s after the kill; {statuses(loads)}")
    assert back < WRITES_BACK_WITHIN_SECONDS
    assert_only_retryable_503_envelopes(loads)
    acknowledged = assert_acknowledged_charges_are_the_ledgers(loads, url, project, CUSTOMER)
    assert acknowledged > 200
    assert formation.primary().name != victim.name

    formation.restart(victim.name)
    formation.wait_for_states({victim.name: "secondary"}, timeout=REJOIN_WITHIN_SECONDS)


def test_a_planned_switchover_leaves_at_most_5_seconds_without_a_charge(formation, project_key):
    project, key = project_key
    url = formation.database_url()
    before = formation.primary()
    loads, asked = charges_through_a_fault(
        services(url), key, CUSTOMER, seconds=20, fault_after=3, fault=formation.switchover
    )

    gap = longest_without_a_200(loads, asked, loads[0].stop_sending)
    print(f"longest stretch without a 200 across the switchover: {gap:.2f} s; {statuses(loads)}")
    assert gap <= SWITCHOVER_GAP_SECONDS
    assert_only_retryable_503_envelopes(loads)
    assert_acknowledged_charges_are_the_ledgers(loads, url, project, CUSTOMER)
    assert formation.primary().name != before.name
    formation.wait_for_states({before.name: "secondary"}, timeout=REJOIN_WITHIN_SECONDS)
