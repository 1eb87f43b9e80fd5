"""Credit accounts and transactions: read-only lists."""

from django.contrib import admin

from ledger.admin.display import ReadOnlyAdmin, amount_column, utc_column
from ledger.models import CreditAccount, Transaction


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer_id_display",
        "wallet",
        "source",
        "total_display",
        "used_display",
        "frozen_display",
        "available_display",
        "starts_at_display",
        "expires_at_display",
        "created_at_display",
    ]
    list_filter = ["wallet", "customer__project"]
    search_fields = ["=customer__external_id"]
    search_help_text = "Exact customer id."
    list_select_related = ["customer"]
    show_full_result_count = False

    total_display = amount_column("total")
    used_display = amount_column("used")
    frozen_display = amount_column("frozen")
    starts_at_display = utc_column("starts_at", "starts")
    expires_at_display = utc_column("expires_at", "expires")
    created_at_display = utc_column("created_at", "created")

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_id_display(self, obj: CreditAccount) -> str:
        return obj.customer.external_id

    @admin.display(description="available")
    def available_display(self, obj: CreditAccount) -> str:
        return amount_column("available")(self, obj)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "transaction_id",
        "kind",
        "state",
        "customer_id_display",
        "amount_display",
        "settled_by",
        "created_at_display",
        "settled_at_display",
    ]
    list_filter = ["kind", "state", "project"]
    search_fields = ["=transaction_id", "=customer__external_id"]
    search_help_text = "Exact transaction id or customer id."
    list_select_related = ["customer"]
    show_full_result_count = False

    amount_display = amount_column("amount")
    created_at_display = utc_column("created_at", "created")
    settled_at_display = utc_column("settled_at", "settled")

    @admin.display(description="customer", ordering="customer__external_id")
    def customer_id_display(self, obj: Transaction) -> str:
        return obj.customer.external_id
