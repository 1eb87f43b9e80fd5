"""A charge is answered only once a standby has its commit: while no standby confirms (both
standbys' WAL receivers stopped with SIGSTOP, the nodes otherwise healthy, so the monitor
keeps synchronous replication on), the charge waits, and nothing in the service (no
statement timeout, no pool or worker timeout) cancels that wait. PostgreSQL would answer a
cancelled wait as a commit, with only a warning, and the charge could then be lost with the
primary."""

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.ha.formation import descendants
from tests.ha.support import deposit, ledger_charges, services

pytestmark = [pytest.mark.ha, pytest.mark.postgres_only, pytest.mark.http]

CUSTOMER = "waits-for-a-standby"
HELD_SECONDS = 6.0


def wal_receivers(formation) -> list[int]:
    """The WAL receiver process of each standby."""
    found = []
    for node in formation.standbys():
        for pid in descendants(node.process.pid):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres: walreceiver"):
                    found.append(pid)
            except OSError:
                continue
    return found


def test_a_charge_waits_for_a_standby_to_confirm_its_commit_and_is_never_cut_short(
    formation, project_key
):
    project, key = project_key
    url = formation.database_url()
    (instance,) = services(url, count=1)
    answers: list[httpx.Response] = []
    try:
        deposit(instance.base_url, key, CUSTOMER, 100)
        receivers = wal_receivers(formation)
        assert len(receivers) == 2, receivers
        for pid in receivers:
            os.kill(pid, signal.SIGSTOP)
        try:
            charge = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{instance.base_url}/v1/billing/deduct",
                        headers={"Authorization": f"Bearer {key}"},
                        json={"customer_id": CUSTOMER, "amount": 1, "transaction_id": "held"},
                        timeout=60,
                    )
                )
            )
            charge.start()
            time.sleep(HELD_SECONDS)
            assert answers == [], "answered before any standby confirmed the commit"
            assert formation.states()[formation.primary().name] == ("primary", "primary")
        finally:
            for pid in receivers:
                os.kill(pid, signal.SIGCONT)
        charge.join(30)
    finally:
        instance.stop()

    assert len(answers) == 1 and answers[0].status_code == 200, answers
    assert ledger_charges(url, project, CUSTOMER)["transactions"] == ["held"]
