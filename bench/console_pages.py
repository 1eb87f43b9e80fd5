"""Console page latency for a customer holding 10,000 accounts and 1,000,000 ledger entries, on
PostgreSQL.

Fills one customer with accounts (a fifth used up, expiries spread over a year, some expired)
and ledger entries spread over the last 90 days (grants, deducts' consumes, freezes with their
consumes and unfreezes), then times the customer page, the customer list, the ledger list and
the credits overview through Django's full request stack (test client, logged in), and prints
p50/max and the statement count per page. Run: `make bench` (it starts its own PostgreSQL).
"""

import os
import statistics
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from customers.models import Customer, Project  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", 10_000))
ENTRIES = int(os.environ.get("BENCH_ENTRIES", 1_000_000))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 10))


def fill(customer: Customer) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO ledger_creditaccount (customer_id, wallet, source, total, used, frozen,
                starts_at, expires_at, business_type, created_at, expiry_recorded_at)
            SELECT %s, 'w' || (g %% 4), 'default', 100000000,
                   CASE WHEN g %% 5 = 0 THEN 100000000 ELSE 10000000 END,
                   CASE WHEN g %% 50 = 1 THEN 1000000 ELSE 0 END,
                   NULL,
                   CASE WHEN g %% 3 = 0 THEN NULL
                        ELSE now() + ((g %% 365) - 30) * INTERVAL '1 day' END,
                   'UNDEFINED', now() - INTERVAL '100 days', NULL
            FROM generate_series(1, %s) AS g
            """,
            [customer.pk, ACCOUNTS],
        )
        cursor.execute(
            "SELECT min(id) FROM ledger_creditaccount WHERE customer_id = %s", [customer.pk]
        )
        first = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO ledger_ledgerentry (customer_id, account_id, operation_type, amount,
                transaction_id, business_type, description, actor, created_at)
            SELECT %s, %s + (g %% %s),
                   (ARRAY['GRANT','CONSUME','FREEZE','CONSUME','UNFREEZE'])[1 + g %% 5],
                   1000000, 'tx-' || (g / 5), 'UNDEFINED', '', 'bench',
                   now() - (g::float / %s) * INTERVAL '90 days'
            FROM generate_series(1, %s) AS g
            """,
            [customer.pk, first, ACCOUNTS, ENTRIES, ENTRIES],
        )
        cursor.execute("ANALYZE")


def timed(client: Client, url: str) -> tuple[float, float, int]:
    latencies = []
    for _ in range(REQUESTS):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    if os.environ.get("BENCH_SLOWEST"):
        for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:2]:
            print(f"  {query['time']} s: {query['sql'][:600]}")
    return statistics.median(latencies), max(latencies), len(queries)


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("run on PostgreSQL: scripts/with-postgres.sh python bench/console_pages.py")
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name=f"bench-console-{time.time_ns()}")
    customer = Customer.objects.create(project=project, external_id="heavy")
    started = time.perf_counter()
    fill(customer)
    print(f"filled {ACCOUNTS} accounts, {ENTRIES} entries in {time.perf_counter() - started:.0f} s")
    user = get_user_model().objects.create_superuser(f"bench-{time.time_ns()}", "", "x" * 20)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pages = {
        "customer page": reverse("admin:customers_customer_change", args=[customer.pk]),
        "customer list": reverse("admin:customers_customer_changelist") + "?q=heavy",
        "ledger list (customer)": reverse("admin:ledger_ledgerentry_changelist")
        + "?customer=heavy",
        "credits overview": reverse("credits_overview") + f"?project={project.pk}",
    }
    print(f"{'page':<26} {'p50 ms':>8} {'max ms':>8} {'queries':>8}")
    for name, url in pages.items():
        p50, worst, queries = timed(client, url)
        print(f"{name:<26} {p50:>8.0f} {worst:>8.0f} {queries:>8}")


if __name__ == "__main__":
    main()
