"""`bulk_features`: grant slot capacity or set entitlements for many customers, from a CSV or
JSON Lines file or for every customer of a project, by `bulk_grant`'s rules: every row is
validated first (any invalid row refuses the file unless `--skip-invalid`), a rerun does each
row once, progress goes to standard error and the summary to standard output. Each row runs
through the API's own service (`grant_capacity`, `set_entitlement`)."""

import hashlib
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from credits_project.errors import ServiceError
from customers.models import Customer, Project
from ledger import services
from ledger.contract.entitlements import SetEntitlementRequestSerializer
from ledger.contract.slots import CapacityRequestSerializer
from ledger.files.features import EntitlementFile, FeatureFile, FeatureRow, SlotGrantFile
from ledger.files.grants import amount_value
from ledger.services.bulk import RowError

ACTOR = "command:bulk_features"
FILES: dict[str, type[FeatureFile]] = {"slots": SlotGrantFile, "entitlements": EntitlementFile}


class Command(BaseCommand):
    help = (
        "Grant slot capacity ('slots') or set entitlements ('entitlements') for many "
        "customers: from FILE (CSV with a header row, or JSON Lines; '-' reads standard "
        "input), one grant or set per row, or with --all-customers for every customer of the "
        "project (slots once per --run-id). Rows are validated as the API validates the call; "
        "by default a file with any invalid row changes nothing. A rerun does only what is "
        "missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(FILES))
        parser.add_argument("file", nargs="?", help="CSV or JSON Lines; '-' for standard input.")
        parser.add_argument("--project", required=True)
        parser.add_argument("--dry-run", action="store_true", help="Validate, change nothing.")
        parser.add_argument("--skip-invalid", action="store_true", help="Do the valid rows.")
        parser.add_argument("--all-customers", action="store_true")
        parser.add_argument("--run-id", help="Names an --all-customers slot run: once per id.")
        for name in ("wallet", "amount", "source", "feature-key", "value"):
            parser.add_argument(f"--{name}")
        parser.add_argument("--valid-from")
        parser.add_argument("--valid-until")
        parser.add_argument("--description")

    def handle(self, *args: Any, kind: str, file: str | None, **options: Any) -> None:
        try:
            project = Project.objects.get(name=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project named {options['project']!r}") from None
        if options["all_customers"] == (file is not None):
            raise CommandError("give either FILE or --all-customers")
        rows, errors = (
            self.every_customer(kind, project, options)
            if options["all_customers"]
            else self.from_file(kind, project, file)
        )
        for error in errors:
            self.stderr.write(str(error))
        if errors and not options["skip_invalid"]:
            raise CommandError(f"{len(errors)} invalid row(s); nothing was changed")
        if options["dry_run"]:
            self.stdout.write(f"dry run: {len(rows)} row(s) valid, {len(errors)} refused")
            return
        done = repeated = 0
        for row in tqdm(rows, desc=kind, unit="row", file=sys.stderr, mininterval=1.0):
            if self.apply(kind, project, row):
                done += 1
            else:
                repeated += 1
        verb = "granted" if kind == "slots" else "set"
        self.stdout.write(
            f"{kind}: {verb} {done}, already done {repeated}, refused {len(errors)} row(s)"
        )

    @staticmethod
    def apply(kind: str, project: Project, row: FeatureRow) -> bool:
        """Run one row; False when it was already done (a replayed grant, an unchanged set)."""
        if kind == "slots":
            granted = services.grant_capacity(project=project, actor=ACTOR, **row.request)
            return not granted.is_idempotent_replay
        result = services.set_entitlement(project=project, actor=ACTOR, **row.request)
        return result.is_created or result.old_value != result.value

    def from_file(
        self, kind: str, project: Project, file: str
    ) -> tuple[list[FeatureRow], list[RowError]]:
        source = sys.stdin.buffer if file == "-" else None
        try:
            stream = source or Path(file).open("rb")  # noqa: SIM115 (closed below)
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror}") from None
        try:
            with FILES[kind](stream) as read:
                found = list(read.rows(project))
        except ServiceError as error:
            raise CommandError(f"{error.code}: {error.details}") from None
        finally:
            if source is None:
                stream.close()
        return (
            [r for r in found if isinstance(r, FeatureRow)],
            [r for r in found if isinstance(r, RowError)],
        )

    def every_customer(
        self, kind: str, project: Project, options: dict[str, Any]
    ) -> tuple[list[FeatureRow], list[RowError]]:
        """One row per customer of the project, validated once as a request would be."""
        if kind == "slots" and not options["run_id"]:
            raise CommandError("--all-customers for slots needs --run-id (it runs once per id)")
        customers = list(
            Customer.objects.filter(project=project).order_by("id").values_list("pk", "external_id")
        )
        template = self.template(kind, options, customers[0][1] if customers else "-")
        run = hashlib.sha256(f"{project.pk}\n{options['run_id']}".encode()).hexdigest()[:24]
        rows = []
        for line, (pk, customer_id) in enumerate(customers, start=1):
            request = {**template, "customer_id": customer_id}
            if kind == "slots":  # the run and the customer name the grant: once per run
                request["idempotency_key"] = f"bulk_slots:{run}:{pk}"
            rows.append(FeatureRow(line, request))
        return rows, []

    @staticmethod
    def template(kind: str, options: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """The request every customer gets, validated by the API's serializer."""
        if kind == "slots":
            body = {
                "customer_id": customer_id,
                "wallet": options["wallet"],
                "amount": amount_value(options["amount"] or ""),
                "source": options["source"],
                "description": options["description"],
            }
            serializer = CapacityRequestSerializer
        else:
            body = {
                "customer_id": customer_id,
                "feature_key": options["feature_key"],
                "value": options["value"],
                "valid_from": options["valid_from"],
                "valid_until": options["valid_until"],
                "source": options["source"],
                "description": options["description"],
            }
            serializer = SetEntitlementRequestSerializer
        try:
            request = serializer.parse(body)
        except ServiceError as error:
            raise CommandError(f"{error.code}: {error.message} ({error.details})") from None
        request.pop("customer_id")
        return request
