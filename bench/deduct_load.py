"""Deduction throughput and latency of the service under gunicorn, measured over real HTTP.

Creates a project, an API key and customers with the services on DATABASE_URL (SQLite in
DATA_DIR when unset; migrations are applied first), starts gunicorn on a free loopback port,
fires deductions of 1 credit from many threads at once, stops gunicorn and prints a table.
Run by hand, never in the test suite:

    scripts/with-postgres.sh python bench/deduct_load.py
    python bench/deduct_load.py --requests 500 --customers 4

By default every request charges one customer whose balance covers half of them, so both the
success and the `insufficient_balance` paths are measured, as serialized as they can be (all
writers of one customer queue on its row lock). `--customers N` spreads the load over N
customers, whose writers never wait for each other on PostgreSQL.
"""

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "credits_project.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import ApiKey, Project  # noqa: E402
from ledger import services  # noqa: E402
from tests.conftest import Service  # noqa: E402

TIME_CAP_SECONDS = 120
logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="deductions to send")
    parser.add_argument("--threads", type=int, default=20, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--customers", type=int, default=1, help="customers to spread over")
    parser.add_argument(
        "--balance",
        type=int,
        default=None,
        help="credits per customer (default: half of the requests each customer gets)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="send GET /v1/health (authentication: one indexed read) instead, for comparison",
    )
    parser.add_argument(
        "--time-cap", type=float, default=TIME_CAP_SECONDS, help="stop sending after this"
    )
    args = parser.parse_args()
    if min(args.requests, args.threads, args.workers, args.customers) < 1:
        parser.error("--requests, --threads, --workers and --customers must be positive")
    args.time_cap = min(args.time_cap, TIME_CAP_SECONDS)
    return args


def prepare(customers: int, balance: int) -> tuple[str, list[str]]:
    """A fresh project, its API key, and `customers` customers holding `balance` each."""
    call_command("migrate", verbosity=0, interactive=False)
    project = Project.objects.create(name=f"bench-{timezone.now():%Y%m%d-%H%M%S-%f}")
    _, raw_key = ApiKey.objects.create_key(project=project, name="bench")
    customer_ids = [f"bench-{n}" for n in range(customers)]
    for customer_id in customer_ids:
        services.deposit(
            project=project,
            customer_id=customer_id,
            amount=Decimal(balance),
            actor="operator:bench",
            idempotency_key=f"bench-seed-{customer_id}",
        )
    connection.close()  # gunicorn gets the database to itself
    return raw_key, customer_ids


def fire(
    base_url: str,
    api_key: str,
    customer_ids: list[str],
    requests: int,
    threads: int,
    cap: float,
    baseline: bool = False,
) -> tuple[list[tuple[int, str | None, float]], float]:
    """Send the deductions from `threads` clients released together; (status, code, seconds)
    per request sent, and the wall time from the first to the last answer."""
    results: list[tuple[int, str | None, float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    spans: list[tuple[float, float]] = []
    deadline = time.monotonic() + cap
    run = timezone.now().strftime("%H%M%S%f")

    def client(first: int) -> None:
        mine = []
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
        ) as http:
            barrier.wait(timeout=30)
            started = time.perf_counter()
            for n in range(first, requests, threads):
                if time.monotonic() > deadline:
                    break
                body = {
                    "customer_id": customer_ids[n % len(customer_ids)],
                    "transaction_id": f"bench-{run}-{n}",
                    "amount": 1,
                }
                sent = time.perf_counter()
                try:
                    if baseline:
                        response = http.get("/v1/health")
                    else:
                        response = http.post("/v1/billing/deduct", json=body)
                    status = response.status_code
                    code = None if status == 200 else response.json()["error"]["code"]
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    status, code = 0, type(exc).__name__
                mine.append((status, code, time.perf_counter() - sent))
            ended = time.perf_counter()
        with lock:
            results.extend(mine)
            spans.append((started, ended))

    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(cap + 90)
    wall = max(end for _, end in spans) - min(start for start, _ in spans) if spans else 0.0
    return results, wall


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    args = parse_args()
    per_customer = -(-args.requests // args.customers)
    balance = args.balance if args.balance is not None else max(1, per_customer // 2)
    api_key, customer_ids = prepare(args.customers, balance)
    server = Service(args.workers)  # the test suite's gunicorn runner, on this database
    try:
        results, wall = fire(
            server.base_url,
            api_key,
            customer_ids,
            args.requests,
            args.threads,
            args.time_cap,
            args.baseline,
        )
    except BaseException:
        server.stop()
        print(f"gunicorn's log: {server.log.name}", file=sys.stderr)
        raise
    server_errors = sum(1 for status, _, _ in results if status >= 500 or status == 0)
    server.stop()
    if server_errors:
        print(f"{server_errors} requests failed; gunicorn's log: {server.log.name}")
    if not results:
        raise SystemExit("no request was answered")
    latencies = [seconds for _, _, seconds in results]
    outcomes = Counter((status, code) for status, code, _ in results)
    rows = [
        ("request", "GET /v1/health" if args.baseline else "POST /v1/billing/deduct"),
        ("database", connection.vendor),
        ("gunicorn workers", str(args.workers)),
        ("client threads", str(args.threads)),
        ("customers", f"{args.customers} x {balance} credits"),
        ("requests", f"{len(results)} of {args.requests}"),
        ("successes", str(outcomes[(200, None)])),
        *(
            (f"  {status} {code}", str(count))
            for (status, code), count in sorted(outcomes.items(), key=str)
            if status != 200
        ),
        ("throughput", f"{len(results) / wall:.0f} req/s" if wall else "n/a"),
        ("p50 latency", f"{statistics.median(latencies) * 1000:.1f} ms"),
        ("p99 latency", f"{percentile(latencies, 0.99) * 1000:.1f} ms"),
        ("wall time", f"{wall:.2f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'metric'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 24}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")
    if len(results) < args.requests:
        print(f"stopped after {args.time_cap:.0f} s: {args.requests - len(results)} not sent")


if __name__ == "__main__":
    main()
