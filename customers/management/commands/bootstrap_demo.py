import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from customers.models import ApiKey, Project


class Command(BaseCommand):
    help = (
        "First run only: create a demo project, an API key and an admin login, and print them. "
        "Later runs change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, project: str, username: str, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "Already set up. New API key: .venv/bin/python manage.py create_api_key "
                "--project NAME; new admin login: .venv/bin/python manage.py createsuperuser."
            )
            return
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            owner, _ = Project.objects.get_or_create(name=project)
            _, raw_key = ApiKey.objects.create_key(project=owner, name="demo")
            User.objects.create_superuser(username=username, email="", password=password)
        # Where `make run` is about to serve (its HOST and PORT), so the link works as printed.
        address = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "First run: created a demo project, an API key and an admin login.",
                    f"  project:  {owner.name}",
                    f"  API key:  {raw_key}   (shown once; only its hash is stored)",
                    f"  admin:    http://{address}/admin/  user {username!r}, "
                    f"password {password!r}",
                    "",
                ]
            )
        )
