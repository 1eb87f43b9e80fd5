"""The charge path and balance reads under load, as ratios to a reference endpoint.

Two `gunicorn -w 2` instances with the project's `gunicorn.conf.py` run on the database of
DATABASE_URL (SQLite in a fresh DATA_DIR when unset): one serves the service, one the reference
endpoint of `bench/urls.py` (DRF, one primary-key read, no authentication). wrk (Debian's
package; a C load generator that barely competes for the cores) drives each scenario for
`--seconds`, and the CPU time the service's workers and the database's processes spent is read
from /proc around each run. Results go to `data/bench-<database>.json` for `bench/report.py`.

    scripts/with-postgres.sh .venv/bin/python bench/http_load.py
    DATABASE_URL= .venv/bin/python bench/http_load.py
"""

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
if not os.environ.get("DATABASE_URL"):
    # A fresh SQLite file each run, beside (never inside) the service's own data.
    os.environ["DATA_DIR"] = str(ROOT / "data" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from customers.models import ApiKey, Customer, Project  # noqa: E402
from ledger import services  # noqa: E402
from tests.server import Service  # noqa: E402

SPREAD = 2_000
SPENT_ACCOUNTS = int(os.environ.get("BENCH_SPENT", 10_000))
OPEN_ACCOUNTS = 10
LEDGER_FILL = 1_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCRIPT = ROOT / "bench" / "wrk" / "scenario.lua"
PAIRED = ("freeze_consume", "deduct_refund", "claim_release")  # rates count pairs


@dataclass
class Result:
    name: str
    connections: int
    rate: float  # requests (or freeze+consume pairs) per second
    p50_ms: float
    p99_ms: float
    failures: int
    app_cpu_ms: float | None  # per request (or pair), all of the service's workers
    db_cpu_ms: float | None  # per request (or pair), every database server process


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="length of each load run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--out", type=Path, default=None, help="where to write the results")
    args = parser.parse_args()
    args.seconds = max(1, min(args.seconds, 60))
    return args


def seed() -> tuple[str, int]:
    """A fresh project, its key, and the customers every scenario draws on. Returns the key
    and the first primary key of the spread customers (the reference endpoint reads those)."""
    call_command("migrate", verbosity=0, interactive=False)
    project = Project.objects.create(name=f"bench-{time.time_ns()}")
    _, key = ApiKey.objects.create_key(project=project, name="bench")

    def grant(customer_id: str, amount: int, times: int = 1) -> None:
        for _ in range(times):
            services.deposit(
                project=project, customer_id=customer_id, amount=Decimal(amount), actor="bench"
            )

    started = time.monotonic()
    for n in range(SPREAD):
        grant(f"spread-{n}", 10**9)
    grant("hot-0", 10**9)
    # Slots to claim: enough that no pair is refused however many are in flight.
    for customer_id in [*(f"spread-{n}" for n in range(SPREAD)), "hot-0"]:
        services.grant_capacity(
            project=project, customer_id=customer_id, wallet="jobs", amount=10**6, actor="bench"
        )
    grant("open-0", 10**9, OPEN_ACCOUNTS)
    grant("spent-0", 1, SPENT_ACCOUNTS)
    services.deduct(
        project=project,
        customer_id="spent-0",
        transaction_id="spend-all",
        amount=Decimal(SPENT_ACCOUNTS),
        actor="bench",
    )
    grant("spent-0", 10**9, OPEN_ACCOUNTS)
    # Customers with a credit line: with credits to spare (the line is read, not drawn on),
    # and with none (every deduct goes into debt).
    for n in range(SPREAD):
        grant(f"limited-{n}", 10**9)
        services.set_credit_limit(
            project=project, customer_id=f"limited-{n}", limit=Decimal(10**9), actor="bench"
        )
        grant(f"debtor-{n}", 1)
        services.set_credit_limit(
            project=project, customer_id=f"debtor-{n}", limit=Decimal(10**12), actor="bench"
        )
    print(f"seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
    first_pk = Customer.objects.get(project=project, external_id="spread-0").pk
    return key, first_pk


def fill_ledger(entries: int) -> None:
    """Add `entries` ledger entries to a customer nobody reads, so the ledger is large."""
    customer = Customer.objects.create(
        project=Project.objects.create(name=f"filler-{time.time_ns()}"), external_id="filler"
    )
    account_id = services.deposit(
        project=customer.project, customer_id="filler", amount=Decimal(1), actor="bench"
    ).account_id
    if connection.vendor == "postgresql":
        series = "SELECT g FROM generate_series(1, %s) AS g"
    else:
        series = (
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
            "SELECT g FROM s"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_ledgerentry (customer_id, account_id, operation_type, amount, "
            "transaction_id, business_type, description, actor, created_at) "
            "SELECT %s, %s, 'GRANT', 1000000, NULL, 'UNDEFINED', '', 'bench', %s "
            f"FROM ({series}) t",
            [customer.pk, account_id, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), entries],
        )
        # Vacuumed now, so that autovacuum does not do it during the next measurements.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU time (user + system) of each process still alive."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return times


def cpu_spent(before: dict[int, float], pids: list[int]) -> float:
    """CPU time spent since `before` by the processes alive now (a process that exited
    meanwhile, such as an autovacuum worker, takes its time with it)."""
    after = cpu_seconds(pids)
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def database_processes() -> list[int]:
    """The PostgreSQL server and every process it started; none for SQLite (in-process)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    stat = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    postmaster = int(stat[1])
    return [postmaster, *children(postmaster)]


class Load:
    """Runs wrk scenarios against a server and accounts the CPU they cost."""

    def __init__(self, server: Service, key: str, first_pk: int, seconds: int):
        self.server, self.key, self.first_pk, self.seconds = server, key, first_pk, seconds
        self.run_id = f"r{time.time_ns()}"

    def __call__(
        self,
        name: str,
        mode: str,
        prefix: str,
        customers: int,
        connections: int = 16,
        threads: int = 2,
        seconds: int | None = None,
    ) -> Result:
        self.run_id = f"r{time.time_ns()}"
        workers = children(self.server.process.pid)
        app_before, db_before = cpu_seconds(workers), cpu_seconds(database_processes())
        output = subprocess.run(
            [
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{seconds or self.seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(SCRIPT),
                self.server.base_url,
                "--",
                mode,
                self.run_id,
                self.key,
                prefix,
                str(customers),
                str(self.first_pk),
            ],
            capture_output=True,
            text=True,
            timeout=(seconds or self.seconds) + 60,
        )
        app = cpu_spent(app_before, workers)
        database = database_processes()
        db = cpu_spent(db_before, database)
        found = re.search(r"^RESULT (.*)$", output.stdout, re.MULTILINE)
        if output.returncode or found is None:
            raise RuntimeError(f"wrk failed:\n{output.stdout}{output.stderr}")
        raw = json.loads(found[1])
        done = raw["pairs"] if mode in PAIRED else raw["requests"]
        result = Result(
            name=name,
            connections=connections,
            rate=done / (raw["duration_us"] / 1e6),
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            failures=raw["failures"] + raw["socket_errors"],
            app_cpu_ms=app * 1000 / done if done else None,
            db_cpu_ms=db * 1000 / done if done and database else None,
        )
        print(
            f"{name:<48} {result.rate:8.0f}/s  p50 {result.p50_ms:7.2f} ms  "
            f"failures {result.failures}",
            file=sys.stderr,
        )
        return result


def main() -> None:
    args = parse_args()
    key, first_pk = seed()
    env = {"DJANGO_SETTINGS_MODULE": "bench.settings"}
    reference_server = Service(args.workers, env)
    service = Service(args.workers, env)
    reference = Load(reference_server, "-", first_pk, args.seconds)
    load = Load(service, key, first_pk, args.seconds)
    results: list[Result] = []
    try:
        reference("warm-up", "reference", "", SPREAD, seconds=3)
        load("warm-up", "deduct", "spread-", SPREAD, seconds=3)
        results += [
            reference("reference: DRF + one primary-key read", "reference", "", SPREAD),
            load("deduct, spread", "deduct", "spread-", SPREAD),
            load("deduct, one hot customer", "deduct", "hot-", 1),
            load("deduct, spread, 64 connections", "deduct", "spread-", SPREAD, 64),
            load("freeze + consume pair, spread", "freeze_consume", "spread-", SPREAD),
            load("deduct + refund pair, spread", "deduct_refund", "spread-", SPREAD),
            load("slot claim + release pair, spread", "claim_release", "spread-", SPREAD),
            load("slot claim + release pair, one hot customer", "claim_release", "hot-", 1),
            load("deduct, spread, with a credit limit", "deduct", "limited-", SPREAD),
            load("deduct into debt, spread", "deduct", "debtor-", SPREAD),
            load("deposit to an existing customer, spread", "deposit", "spread-", SPREAD),
            load("GET customer, spread", "get", "spread-", SPREAD),
        ]
        # Latency of one client at a time: what an account history costs, without queueing.
        quiet = {"connections": 1, "threads": 1, "seconds": max(3, args.seconds // 3)}
        results += [
            load(f"GET customer, {OPEN_ACCOUNTS} open accounts", "get", "open-", 1, **quiet),
            load(
                f"GET customer, {SPENT_ACCOUNTS:,} spent + {OPEN_ACCOUNTS} open",
                "get",
                "spent-",
                1,
                **quiet,
            ),
            load(f"deduct, {OPEN_ACCOUNTS} open accounts", "deduct", "open-", 1, **quiet),
            load(
                f"deduct, {SPENT_ACCOUNTS:,} spent + {OPEN_ACCOUNTS} open",
                "deduct",
                "spent-",
                1,
                **quiet,
            ),
        ]
        results += variants(args, env, key, first_pk)
        started = time.monotonic()
        fill_ledger(LEDGER_FILL)
        print(f"ledger filled in {time.monotonic() - started:.0f} s", file=sys.stderr)
        results += [
            load(f"deduct, spread, ledger +{LEDGER_FILL:,}", "deduct", "spread-", SPREAD),
            load(f"GET customer, spread, ledger +{LEDGER_FILL:,}", "get", "spread-", SPREAD),
        ]
    finally:
        reference_server.stop()
        service.stop()
    out = args.out or settings.BASE_DIR / "data" / f"bench-{connection.vendor}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "database": connection.vendor,
                "server_version": server_version(),
                "workers": args.workers,
                "seconds": args.seconds,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"wrote {out}", file=sys.stderr)


def variants(args: argparse.Namespace, env: dict[str, str], key: str, first_pk: int) -> list:
    """The same deduct load on a differently configured service, each against a reference
    served the same way: sync workers instead of gevent (what never being held by slow
    clients costs), and on SQLite commits not synced to disk (what durability costs)."""
    configurations = [("sync workers", {"GUNICORN_WORKER_CLASS": "sync"})]
    if connection.vendor == "sqlite":
        configurations.append(("synchronous=NORMAL", {"BENCH_SQLITE_SYNCHRONOUS": "NORMAL"}))
    results = []
    for label, extra in configurations:
        server = Service(args.workers, {**env, **extra})
        try:
            reference = Load(server, "-", first_pk, args.seconds)
            load = Load(server, key, first_pk, args.seconds)
            load("warm-up", "deduct", "spread-", SPREAD, seconds=3)
            results += [
                reference(f"{label}: reference", "reference", "", SPREAD),
                load(f"{label}: deduct, spread", "deduct", "spread-", SPREAD),
            ]
        finally:
            server.stop()
    return results


def server_version() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
        cursor.execute("SELECT sqlite_version()")
        return f"SQLite {cursor.fetchone()[0]}"


if __name__ == "__main__":
    main()
