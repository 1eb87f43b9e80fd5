"""pgbouncer in front of the formation follows its primary: scripts/follow_primary.py watches
the monitor and, when the writable node changes, rewrites pgbouncer's `[databases]` and has it
RELOAD. Under the charge load of test_failover, through pgbouncer in transaction pooling mode,
kill -9 of the whole primary node: writes come back within 20 s through the same pgbouncer,
every charge answered 200 is in the ledger exactly once, every other answer was a retryable
503."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.ha.formation import SUPERUSER, wait_for
from tests.ha.support import (
    assert_acknowledged_charges_are_the_ledgers,
    assert_only_retryable_503_envelopes,
    charges_through_a_fault,
    services,
    statuses,
    writes_back_after,
)
from tests.server import ROOT, free_port

pytestmark = [pytest.mark.ha, pytest.mark.postgres_only, pytest.mark.http]

CUSTOMER = "through-pgbouncer"
WRITES_BACK_WITHIN_SECONDS = 20.0


class Pgbouncer:
    """Debian's pgbouncer on a loopback port, as the postgres user, in transaction pooling
    mode, its `[databases]` in a file of their own (`%include`)."""

    def __init__(self, first_target: tuple[str, int]):
        self.folder = Path(tempfile.mkdtemp(prefix="credits-ha-pgbouncer."))
        self.port = free_port()
        self.databases = self.folder / "databases.ini"
        self.databases.write_text(
            f"[databases]\ncredits = host={first_target[0]} port={first_target[1]}\n"
        )
        (self.folder / "users.txt").write_text(f'"{SUPERUSER}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.folder}/users.txt\n"
            f"admin_users = {SUPERUSER}\npool_mode = transaction\n"
            "max_client_conn = 500\ndefault_pool_size = 20\n"
            # A failed server login is retried after a second, not pgbouncer's default 15.
            "server_login_retry = 1\n"
            f"logfile = {self.folder}/pgbouncer.log\npidfile = {self.folder}/pgbouncer.pid\n"
            f"%include {self.databases}\n"
        )
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            for path in [self.folder, *self.folder.iterdir()]:
                shutil.chown(path, "postgres")
        executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        subprocess.run(
            [*as_postgres, executable, "-d", "-q", str(self.folder / "pgbouncer.ini")],
            check=True,
            timeout=30,
        )

    @property
    def url(self) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/credits"

    def target_port(self) -> int:
        with psycopg.connect(self.url, autocommit=True, prepare_threshold=None) as connection:
            return connection.execute("SELECT inet_server_port()").fetchone()[0]

    def stop(self) -> None:
        pid = (self.folder / "pgbouncer.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def pgbouncer(formation) -> Iterator[Pgbouncer]:
    """pgbouncer on the formation's primary, and the follower that keeps it there."""
    primary = formation.primary()
    bouncer = Pgbouncer(("127.0.0.1", primary.port))
    follower = subprocess.Popen(
        [
            sys.executable, ROOT / "scripts" / "follow_primary.py",
            "--monitor", formation.monitor_url,
            "--pgbouncer", f"postgres://{SUPERUSER}@127.0.0.1:{bouncer.port}/pgbouncer",
            "--databases-file", bouncer.databases, "--database", "credits",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: bouncer.target_port() == primary.port, 30)
        yield bouncer
    finally:
        follower.terminate()
        print(follower.communicate(timeout=30)[0])
        bouncer.stop()


def test_pgbouncer_reaches_the_new_primary_after_a_kill_9_of_the_old_one(
    formation, pgbouncer, project_key
):
    project, key = project_key
    victim = formation.primary()
    loads, killed = charges_through_a_fault(
        services(pgbouncer.url, DATABASE_POOLER="transaction"), key, CUSTOMER,
        seconds=30, fault_after=4, fault=lambda: formation.kill(victim.name),
    )  # fmt: skip

    back = writes_back_after(loads, killed)
    print(f"writes back through pgbouncer {back:.1f} s after the kill; {statuses(loads)}")
    assert back < WRITES_BACK_WITHIN_SECONDS
    assert_only_retryable_503_envelopes(loads)
    url = formation.database_url()
    assert assert_acknowledged_charges_are_the_ledgers(loads, url, project, CUSTOMER) > 200
    assert pgbouncer.target_port() == formation.primary().port != victim.port

    formation.restart(victim.name)
    formation.wait_for_states({victim.name: "secondary"}, timeout=120)
