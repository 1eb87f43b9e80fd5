"""What operators did: every console action, who made it and why."""

from django.contrib import admin

from ledger.admin.display import ReadOnlyAdmin, amount_column, customer_id_column, utc_column
from ledger.admin.filters import ActorFilter, CustomerFilter, SinceFilter, UntilFilter
from ledger.models import OperatorAction


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at_display",
        "actor",
        "action",
        "customer_id_display",
        "amount_display",
        "transaction_id",
        "reason",
    ]
    list_filter = [
        CustomerFilter,
        "customer__project",
        "action",
        ActorFilter,
        SinceFilter,
        UntilFilter,
    ]
    search_fields = ["=transaction_id"]
    search_help_text = "Exact transaction id."
    list_select_related = ["customer"]
    ordering = ["-created_at", "-id"]

    amount_display = amount_column("amount")
    created_at_display = utc_column("created_at", "time")

    customer_id_display = customer_id_column
