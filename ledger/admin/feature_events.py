"""The slot and entitlement histories: every event, filtered as the ledger list is."""

from django.contrib import admin

from ledger.admin.display import ReadOnlyAdmin, utc_column
from ledger.admin.filters import ActorFilter, CustomerFilter, SinceFilter, UntilFilter
from ledger.models import EntitlementEvent, SlotEvent

FILTERS = [CustomerFilter, "customer__project", "type", ActorFilter, SinceFilter, UntilFilter]


class EventAdmin(ReadOnlyAdmin):
    """Append-only, newest first; the customer shown by its id."""

    list_filter = FILTERS
    list_select_related = ["customer"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    list_per_page = 50

    created_at_display = utc_column("created_at", "time")

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_id_display(self, obj) -> str:
        return obj.customer.external_id


@admin.register(SlotEvent)
class SlotEventAdmin(EventAdmin):
    list_display = [
        "created_at_display",
        "customer_id_display",
        "type",
        "amount",
        "wallet",
        "source",
        "resource_id",
        "idempotency_key",
        "actor",
        "description",
    ]
    search_fields = ["=resource_id", "=idempotency_key"]
    search_help_text = "Exact resource id or idempotency key."


@admin.register(EntitlementEvent)
class EntitlementEventAdmin(EventAdmin):
    list_display = [
        "created_at_display",
        "customer_id_display",
        "type",
        "feature_key",
        "old_value",
        "new_value",
        "source",
        "actor",
        "description",
    ]
    search_fields = ["=feature_key"]
    search_help_text = "Exact feature key."
