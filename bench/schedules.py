"""The scheduler's rate when many customers on a monthly plan reach their period start
together, against `bulk_grant --all-customers` for the same customers, on PostgreSQL.

Makes N customers, each on a monthly schedule whose next period (their first) starts now,
with plain INSERTs; then runs `manage.py run_scheduler --once` as a child process, which
grants the N periods, and `manage.py bulk_grant --all-customers` to the same customers.
Prints grants/s of each and the child's peak resident memory, which should not grow with N.

Each size runs BENCH_SCHEDULE_ROUNDS rounds (3), each on customers of its own, each command
first in every other round and after VACUUM ANALYZE and a CHECKPOINT; it prints medians and
the ratio of rates to bulk_grant's.

Measured here (2-core AMD EPYC, 24 GiB, Debian 12, Python 3.11.7, PostgreSQL 15.18), the
scheduler as it is (batches of 1,000 schedules, each claimed with its customer in one
statement, two granting threads): 2,311 grants/s at 95 MiB for 20,000 customers and 2,728
grants/s at 95 MiB for 100,000, 1.09 times bulk_grant's rate at both sizes (2,111 and 2,507
grants/s, 87 MiB); another run at 100,000: 3,254 against 2,660 grants/s, 1.22 times. Memory
is flat. With one thread (SCHEDULER_GRANT_WORKERS=1, two rounds) 0.97 times: a grant costs
the scheduler's Python about a fifth more than a bulk grant's (it reads the schedules and
their terms, works the periods out and writes their progress), and the second thread builds
a batch while the database writes the other's. Single runs vary by a tenth on this shared
machine. Before the batches: 161 grants/s at 8,000 customers, each in a transaction of its
own; 847 grants/s with 100 customers to a transaction.

Run: `make bench`, or `scripts/with-postgres.sh python bench/schedules.py`. Sizes:
BENCH_SCHEDULE_CUSTOMERS, comma-separated (default 20000,100000); rounds:
BENCH_SCHEDULE_ROUNDS.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.bulk_grant import peak_rss_kib  # noqa: E402
from customers.models import Project  # noqa: E402
from ledger.models import LedgerEntry, Schedule  # noqa: E402
from ledger.periods import Calendar  # noqa: E402
from ledger.selectors.consistency import check_ledger  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SCHEDULE_CUSTOMERS", "20000,100000").split(",")]
ROUNDS = int(os.environ.get("BENCH_SCHEDULE_ROUNDS", "3"))


def fill(project: Project, customers: int) -> None:
    """N customers on a monthly plan whose period 1 starts now (they joined in period 1)."""
    now = timezone.now()
    anchor = now.replace(microsecond=0)
    anchor = (
        anchor.replace(month=anchor.month - 1)
        if anchor.month > 1
        else anchor.replace(year=anchor.year - 1, month=12)
    )
    start = Calendar(anchor, "month", 1, "UTC").start(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (project_id, external_id, metadata, created_at, "
            "has_credit_line) SELECT %s, 'bench-' || g, '{}', %s, false "
            "FROM generate_series(1, %s) g",
            [project.pk, anchor, customers],
        )
        cursor.execute(
            "INSERT INTO ledger_schedule (project_id, customer_id, schedule_id, wallet, source, "
            "period, every, anchor, timezone, prorate_first_period, description, metadata, "
            "fingerprint, first_period, periods_granted, periods_rolled, status, "
            "next_grant_at, created_at) "
            "SELECT %s, c.id, 'plan-' || c.external_id, 'default', 'schedule', 'month', 1, %s, "
            "'UTC', false, '', '{}', 'bench', 1, 0, 0, 'active', %s, %s "
            "FROM customers_customer c WHERE c.project_id = %s",
            [project.pk, anchor, start, anchor, project.pk],
        )
        cursor.execute(
            "INSERT INTO ledger_scheduleterms (schedule_id, from_period, amount, "
            "expires_after_periods) SELECT s.id, 1, 5000000000, 1 FROM ledger_schedule s "
            "WHERE s.project_id = %s",
            [project.pk],
        )


def run(*arguments: str) -> tuple[float, int]:
    """Seconds and the child's peak RSS in KiB of one `manage.py` command."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(
            [sys.executable, "manage.py", *arguments],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        peak_kib = 0
        while child.poll() is None:
            peak_kib = max(peak_kib, peak_rss_kib(child.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if child.returncode != 0:
        raise SystemExit(f"{arguments[0]} failed ({child.returncode}):\n{text}")
    return seconds, peak_kib


def commands(project: Project) -> dict[str, tuple[str, ...]]:
    return {
        "run_scheduler": ("run_scheduler", "--once"),
        "bulk_grant": (
            "bulk_grant",
            "--project",
            project.name,
            "--all-customers",
            "--amount",
            "5000",
            "--wallet",
            "default",
            "--run-id",
            "bench",
        ),
    }


def settle_database() -> None:
    """The tables vacuumed and analyzed and a checkpoint written: each command starts from
    the same state, rather than one of them paying for the other's writes."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("run on PostgreSQL: scripts/with-postgres.sh python bench/schedules.py")
    call_command("migrate", verbosity=0)
    print(f"schedules on PostgreSQL, {os.cpu_count()} CPUs, {ROUNDS} rounds (medians)")
    print(
        f"{'customers':>10} {'command':>14} {'seconds':>8} {'grants/s':>9} {'peak RSS':>10} "
        f"{'rate / bulk_grant':>18}"
    )
    for customers in SIZES:
        measured: dict[str, list[tuple[float, float, int]]] = {}
        for round_ in range(ROUNDS):
            project = Project.objects.create(name=f"bench-schedules-{customers}-{time.time_ns()}")
            fill(project, customers)
            # Each goes first in every other round: the second finds the tables larger.
            order = list(commands(project).items())
            for label, arguments in order if round_ % 2 == 0 else reversed(order):
                settle_database()
                before = LedgerEntry.objects.filter(customer__project=project).count()
                seconds, peak_kib = run(*arguments)
                grants = LedgerEntry.objects.filter(customer__project=project).count() - before
                measured.setdefault(label, []).append((grants / seconds, seconds, peak_kib))
            granted = Schedule.objects.filter(project=project, periods_granted=1).count()
            if granted != customers:
                raise SystemExit(f"{granted} of {customers} schedules granted once")
        rates = {
            label: statistics.median(r for r, _, _ in runs) for label, runs in measured.items()
        }
        for label, runs in measured.items():
            seconds = statistics.median(s for _, s, _ in runs)
            peak = max(p for _, _, p in runs)
            print(
                f"{customers:>10,} {label:>14} {seconds:>8.1f} {rates[label]:>9,.0f} "
                f"{peak / 1024:>6.0f} MiB {rates[label] / rates['bulk_grant']:>18.2f}",
                flush=True,
            )
        report = check_ledger(project=project)
        print(
            f"{'':>10} every schedule granted once; check_ledger of the last round: "
            f"{'consistent' if report.ok else report.problems[:3]}"
        )


if __name__ == "__main__":
    main()
