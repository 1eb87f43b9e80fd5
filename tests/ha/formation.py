"""A pg_auto_failover formation on loopback ports, from Debian's packages, for the HA tests:
a monitor and three PostgreSQL nodes with quorum synchronous replication (`ANY 1` of the two
standbys), run as the unprivileged `postgres` user like the test cluster of
scripts/with-postgres.sh, in a private temporary folder, and stopped (only its own processes)
afterwards.

The monitor and the nodes are tuned to notice a dead primary within seconds rather than the
defaults' tens of seconds: the monitor checks every node every second, retries a failed check
after half a second, counts a node that stopped reporting for 3 s as unhealthy, and waits 8 s
for a primary it cannot reach to demote itself; a node that loses the monitor and its standbys
for 4 s demotes itself (`network_partition_timeout`). The nodes skip `fsync` (a killed process
loses nothing the kernel holds; the tests kill processes, not machines) and never pace their
checkpoints, so a standby's base backup does not wait minutes for one.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings

from tests.server import ROOT, free_port

DATABASE = "credits"
SUPERUSER = "postgres"
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 3000,
    "pgautofailover.primary_demote_timeout": 8000,
}
NODE_SETTINGS = {"fsync": "off", "checkpoint_completion_target": 0, "timezone": "UTC"}
NETWORK_PARTITION_TIMEOUT_SECONDS = 4
START_TIMEOUT_SECONDS = 180


def find_bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL is not installed (scripts/with-postgres.sh installs it)")


def ensure_packages(bindir: Path) -> None:
    """Installs pg_auto_failover's command and the monitor's extension for this PostgreSQL
    with apt-get where missing; fails (never skips) when they cannot be installed."""
    major = bindir.parent.name
    extension = Path(f"/usr/share/postgresql/{major}/extension/pgautofailover.control")
    subprocess.run(
        [
            ROOT / "scripts" / "ensure-debian-packages.sh",
            "pg_autoctl:pg-auto-failover-cli",
            f"{extension}:postgresql-{major}-auto-failover",
        ],
        check=True,
        timeout=600,
    )


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    process: subprocess.Popen | None = None

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={SUPERUSER}"

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5)


class Formation:
    """Start with `start()`, always `stop()`. Nodes are `node1`..`node3`; `node1` starts as the
    primary."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        ensure_packages(self.bindir)
        self.root = Path(tempfile.mkdtemp(prefix="credits-ha."))
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o700)
        self.env = {
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "HOME": str(self.root),
            # initdb takes the encoding from the locale: UTF8, as the service needs.
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # pg_autoctl keeps its configuration and state under these, not in a home folder.
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            # Unix sockets in the private folder: pg_autoctl connects through PGHOST and
            # starts PostgreSQL with `-k` set to PG_REGRESS_SOCK_DIR.
            "PGHOST": str(self.root),
            "PG_REGRESS_SOCK_DIR": str(self.root),
        }
        self.monitor = Node("monitor", free_port(), self.root / "monitor")
        self.nodes = {
            name: Node(name, free_port(), self.root / name) for name in ("node1", "node2", "node3")
        }
        self.logs: list = []

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> "Formation":
        self.pg_autoctl(
            "create", "monitor", "--pgdata", self.monitor.pgdata, "--pgport", self.monitor.port,
            "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
        )  # fmt: skip
        self.monitor.process = self.spawn(self.monitor, "run", "--pgdata", self.monitor.pgdata)
        wait_for(lambda: self.try_sql(self.monitor, "SELECT 1", dbname="pg_auto_failover"), 30)
        with self.monitor.connect("pg_auto_failover") as monitor:
            for name, value in MONITOR_SETTINGS.items():
                monitor.execute(f"ALTER SYSTEM SET {name} = {value}")
            monitor.execute("SELECT pg_reload_conf()")

        first = self.nodes["node1"]
        first.process = self.create_node(first)
        self.wait_for_states({"node1": "single"})
        with first.connect() as primary:
            for name, value in NODE_SETTINGS.items():
                primary.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            primary.execute("SELECT pg_reload_conf()")
        # The standbys copy the primary's data folder, these settings included.
        for name in ("node2", "node3"):
            self.nodes[name].process = self.create_node(self.nodes[name])
        self.wait_for_states({"node1": "primary", "node2": "secondary", "node3": "secondary"})
        for node in self.nodes.values():
            self.pg_autoctl(
                "config", "set", "--pgdata", node.pgdata,
                "timeout.network_partition_timeout", NETWORK_PARTITION_TIMEOUT_SECONDS,
            )  # fmt: skip
            self.pg_autoctl("reload", "--pgdata", node.pgdata)
        return self

    def stop(self) -> None:
        """Stops every process this formation started, and removes its folder."""
        for node in [*self.nodes.values(), self.monitor]:
            if node.process is not None and node.process.poll() is None:
                self.pg_autoctl("stop", "--pgdata", node.pgdata, "--fast", check=False)
        for node in [*self.nodes.values(), self.monitor]:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_tree(node.process.pid)
                node.process.wait(timeout=10)
        # A postgres left behind by a killed pg_autoctl: its command line names its folder.
        for pid in processes_naming(self.root):
            kill_tree(pid)
        for log in self.logs:
            log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_node(self, node: Node) -> subprocess.Popen:
        return self.spawn(
            node, "create", "postgres", "--pgdata", node.pgdata, "--pgport", node.port,
            "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", node.name,
            "--dbname", DATABASE, "--auth", "trust", "--no-ssl", "--monitor", self.monitor_url,
            "--run",
        )  # fmt: skip

    # --- faults and operations -----------------------------------------------------------

    def kill(self, name: str) -> float:
        """SIGKILL to the whole node: its pg_autoctl processes and its postgres processes.
        (Killing postgres alone is no test: pg_autoctl starts it again.) Returns once they are
        all gone, reaped too, so that a restart finds no pid of theirs still alive; returns
        the instant (`time.monotonic()`) every signal had been sent."""
        node = self.nodes[name]
        # postgres may have been started apart from pg_autoctl's tree: its postmaster names
        # the node's folder on its command line.
        killed = kill_tree(node.process.pid, *processes_naming(node.pgdata))
        landed = time.monotonic()
        node.process.wait(timeout=10)
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in killed), 30)
        return landed

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        node.process = self.spawn(node, "run", "--pgdata", node.pgdata)

    def switchover(self) -> None:
        """A planned switchover: the monitor promotes a standby and demotes the primary."""
        self.pg_autoctl("perform", "switchover", "--pgdata", self.monitor.pgdata, "--wait", 60)

    # --- what the monitor says -----------------------------------------------------------

    def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported, assigned) state, as the monitor has them."""
        with self.monitor.connect("pg_auto_failover") as monitor:
            rows = monitor.execute(
                "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
            ).fetchall()
        return {name: (reported, assigned) for name, reported, assigned in rows}

    def wait_for_states(self, wanted: dict[str, str], timeout: float = START_TIMEOUT_SECONDS):
        def reached() -> bool:
            states = self.states()
            return all(states.get(name) == (state, state) for name, state in wanted.items())

        wait_for(reached, timeout, lambda: f"states {self.states()}, wanted {wanted}")

    def primary(self) -> Node:
        states = self.states()
        (name,) = [n for n, state in states.items() if state == ("primary", "primary")]
        return self.nodes[name]

    def standbys(self) -> list[Node]:
        states = self.states()
        return [self.nodes[n] for n, state in states.items() if state[0] == "secondary"]

    # --- addresses -------------------------------------------------------------------------

    @property
    def monitor_url(self) -> str:
        return (
            f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover"
            "?sslmode=disable"
        )

    def database_url(self, nodes: list[Node] | None = None, attrs: str = "read-write") -> str:
        """A multi-host URL of the given nodes (all by default), as the service takes it."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in nodes or self.nodes.values())
        return f"postgres://{SUPERUSER}@{hosts}/{DATABASE}?target_session_attrs={attrs}"

    # --- plumbing --------------------------------------------------------------------------

    def pg_autoctl(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*self.as_postgres, *self.env_command(), "pg_autoctl", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"pg_autoctl {args} failed:\n{result.stdout}{result.stderr}")
        return result

    def spawn(self, node: Node, *args) -> subprocess.Popen:
        # Beside the test servers' logs, so they outlive the formation's folder.
        log = open(settings.DATA_DIR / f"{self.root.name}-{node.name}.log", "a")  # noqa: SIM115
        self.logs.append(log)
        return subprocess.Popen(
            [*self.as_postgres, *self.env_command(), "pg_autoctl", *map(str, args)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )

    def env_command(self) -> list[str]:
        """`env` with this formation's variables alone: none of the caller's (PGPORT,
        PGDATABASE, ...) reaches pg_autoctl."""
        return ["env", "-i", *(f"{name}={value}" for name, value in self.env.items())]

    @staticmethod
    def try_sql(node: Node, sql: str, dbname: str = DATABASE) -> bool:
        try:
            with node.connect(dbname) as connection:
                connection.execute(sql)
        except psycopg.Error:
            return False
        return True


def wait_for(
    condition: Callable[[], bool], timeout: float, describe: Callable[[], str] = lambda: ""
) -> float:
    """Polls `condition` until it holds; returns the seconds it took, or fails after
    `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition():
                return time.monotonic() - started
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s: {describe()}")


def kill_tree(*roots: int) -> set[int]:
    """SIGKILL to each root and every process descended from them, until none is left;
    returns the processes killed."""
    killed: set[int] = set()
    for _ in range(20):
        victims = [pid for root in roots for pid in descendants(root)]
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(victims)
        time.sleep(0.05)
    return killed


def processes_naming(folder: Path) -> list[int]:
    """The processes whose command line names something in `folder`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def descendants(root: int) -> list[int]:
    """`root` (while alive) and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z":
            continue
        pid = int(stat.parent.name)
        alive.add(pid)
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in alive:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found
