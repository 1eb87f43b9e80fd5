"""`bulk_grant` throughput and memory against file size, on PostgreSQL.

Writes a CSV of N rows (N new customers, so each row also creates its customer), runs
`manage.py bulk_grant` on it as a child process, and prints rows/s over the whole command
(validation pass included) and the child's peak resident memory. Then runs it again on the
same file (every row a replay). Memory should not grow with the file.

Run: `make bench` (it starts its own PostgreSQL), or
`scripts/with-postgres.sh python bench/bulk_grant.py`. Sizes: BENCH_BULK_ROWS, comma-separated
(default 100000,300000; a million rows takes several minutes here).
"""

import os
import resource
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

from customers.models import Project  # noqa: E402
from ledger.selectors.consistency import check_ledger  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_BULK_ROWS", "100000,300000").split(",")]
BATCH_SIZE = os.environ.get("BENCH_BULK_BATCH", "1000")


def write_file(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("customer_id,amount,wallet,expires_at,description\n")
        for n in range(rows):
            wallet = "promo" if n % 10 == 0 else "default"
            expires = "2027-06-30T00:00:00Z" if n % 3 == 0 else ""
            out.write(f"bench-{n},{n % 1000 + 1}.25,{wallet},{expires},migrated balance\n")


def run(path: Path, project: str) -> tuple[float, float, int, str]:
    """Seconds, the child's CPU seconds, its peak RSS in KiB, its summary.

    The peak is the child's own `VmHWM`, read while it runs: `ru_maxrss` would also count the
    pages it shared with this process between fork and exec.
    """
    command = [sys.executable, "manage.py", "bulk_grant", str(path), "--project", project]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as summary:
        child = subprocess.Popen(
            [*command, "--batch-size", BATCH_SIZE],
            cwd=ROOT,
            stdout=summary,
            stderr=subprocess.DEVNULL,
        )
        peak_kib = 0
        while child.poll() is None:
            peak_kib = max(peak_kib, peak_rss_kib(child.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        summary.seek(0)
        text = summary.read()
    if child.returncode != 0:
        raise SystemExit(f"bulk_grant failed ({child.returncode}):\n{text}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - sum(CPU_SO_FAR)
    CPU_SO_FAR.append(cpu)
    return seconds, cpu, peak_kib, text


CPU_SO_FAR: list[float] = []


def peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass  # it has just ended
    return 0


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("run on PostgreSQL: scripts/with-postgres.sh python bench/bulk_grant.py")
    call_command("migrate", verbosity=0)
    print(f"bulk_grant on PostgreSQL, batch size {BATCH_SIZE}, {os.cpu_count()} CPUs")
    # CPU seconds of the command's own process: on a shared machine the wall clock also
    # counts the time it waited for a core; the database server's time is not in it.
    print(
        f"{'rows':>10} {'pass':>8} {'seconds':>8} {'rows/s':>8} {'CPU s':>7} "
        f"{'rows/CPU s':>10} {'peak RSS':>10}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for rows in SIZES:
            project = Project.objects.create(name=f"bench-bulk-{rows}-{time.time_ns()}")
            path = Path(folder) / f"grants-{rows}.csv"
            write_file(path, rows)
            for label in ("grant", "replay"):
                seconds, cpu, peak_kib, _ = run(path, project.name)
                print(
                    f"{rows:>10,} {label:>8} {seconds:>8.1f} {rows / seconds:>8,.0f} "
                    f"{cpu:>7.1f} {rows / cpu:>10,.0f} {peak_kib / 1024:>6.0f} MiB",
                    flush=True,
                )
            path.unlink()
            report = check_ledger(project=project)
            print(f"{'':>10} check_ledger: {'consistent' if report.ok else report.problems[:3]}")


if __name__ == "__main__":
    main()
