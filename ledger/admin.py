from django.contrib import admin

from ledger.models import CreditAccount, LedgerEntry, Transaction


class ReadOnlyAdmin(admin.ModelAdmin):
    """Balances change only through the services; the admin shows, it does not edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "wallet",
        "source",
        "total",
        "used",
        "frozen",
        "starts_at",
        "expires_at",
        "created_at",
    ]
    list_filter = ["wallet", "customer__project"]
    search_fields = ["customer__external_id"]
    list_select_related = ["customer"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "transaction_id",
        "kind",
        "state",
        "customer",
        "amount",
        "settled_by",
        "created_at",
        "settled_at",
    ]
    list_filter = ["kind", "state", "project"]
    search_fields = ["transaction_id", "customer__external_id"]
    list_select_related = ["customer"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: entries are never edited or deleted; corrections are new entries."""

    list_display = [
        "id",
        "created_at",
        "customer",
        "operation_type",
        "amount",
        "account",
        "transaction_id",
        "business_type",
        "actor",
    ]
    list_filter = ["operation_type", "business_type"]
    search_fields = ["customer__external_id", "transaction_id"]
    list_select_related = ["customer", "account"]
