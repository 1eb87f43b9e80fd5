import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from ledger.services import expire_due, settle_due
from ledger.webhooks.delivery import Dispatcher, fan_out
from ledger.webhooks.notices import notify_expiring


class Command(BaseCommand):
    help = (
        "Expire credits past their expiry, settle freezes past their auto-settlement deadline, "
        "write expiry notices and deliver webhooks, every SCHEDULER_INTERVAL_SECONDS (default "
        "10). Several may run at once."
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
            while True:
                expired, settled = self.run_pass()
                dispatcher.dispatch()
                if once:
                    sent = dispatcher.wait()
                    # More may be due: an endpoint's task makes way after a number of
                    # deliveries. Stop at a round that delivers nothing (all failing).
                    while sent and dispatcher.dispatch():
                        delivered = dispatcher.wait()
                        if not delivered:
                            break
                        sent += delivered
                    self.stdout.write(f"expired {expired} account(s), settled {settled} freeze(s)")
                    if sent:
                        self.stdout.write(f"delivered {sent} webhook(s)")
                    return
                if expired or settled:
                    self.stdout.write(f"expired {expired} account(s), settled {settled} freeze(s)")
                deadline = time.monotonic() + interval
                while not stopping and time.monotonic() < deadline:
                    time.sleep(min(0.5, interval))
                if stopping:
                    return
        finally:
            dispatcher.close()

    @staticmethod
    def run_pass() -> tuple[int, int]:
        close_old_connections()
        expired = settled = 0
        while batch := expire_due():
            expired += batch
        while batch := settle_due():
            settled += batch
        notify_expiring()
        while fan_out():
            pass
        return expired, settled
