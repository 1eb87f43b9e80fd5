"""Writes `docs/benchmarks.md` from the results `bench/http_load.py` left in `data/`.

.venv/bin/python bench/report.py
"""

import json
import os
import platform
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = [ROOT / "data" / "bench-postgresql.json", ROOT / "data" / "bench-sqlite.json"]
OUT = ROOT / "docs" / "benchmarks.md"

# (goal, numerator run, denominator run, measure, target): `rate` goals are met at or above
# the target, `p50` goals (a latency ratio) at or below it.
GOALS = [
    ("deduct, spread / reference", "deduct, spread", "reference", "rate", 0.5),
    ("deduct, hot customer / spread", "deduct, one hot", "deduct, spread", "rate", 0.7),
    ("deduct, 64 connections / 16", "deduct, spread, 64", "deduct, spread", "rate", 0.9),
    ("freeze + consume pairs / reference", "freeze + consume", "reference", "rate", 0.25),
    ("deposit / reference", "deposit to an existing", "reference", "rate", 0.5),
    (
        "deduct with a credit limit / without",
        "deduct, spread, with a credit limit",
        "deduct, spread",
        "rate",
        0.95,
    ),
    ("GET customer / reference", "GET customer, spread", "reference", "rate", 0.8),
    (
        "GET customer, 10,000 spent / none",
        "GET customer, 10,000",
        "GET customer, 10 open",
        "p50",
        1.5,
    ),
    ("deduct, 10,000 spent / none", "deduct, 10,000", "deduct, 10 open", "p50", 1.5),
    (
        "deduct, 1,000,000 more entries / before",
        "deduct, spread, ledger",
        "deduct, spread",
        "rate",
        0.9,
    ),
    (
        "GET customer, 1,000,000 more entries / before",
        "GET customer, spread, ledger",
        "GET customer, spread",
        "rate",
        0.9,
    ),
]


def find(results: list[dict], prefix: str) -> dict:
    matches = [r for r in results if r["name"].startswith(prefix)]
    # The shortest name is the plain variant ("deduct, spread", not "..., 64 connections").
    return min(matches, key=lambda r: len(r["name"]))


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("Django", "djangorestframework", "psycopg", "gunicorn", "orjson")
    )
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {memory_kb / 2**20:.0f} GiB; "
        f"Linux {platform.release()}",
        f"- Python {platform.python_version()}; {packages}",
        f"- load generator: {(wrk.stdout or wrk.stderr).split(chr(10))[0].strip()}",
    ]


def table(run: dict) -> list[str]:
    results = run["results"]
    reference = find(results, "reference")["rate"]
    lines = [
        f"### {run['server_version']} (`gunicorn -w {run['workers']}`, {run['seconds']} s per run)",
        "",
        "| request | conns | req/s | ratio | p50 ms | p99 ms | app CPU ms/req | "
        "database CPU ms/req | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        database = "in the app" if r["db_cpu_ms"] is None else f"{r['db_cpu_ms']:.2f}"
        app = "" if r["app_cpu_ms"] is None else f"{r['app_cpu_ms']:.2f}"
        # A variant's rows ("sync workers: ...") compare with its own reference.
        prefix = r["name"].split(": ", 1)[0]
        variant = f"{prefix}: " if ": " in r["name"] and prefix != "reference" else ""
        base = find(results, f"{variant}reference")["rate"] if variant else reference
        lines.append(
            f"| {r['name']} | {r['connections']} | {r['rate']:.0f} | "
            f"{r['rate'] / base:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {app} | "
            f"{database} | {r['failures']} |"
        )
    lines += ["", "| goal | measured | target | met |", "|---|---|---|---|"]
    for label, top, bottom, measure, target in GOALS:
        if measure == "rate":
            ratio = find(results, top)["rate"] / find(results, bottom)["rate"]
            met, bound = ratio >= target, f"≥ {target}"
        else:
            ratio = find(results, top)["p50_ms"] / find(results, bottom)["p50_ms"]
            met, bound = ratio <= target, f"≤ {target}"
        lines.append(f"| {label} | {ratio:.2f} | {bound} | {'yes' if met else 'no'} |")
    comparisons = [
        ("deduct + refund pairs / deducts", "deduct + refund pair", "deduct, spread"),
        ("deduct into debt / deduct from credits", "deduct into debt", "deduct, spread"),
        ("deduct, gevent workers / sync workers", "deduct, spread", "sync workers: deduct"),
        ("deduct, synchronous=FULL / NORMAL", "deduct, spread", "synchronous=NORMAL: deduct"),
    ]
    lines += ["", "| comparison | req/s ratio |", "|---|---|"]
    for label, top, bottom in comparisons:
        if any(r["name"].startswith(bottom) for r in results):
            ratio = find(results, top)["rate"] / find(results, bottom)["rate"]
            lines.append(f"| {label} | {ratio:.2f} |")
    return [*lines, ""]


def main() -> None:
    runs = [json.loads(path.read_text()) for path in RESULTS if path.exists()]
    if not runs:
        sys.exit("no results: run bench/http_load.py first (make bench)")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/http_load.py`, then `bench/report.py`); figures from "
        "one run, medians (p50) and ratios to the reference endpoint measured in the same run.",
        "The reference is a DRF view doing one primary-key read without authentication "
        "(`bench/urls.py`), served by its own gunicorn with the same settings; the service "
        "runs with the project's `gunicorn.conf.py`. Customers are picked at random; every "
        "charge and deposit has a new id. CPU time is read from /proc for the service's "
        "workers and every database server process, divided by the requests served "
        "(a freeze + consume pair counts once).",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Results",
        "",
    ]
    for run in runs:
        lines += table(run)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
