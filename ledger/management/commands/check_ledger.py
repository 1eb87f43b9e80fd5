from django.core.management.base import BaseCommand, CommandError

from customers.models import Project
from ledger.selectors.consistency import check_ledger


class Command(BaseCommand):
    help = (
        "Replay the ledger and compare it with every credit account's total, used and frozen "
        "and the invariants. Exits 1 and lists the accounts that differ when anything is off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="Check only this project.")

    def handle(self, *args, project: str | None, **options):
        scope = None
        if project is not None:
            scope = Project.objects.filter(name=project).first()
            if scope is None:
                raise CommandError(f"No project named {project!r}.")
        report = check_ledger(project=scope)
        for problem in report.problems:
            self.stdout.write(problem)
        self.stdout.write(
            f"checked {report.accounts} account(s) against {report.entries} ledger entries: "
            + ("consistent" if report.ok else f"{len(report.problems)} problem(s)")
        )
        if not report.ok:
            raise SystemExit(1)
