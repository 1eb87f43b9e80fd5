"""The service's own settings plus the benchmark's reference endpoint (see `bench/urls.py`).

Used only by `make bench`: the reference route never exists in production URLs.
`BENCH_SQLITE_SYNCHRONOUS=NORMAL` runs SQLite as it ran before commits were made durable
(`synchronous=FULL`), to measure what durability costs.
"""

import os

from credits_project.settings import *  # noqa: F403
from credits_project.settings import DATABASES, EMBEDDED_DATABASE

ROOT_URLCONF = "bench.urls"

_synchronous = os.environ.get("BENCH_SQLITE_SYNCHRONOUS")
if EMBEDDED_DATABASE and _synchronous in ("NORMAL", "FULL"):
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        f"PRAGMA journal_mode=WAL; PRAGMA synchronous={_synchronous};"
    )
