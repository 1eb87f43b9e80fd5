"""The console's webhook pages: endpoints (their secret shown read-only, and only to who may
change the endpoint), and deliveries with their status, attempts, last error and response code,
and a re-send action. Support staff read both."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils import timezone

from ledger.admin.display import ConsoleAdmin, customer_id_column
from ledger.templatetags.credits import utc
from ledger.webhooks.addresses import RefusedAddress, check_endpoint_url
from ledger.webhooks.models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    """Refuses an endpoint at an address webhooks are not sent to (`addresses`), up front."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["project", "url", "event_types", "enabled", "description"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_endpoint_url(url)
        except RefusedAddress as refused:
            raise forms.ValidationError(
                f"Refused address: {refused}. Webhooks go to public addresses only."
            ) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ConsoleAdmin):
    form = WebhookEndpointForm
    list_display = ["id", "project", "url", "event_types", "enabled", "created_at"]
    list_filter = ["enabled", "project"]
    search_fields = ["url"]
    list_select_related = ["project"]
    readonly_fields = ["secret", "secret_hidden", "created_at"]
    fields = ["project", "url", "event_types", "enabled", "description", "secret", "created_at"]

    def get_fields(self, request, obj=None):
        # The secret signs deliveries: who may only read the endpoint could forge them.
        if self.has_change_permission(request, obj):
            return self.fields
        return [("secret_hidden" if name == "secret" else name) for name in self.fields]

    @admin.display(description="secret")
    def secret_hidden(self, endpoint: WebhookEndpoint) -> str:
        return "whsec_… (hidden: shown to who may change this endpoint)"


class EndpointFilter(admin.RelatedFieldListFilter):
    """Each endpoint once, with its project: one URL may serve several projects."""

    def field_choices(self, field, request, model_admin):
        endpoints = WebhookEndpoint.objects.select_related("project").order_by("url", "pk")
        return [(e.pk, f"{e.url} ({e.project.name})") for e in endpoints]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ConsoleAdmin):
    """Read-only but for the re-send action: deliveries are made and updated by the scheduler."""

    # What an operator looks for first (did it arrive, how often tried, why not) on the left,
    # where it is on screen at 1366 px beside the filters.
    list_display = [
        "status",
        "attempts",
        "last_error",  # begins with the answer's HTTP code, if any (kept on the detail page)
        "event_type",
        "event_id",
        "customer_id_display",
        "endpoint",
        "when",
    ]
    list_display_links = ["status"]
    list_filter = ["status", "event__type", ("endpoint", EndpointFilter)]
    search_fields = ["event__event_id", "customer__external_id"]
    list_select_related = ["event", "endpoint", "customer"]
    actions = ["resend"]

    customer_id_display = customer_id_column

    @admin.display(description="type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="when", ordering="next_attempt_at")
    def when(self, delivery: WebhookDelivery) -> str:
        # One column for both: a delivered one is tried no more, a pending one not yet delivered.
        if delivery.delivered_at is not None:
            return f"delivered {utc(delivery.delivered_at)}"
        if delivery.status == WebhookDelivery.Status.PENDING:
            return f"next {utc(delivery.next_attempt_at)}"
        return "given up"

    @admin.display(description="event", ordering="event__event_id")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_id  # its type has a column of its own

    def has_resend_permission(self, request) -> bool:
        # Deliveries are read-only in the admin; re-sending is for who may change them.
        return request.user.has_perm("ledger.change_webhookdelivery")

    @admin.action(description="Re-send the selected deliveries", permissions=["resend"])
    def resend(self, request, queryset: QuerySet[WebhookDelivery]) -> None:
        """Queue each again now, with a fresh retry window; the scheduler sends them (still
        after any earlier pending delivery of the same customer to the same endpoint)."""
        now = timezone.now()
        count = queryset.update(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=now,
            give_up_at=now + dt.timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            lease_expires_at=None,
            lease_token="",
        )
        messages.success(request, f"{count} deliveries queued to be sent again.")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
