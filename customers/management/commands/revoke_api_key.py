from django.core.management.base import BaseCommand, CommandError

from customers.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key by its public prefix; the next request with it gets 401."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's prefix: the part before the dot.")

    def handle(self, *args, prefix: str, **options):
        api_key = ApiKey.objects.filter(prefix=prefix.split(".", 1)[0]).first()
        if api_key is None:
            raise CommandError(f"No API key with prefix {prefix!r}.")
        if api_key.revoked:
            self.stdout.write(f"API key {api_key.prefix} was already revoked.")
            return
        api_key.revoke()
        self.stdout.write(f"Revoked API key {api_key.prefix} of project {api_key.project}.")
