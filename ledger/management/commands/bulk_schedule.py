"""`bulk_schedule`: put many customers on a grant schedule, exactly once. Argument parsing,
validation, progress and the summary only; each schedule is made by `create_schedule`."""

import time
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from credits_project.errors import ServiceError
from credits_project.json import check_fields, loads
from customers.models import Customer, Project
from ledger.contract.schedules import ScheduleRequestSerializer
from ledger.files.schedules import ScheduleFile
from ledger.management.commands.bulk_grant import (
    Progress,
    add_where_argument,
    open_input,
    parse_condition,
)
from ledger.services import bulk, create_schedule
from ledger.services.bulk import RowError

ACTOR = "command:bulk_schedule"
PLAN_OPTIONS = ("amount", "period", "every", "wallet", "source", "anchor", "timezone", "ends_at")


class Command(BaseCommand):
    help = (
        "Put many customers on a grant schedule, exactly once: from FILE (CSV with a header "
        "row of the fields of POST /v1/schedules, the rollover cap as rollover_max_amount or "
        "rollover_max_percent; or JSON Lines, one body per line; '-' reads standard input), "
        "or with --all-customers "
        "every customer of the project (those matching --where) on one plan. Rows are "
        "validated as the API validates a schedule; by default a file with any invalid row "
        "makes nothing. Each schedule is named by its schedule_id (default RUN_ID:CUSTOMER_ID), "
        "so a rerun (after success, an error or a kill) makes only what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="CSV or JSON Lines file; '-' for stdin.")
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Default: JSON Lines if it starts with {."
        )
        parser.add_argument("--project", required=True, help="Name of the project.")
        parser.add_argument("--run-id", help="Names the run: the default schedule_id prefix.")
        parser.add_argument("--dry-run", action="store_true", help="Validate; change nothing.")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Make the valid rows, report the rest."
        )
        plan = parser.add_argument_group("the plan of every customer (with --all-customers)")
        plan.add_argument("--all-customers", action="store_true")
        for name in PLAN_OPTIONS:
            plan.add_argument(f"--{name.replace('_', '-')}")
        plan.add_argument("--expires-after-periods", help="A number, or 'never'.")
        plan.add_argument("--rollover-max-amount")
        plan.add_argument("--rollover-max-percent")
        add_where_argument(plan)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        if options["all_customers"] == (options["file"] is not None):
            raise CommandError("Give either FILE or --all-customers.")
        if options["all_customers"] and not options["run_id"]:
            raise CommandError("--all-customers needs --run-id.")
        self.started = time.monotonic()
        self.options = options
        if options["all_customers"]:
            where = bulk.metadata_filter(dict(parse_condition(t) for t in options["where"]))
            customers = Customer.objects.filter(project=project, **where)
            expected = customers.count()
            self.run(project, self.everyone(customers), expected)
        else:
            with open_input(options["file"]) as source:
                schedule_file = ScheduleFile(source, format=options["format"])
            with schedule_file:
                expected = max(schedule_file.lines - (schedule_file.format == "csv"), 0)
                try:
                    self.run(project, schedule_file.records, expected)
                except ServiceError as error:  # the file as a whole is not valid
                    message = str(RowError("file", error)).removeprefix("file: ")
                    raise CommandError(message) from None

    def run(self, project: Project, rows, expected: int) -> None:
        """Validate every row first (unless skipping invalid ones), then make each schedule."""
        if self.options["dry_run"] or not self.options["skip_invalid"]:
            with Progress(self, "validating", expected, name="bulk_schedule") as progress:
                valid, rejected = self.validate(rows(), progress)
            if self.options["dry_run"]:
                self.summarize(valid, 0, rejected, dry_run=True)
                self.exit_if(rejected and not self.options["skip_invalid"])
                return
            if rejected:
                self.stderr.write(f"{rejected} row(s) refused: no schedule was made.")
                raise SystemExit(1)
        made = replayed = rejected = 0
        with Progress(self, "scheduling", expected, name="bulk_schedule") as progress:
            for line, request in self.valid_rows(rows(), progress):
                if request is None:
                    rejected += 1
                    continue
                try:
                    result = create_schedule(project=project, actor=ACTOR, **request)
                except ServiceError as error:  # a schedule_id used with another plan
                    progress.error(RowError(line, error))
                    rejected += 1
                    continue
                if result.is_idempotent_replay:
                    replayed += 1
                else:
                    made += 1
                progress.advance(1)
        self.summarize(made, replayed, rejected)
        self.exit_if(rejected and not self.options["skip_invalid"])

    def validate(self, rows: Iterator, progress: Progress) -> tuple[int, int]:
        valid = rejected = 0
        for _, request in self.valid_rows(rows, progress):
            if request is None:
                rejected += 1
            else:
                valid += 1
                progress.advance(1)
        return valid, rejected

    def valid_rows(self, rows: Iterator, progress: Progress) -> Iterator[tuple[Any, Any]]:
        """(line, the validated request, or None once its error is reported) per row."""
        for line, data in rows:
            try:
                if isinstance(data, ServiceError):
                    raise data
                check_fields(data)
                if data.get("schedule_id") is None and self.options["run_id"]:
                    named = f"{self.options['run_id']}:{data.get('customer_id')}"
                    data = {**data, "schedule_id": named}
                yield line, ScheduleRequestSerializer.parse(data)
            except ServiceError as error:
                progress.error(RowError(line, error))
                progress.advance(1)
                yield line, None

    def everyone(self, customers):
        plan: dict[str, Any] = {
            name: self.options[name] for name in PLAN_OPTIONS if self.options[name] is not None
        }
        for name in ("amount", "every"):
            if name in plan:
                plan[name] = number(plan[name])
        expires = self.options["expires_after_periods"]
        if expires is not None:
            plan["expires_after_periods"] = None if expires == "never" else number(expires)
        for cap in ("max_amount", "max_percent"):
            value = self.options[f"rollover_{cap}"]
            if value is not None:
                plan["rollover"] = {cap: number(value)}

        def rows() -> Iterator[tuple[str, dict[str, Any]]]:
            last = 0
            while chunk := list(
                customers.filter(pk__gt=last)
                .order_by("pk")
                .values_list("pk", "external_id")[: bulk.DEFAULT_BATCH_SIZE]
            ):
                for _, external_id in chunk:
                    yield f"customer {external_id}", {**plan, "customer_id": external_id}
                last = chunk[-1][0]

        return rows

    def summarize(self, made: int, replayed: int, rejected: int, *, dry_run: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        would = "would be " if dry_run else ""
        if dry_run:
            self.stdout.write("dry run: nothing was changed")
            self.stdout.write(f"rows valid: {made}")
        else:
            self.stdout.write(f"schedules {would}made: {made}")
            self.stdout.write(f"rows replayed (made before): {replayed}")
        self.stdout.write(f"rows rejected: {rejected}")
        rows = made + replayed + rejected
        self.stdout.write(f"elapsed: {elapsed:.1f} s ({rows / max(elapsed, 1e-9):.0f} rows/s)")

    def exit_if(self, failed: Any) -> None:
        if failed:
            raise SystemExit(1)


def number(text: str) -> Any:
    """A command-line number as the API's JSON parser would read it, exact (else the text,
    which the field refuses with its own code)."""
    try:
        return loads(text)
    except ValueError:
        return text
