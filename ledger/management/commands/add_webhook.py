from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from customers.models import Project
from ledger.webhooks.addresses import RefusedAddress, check_endpoint_url
from ledger.webhooks.models import EventType, WebhookEndpoint


class Command(BaseCommand):
    help = (
        "Add a webhook endpoint to a project. Prints the endpoint's signing secret alone on "
        "the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="The project's name.")
        parser.add_argument("--url", required=True, help="Where events are POSTed (http/https).")
        parser.add_argument(
            "--events",
            default="",
            help="Comma-separated event types to send (default: all). Known: "
            + ", ".join(EventType.values),
        )

    def handle(self, *args, project: str, url: str, events: str, **options):
        try:
            owner = Project.objects.get(name=project)
        except Project.DoesNotExist:
            raise CommandError(f"no project named {project!r}") from None
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise CommandError(f"not an http(s) URL: {url!r}") from None
        try:
            check_endpoint_url(url)
        except RefusedAddress as refused:
            raise CommandError(
                f"refused address: {refused}; webhooks go to public addresses only "
                "(WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true allows others, for development)"
            ) from None
        event_types = [name.strip() for name in events.split(",") if name.strip()]
        unknown = sorted(set(event_types) - set(EventType.values))
        if unknown:
            raise CommandError(
                f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(EventType.values)}"
            )
        endpoint = WebhookEndpoint.objects.create(
            project=owner, url=url, event_types=list(dict.fromkeys(event_types))
        )
        takes = ", ".join(endpoint.event_types) or "all events"
        self.stdout.write(f"Webhook endpoint {endpoint.pk} for {owner.name}: {url} ({takes})")
        self.stdout.write("Signing secret (shown once here; also in the console):")
        self.stdout.write(endpoint.secret)
