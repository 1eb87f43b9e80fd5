#!/usr/bin/env python3
"""Keeps pgbouncer pointed at a pg_auto_failover formation's primary.

pgbouncer before 1.24 connects to one host per database and cannot follow a failover by
itself. This follower listens on the monitor's `state` channel (and asks again every
`--poll-seconds` in case a notification was missed or the monitor restarted), reads the
writable node from the monitor (`pgautofailover.get_primary`), and when it changes rewrites
the file of pgbouncer's `[databases]` section (which pgbouncer.ini takes with
`%include FILE`), then has pgbouncer RELOAD it and RECONNECT the databases through its admin
console, so that server connections to the old primary are closed as soon as they are
released. While the formation has no writable node the target is left as it is.

    follow_primary.py --monitor postgres://autoctl_node@monitor:5432/pg_auto_failover \\
        --pgbouncer postgres://pgbouncer-admin@127.0.0.1:6432/pgbouncer \\
        --databases-file /etc/pgbouncer/databases.ini --database credits

Needs psycopg (the service's dependency); run it beside pgbouncer, one per pgbouncer.
"""

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg

logger = logging.getLogger("follow_primary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitor", required=True, help="the monitor's URL")
    parser.add_argument("--pgbouncer", required=True, help="pgbouncer's admin console URL")
    parser.add_argument("--databases-file", required=True, type=Path)
    parser.add_argument(
        "--database", action="append", required=True, help="a database to route (repeatable)"
    )
    parser.add_argument("--formation", default="default")
    parser.add_argument("--group", type=int, default=0)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    follow(args)


def follow(args: argparse.Namespace) -> None:
    target: tuple[str, int] | None = None
    while True:
        try:
            with psycopg.connect(args.monitor, autocommit=True, connect_timeout=5) as monitor:
                monitor.execute("LISTEN state")
                while True:
                    primary = writable_node(monitor, args.formation, args.group)
                    if primary is not None and primary != target:
                        route(args, *primary)
                        target = primary
                    wait_for_notification(monitor, args.poll_seconds)
        except psycopg.Error as exc:
            logger.warning("monitor or pgbouncer unavailable, trying again: %s", exc)
            time.sleep(args.poll_seconds)


def writable_node(monitor: psycopg.Connection, formation: str, group: int):
    """(host, port) of the node the monitor names writable; None while there is none."""
    try:
        row = monitor.execute(
            "SELECT primary_host, primary_port FROM pgautofailover.get_primary(%s, %s)",
            [formation, group],
        ).fetchone()
    except psycopg.DatabaseError:
        if monitor.broken:
            raise
        return None  # the monitor answered: a failover in progress, no writable node yet
    return (row[0], row[1]) if row and row[0] else None


def wait_for_notification(monitor: psycopg.Connection, timeout: float) -> None:
    """Returns at the monitor's next notification, or after `timeout`."""
    for _ in monitor.notifies(timeout=timeout, stop_after=1):
        pass


def route(args: argparse.Namespace, host: str, port: int) -> None:
    lines = ["[databases]"]
    lines += [f"{name} = host={host} port={port} dbname={name}" for name in args.database]
    write_atomically(args.databases_file, "\n".join(lines) + "\n")
    with psycopg.connect(args.pgbouncer, autocommit=True, connect_timeout=5) as console:
        console.execute("RELOAD")
        for name in args.database:
            console.execute(f"RECONNECT {name}")
    logger.info("pgbouncer now routes %s to %s:%s", ", ".join(args.database), host, port)


def write_atomically(path: Path, text: str) -> None:
    """pgbouncer never reads a half-written file: a temporary one is renamed over it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


if __name__ == "__main__":
    main()
