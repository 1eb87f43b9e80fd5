from django.core.management.base import BaseCommand
from django.db import transaction

from customers.models import ApiKey, Project


class Command(BaseCommand):
    help = (
        "Create an API key for a project (creating the project if needed). The raw key is "
        "printed once, alone on the last line; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project name.")
        parser.add_argument("--name", default="api", help="A label for the key.")

    def handle(self, *args, project: str, name: str, **options):
        with transaction.atomic():
            owner, created = Project.objects.get_or_create(name=project)
            api_key, raw_key = ApiKey.objects.create_key(project=owner, name=name)
        if created:
            self.stderr.write(f"Created project {owner.name!r}.")
        self.stderr.write(f"Created API key {api_key.prefix}… for project {owner.name!r}.")
        self.stdout.write(raw_key)
