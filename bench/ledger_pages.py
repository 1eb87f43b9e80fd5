"""Ledger page latency against ledger size, on PostgreSQL.

For one customer holding 1,000, 100,000 and 1,000,000 entries, times whole HTTP requests
(gunicorn, authentication, `total_count` included) for the first page and for a page 90% deep
in the walk, and prints p50/p99 per size. Run: `make bench` (it starts its own PostgreSQL).
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import django
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from customers.models import ApiKey, Customer, Project  # noqa: E402
from ledger.models import CreditAccount, LedgerEntry  # noqa: E402
from ledger.selectors.ledger_pages import LedgerQuery, encode_cursor  # noqa: E402

SIZES = [1_000, 100_000, 1_000_000]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 200))
PORT = int(os.environ.get("BENCH_PORT", 8765))


def fill(customer: Customer, account: CreditAccount, size: int) -> None:
    """Insert `size` GRANT entries, ten per millisecond (shared timestamps on purpose)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO ledger_ledgerentry (customer_id, account_id, operation_type, amount,
                transaction_id, business_type, description, actor, created_at)
            SELECT %s, %s, 'GRANT', 1000000, NULL, 'UNDEFINED', '', 'bench',
                   TIMESTAMPTZ '2026-01-01' + (g / 10) * INTERVAL '1 millisecond'
            FROM generate_series(1, %s) AS g
            """,
            [customer.pk, account.pk, size],
        )
        cursor.execute("ANALYZE ledger_ledgerentry")


def timed(client: httpx.Client, url: str) -> list[float]:
    latencies = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("run on PostgreSQL: scripts/with-postgres.sh python bench/ledger_pages.py")
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name=f"bench-{time.time_ns()}")
    _, key = ApiKey.objects.create_key(project=project, name="bench")
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESSLOG": "",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "credits_project.wsgi"], cwd=ROOT, env=env
    )
    rows = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{PORT}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            for _ in range(100):
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            for size in SIZES:
                customer = Customer.objects.create(project=project, external_id=f"c{size}")
                account = CreditAccount.objects.create(customer=customer, total=size)
                started = time.perf_counter()
                fill(customer, account, size)
                filled = time.perf_counter() - started
                deep = LedgerEntry.objects.filter(customer=customer).order_by("-created_at", "-id")[
                    int(size * 0.9)
                ]
                cursor = encode_cursor(LedgerQuery(customer=customer), deep)
                url = f"/v1/customers/{customer.external_id}/ledger?limit=20"
                first = timed(client, url)
                deep_page = timed(client, f"{url}&cursor={cursor}")
                rows.append(
                    (
                        size,
                        filled,
                        statistics.median(first),
                        p(first, 99),
                        statistics.median(deep_page),
                        p(deep_page, 99),
                    )
                )
    finally:
        server.terminate()
        server.wait(timeout=15)

    print(f"\nledger page latency, {REQUESTS} sequential requests each, limit=20 (ms)")
    print(
        f"{'entries':>10} {'fill s':>7} {'first p50':>10} {'first p99':>10} "
        f"{'90% p50':>9} {'90% p99':>9}"
    )
    for size, filled, f50, f99, d50, d99 in rows:
        print(f"{size:>10,} {filled:>7.1f} {f50:>10.2f} {f99:>10.2f} {d50:>9.2f} {d99:>9.2f}")
    base_first, base_deep = rows[0][2], rows[0][4]
    print(
        f"ratio 1,000,000 / 1,000: first page {rows[-1][2] / base_first:.2f}x, "
        f"90% deep {rows[-1][4] / base_deep:.2f}x"
    )


if __name__ == "__main__":
    main()
