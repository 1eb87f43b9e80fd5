"""`bulk_grant`: grant credits from a CSV or JSON Lines file, or to every customer of a
project, exactly once. Argument parsing, progress and the summary only; the grants are
`ledger.services.bulk`."""

import datetime as dt
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from credits_project.errors import ServiceError
from credits_project.json import format_decimal
from customers.models import Project
from ledger.files.grants import GrantFile, amount_value, validate_deposit
from ledger.services import bulk
from ledger.services.bulk import RowError
from ledger.services.deposits import Grant

DURATION = re.compile(r"([1-9][0-9]*)([smhdw])")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
METADATA_CONDITION = re.compile(r"metadata\.([\w-]+(?:\.[\w-]+)*)=(.*)", re.DOTALL)
PLAIN_PROGRESS_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Grant credits to many customers, exactly once: from FILE (CSV with a header row, or "
        "JSON Lines; '-' reads standard input), one deposit per row, or with --all-customers "
        "to every customer of the project once per --run-id. Rows are validated as the API "
        "validates a deposit; by default a file with any invalid row grants nothing. A rerun "
        "(after success, an error or a kill) grants only what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="CSV or JSON Lines file; '-' for stdin.")
        parser.add_argument("--project", required=True, help="Name of the project.")
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Default: JSON Lines if it starts with {."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and summarize; change nothing."
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Grant the valid rows, report the rest."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=bulk.DEFAULT_BATCH_SIZE,
            help=f"Rows per transaction, 1-{bulk.MAX_BATCH_SIZE} (default %(default)s).",
        )
        every = parser.add_argument_group("grant to every customer")
        every.add_argument("--all-customers", action="store_true")
        every.add_argument("--amount", help="Credits per customer.")
        every.add_argument("--wallet", help="Wallet to grant into.")
        every.add_argument("--run-id", help="Names the run: each customer is granted once per id.")
        every.add_argument("--source", help="Source of the grants (default 'default').")
        every.add_argument("--business-type", help="Business type of the grants.")
        every.add_argument("--description", help="Description of the grants.")
        expiry = every.add_mutually_exclusive_group()
        expiry.add_argument("--expires-at", help="ISO-8601 instant with a timezone.")
        expiry.add_argument(
            "--expires-in", help="e.g. 30d, 12h, 2w: counted from the run's first pass."
        )
        add_where_argument(every)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        if not 1 <= options["batch_size"] <= bulk.MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be 1 to {bulk.MAX_BATCH_SIZE}.")
        if options["all_customers"] == (options["file"] is not None):
            raise CommandError("Give either FILE or --all-customers.")
        self.started = time.monotonic()
        try:
            if options["all_customers"]:
                self.grant_everyone(project, options)
            else:
                self.grant_file(project, options)
        except ServiceError as error:  # the file as a whole is not valid
            raise CommandError(str(RowError("file", error)).removeprefix("file: ")) from None

    # --- from a file ------------------------------------------------------------------------

    def grant_file(self, project: Project, options: dict[str, Any]) -> None:
        with self.open(options["file"]) as source:
            grant_file = GrantFile(source, format=options["format"])
        with grant_file:
            expected = max(grant_file.lines - (grant_file.format == "csv"), 0)
            settings = {"project": project, "batch_size": options["batch_size"]}
            if options["dry_run"] or not options["skip_invalid"]:
                with Progress(self, "validating", expected) as progress:
                    tally = bulk.preview(
                        grant_file.rows(project),
                        on_error=progress.error,
                        on_progress=progress.advance,
                        **settings,
                    )
                if options["dry_run"]:
                    self.summarize(tally, dry_run=True)
                    self.exit_if(tally.rejected and not options["skip_invalid"])
                    return
                if tally.rejected:
                    self.stderr.write(f"{tally.rejected} row(s) refused: nothing was granted.")
                    raise SystemExit(1)
            with Progress(self, "granting", expected) as progress:
                tally = bulk.apply(
                    grant_file.rows(project),
                    reference=grant_file.reference(project),
                    on_error=progress.error,
                    on_progress=progress.advance,
                    **settings,
                )
        self.summarize(tally)
        self.exit_if(tally.rejected and not options["skip_invalid"])

    def open(self, name: str) -> Any:
        return open_input(name)

    # --- to every customer ------------------------------------------------------------------

    def grant_everyone(self, project: Project, options: dict[str, Any]) -> None:
        for name in ("amount", "wallet", "run_id"):
            if not options[name]:
                raise CommandError(f"--all-customers needs --{name.replace('_', '-')}.")
        if len(options["run_id"]) > 255:
            raise CommandError("--run-id is at most 255 characters.")
        grant = self.everyone_grant(project, options)
        where = bulk.metadata_filter(dict(parse_condition(text) for text in options["where"]))
        rows = bulk.customer_rows(
            project, grant, run_id=options["run_id"], where=where, chunk_size=options["batch_size"]
        )
        expected = project.customers.filter(**where).count()
        settings = {"project": project, "batch_size": options["batch_size"]}
        if options["dry_run"]:
            with Progress(self, "checking", expected) as progress:
                tally = bulk.preview(
                    rows, on_error=progress.error, on_progress=progress.advance, **settings
                )
            self.summarize(tally, dry_run=True)
            return
        with Progress(self, "granting", expected) as progress:
            tally = bulk.apply(
                rows,
                reference=f"bulk_grant run {options['run_id']}",
                on_error=progress.error,
                on_progress=progress.advance,
                **settings,
            )
        self.summarize(tally)
        self.exit_if(tally.rejected and not options["skip_invalid"])

    def everyone_grant(self, project: Project, options: dict[str, Any]) -> Grant:
        """The grant each customer gets, validated as a deposit's fields."""
        fields = {
            "customer_id": "*",
            "amount": amount_value(options["amount"]),
            "wallet": options["wallet"],
            "source": options["source"],
            "expires_at": options["expires_at"],
            "business_type": options["business_type"],
            "description": options["description"],
        }
        try:
            _, grant, _ = validate_deposit(fields)
        except ServiceError as error:
            raise CommandError(str(RowError("arguments", error))) from None
        if options["expires_in"]:
            match = DURATION.fullmatch(options["expires_in"])
            if match is None:
                raise CommandError("--expires-in is a number and a unit: s, m, h, d or w.")
            count, unit = match.groups()
            expires_at = bulk.run_expiry(project, options["run_id"]) or (
                timezone.now() + dt.timedelta(**{DURATION_UNITS[unit]: int(count)})
            )
            grant = replace(grant, expires_at=expires_at)
        return grant

    # --- reporting --------------------------------------------------------------------------

    def summarize(self, tally: bulk.Tally, *, dry_run: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        would = "would be " if dry_run else ""
        lines = [
            "dry run: nothing was changed" if dry_run else None,
            f"rows {would}granted: {tally.granted}",
            f"rows {would}replayed (granted before): {tally.replayed}",
            f"rows rejected: {tally.rejected}",
            f"credits {would}granted per wallet:" + ("" if tally.credits else " none"),
            *(
                f"  {wallet}: {format_decimal(amount)}"
                for wallet, amount in sorted(tally.credits.items())
            ),
            f"customers {would}created: {tally.customers_created}",
            f"elapsed: {elapsed:.1f} s ({tally.rows / max(elapsed, 1e-9):.0f} rows/s)",
        ]
        for line in lines:
            if line is not None:
                self.stdout.write(line)
        if tally.rejected and tally.granted and not dry_run:
            self.stderr.write(bulk.REFUSED_ROWS_ADVICE)

    def exit_if(self, failed: Any) -> None:
        if failed:
            raise SystemExit(1)


def add_where_argument(group: Any) -> None:
    group.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="metadata.KEY=VALUE",
        help="Only customers whose metadata has this string value; repeatable.",
    )


def open_input(name: str) -> Any:
    """The named file, or standard input for '-', as a binary stream."""
    if name == "-":
        return open(sys.stdin.fileno(), "rb", closefd=False)
    try:
        return Path(name).open("rb")
    except OSError as error:
        raise CommandError(f"Cannot read {name}: {error.strerror}.") from None


def parse_condition(text: str) -> tuple[str, str]:
    match = METADATA_CONDITION.fullmatch(text)
    if match is None or "__" in match.group(1):
        raise CommandError(f"--where {text!r}: expected metadata.KEY=VALUE.")
    return match.group(1), match.group(2)


class Progress:
    """Progress on standard error: a bar with rows/s and the time left on a terminal, a plain
    line every few seconds otherwise (and one at the end). Refused rows are written above it."""

    def __init__(self, command: BaseCommand, phase: str, expected: int, name: str = "bulk_grant"):
        self.out, self.name = command.stderr, name
        self.phase, self.expected, self.done = phase, expected, 0
        self.started = self.shown = time.monotonic()
        self.bar = None
        if self.out.isatty():
            self.bar = tqdm(
                total=expected, desc=phase, unit=" rows", file=self.out._out, dynamic_ncols=True
            )

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, failure: type[BaseException] | None, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        elif failure is None:
            self.show()

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
        elif time.monotonic() - self.shown >= PLAIN_PROGRESS_SECONDS:
            self.show()

    def error(self, error: RowError) -> None:
        if self.bar is not None:
            self.bar.write(str(error), file=self.out._out)
        else:
            self.out.write(str(error))

    def show(self) -> None:
        self.shown = time.monotonic()
        elapsed = max(self.shown - self.started, 1e-9)
        rate = self.done / elapsed
        line = f"{self.name}: {self.phase} {self.done}/{self.expected} rows, {rate:.0f} rows/s"
        left = self.expected - self.done
        if left > 0 and rate > 0:
            line += f", about {left / rate:.0f} s left"
        self.out.write(line)
