import logging
import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from ledger.files.uploads import remove_abandoned
from ledger.services import expire_due, grant_due, release_due, settle_due
from ledger.services.notices import notify_expiring
from ledger.webhooks.delivery import Dispatcher, fan_out

logger = logging.getLogger("credits.scheduler")


class Command(BaseCommand):
    help = (
        "Grant schedules' periods and rollovers as they come due, expire credits past their "
        "expiry, settle freezes past their auto-settlement deadline, release slot holdings whose "
        "lease ran out, write expiry notices, deliver webhooks and remove day-old unconfirmed "
        "bulk uploads, every SCHEDULER_INTERVAL_SECONDS (default 10). Several may run at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="Run one pass, deliver what is due, and exit."
        )
        parser.add_argument("--interval", type=float, default=None, help="Seconds between passes.")

    def handle(self, *args, once: bool, interval: float | None, **options):
        interval = interval if interval is not None else settings.SCHEDULER_INTERVAL_SECONDS
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Webhooks go out on the dispatcher's threads: a slow endpoint never holds up a pass.
        dispatcher = Dispatcher()
        try:
            if once:
                self.run_once(dispatcher)
                return
            # From here on a SIGTERM ends the pass at hand, then the command.
            logger.info("scheduler started (pid %s), a pass every %ss", os.getpid(), interval)
            while not stopping:
                try:
                    expired, settled, released = self.run_pass()
                    dispatcher.dispatch()
                except Exception:
                    # A database that went away, a lock given up on: the next pass retries
                    # whatever this one left, so the loop outlives any one pass.
                    logger.exception("scheduler pass failed; the next one runs in %ss", interval)
                    close_old_connections()
                else:
                    if expired or settled or released:
                        self.report(expired, settled, released)
                deadline = time.monotonic() + interval
                while not stopping and time.monotonic() < deadline:
                    time.sleep(min(0.5, interval))
        finally:
            dispatcher.close()

    def run_once(self, dispatcher: Dispatcher) -> None:
        """One pass, then every delivery due (a failure here ends the command with it)."""
        expired, settled, released = self.run_pass()
        dispatcher.dispatch()
        sent = dispatcher.wait()
        # More may be due: an endpoint's task makes way after a number of deliveries. Stop at
        # a round that delivers nothing (all failing).
        while sent and dispatcher.dispatch():
            delivered = dispatcher.wait()
            if not delivered:
                break
            sent += delivered
        self.report(expired, settled, released)
        if sent:
            self.stdout.write(f"delivered {sent} webhook(s)")

    def report(self, expired: int, settled: int, released: int) -> None:
        leases = f", released {released} lease(s)" if released else ""
        self.stdout.write(f"expired {expired} account(s), settled {settled} freeze(s){leases}")

    @staticmethod
    def run_pass() -> tuple[int, int, int]:
        close_old_connections()
        expired = settled = released = 0
        # Grants first: a period's grant and the expiry of the one before it fall due at one
        # instant, and the rollover between them is made with the grant.
        grant_due()
        while batch := expire_due():
            expired += batch
        while batch := settle_due():
            settled += batch
        while batch := release_due():
            released += batch
        notify_expiring()
        while fan_out():
            pass
        remove_abandoned()  # bulk uploads never confirmed
        return expired, settled, released
