"""The ledger list: filters an operator asks for, and the filtered list as CSV, streamed."""

from collections.abc import Iterator

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path

from credits_project.json import format_datetime, format_decimal
from credits_project.replicas import reads_from_standby, streamed_from_standby
from credits_project.spreadsheet import SafeWriter
from ledger.admin.display import ReadOnlyAdmin, amount_column, customer_id_column, utc_column
from ledger.admin.filters import (
    ActorFilter,
    BulkGrantFilter,
    CustomerFilter,
    SinceFilter,
    UntilFilter,
    WalletFilter,
)
from ledger.models import LedgerEntry

CSV_COLUMNS = [
    "id",
    "created_at",
    "customer_id",
    "operation_type",
    "amount",
    "wallet",
    "source",
    "account_id",
    "transaction_id",
    "business_type",
    "actor",
    "description",
]


class Echo:
    """A file that hands back what is written to it, for a CSV writer to stream through."""

    def write(self, value: str) -> str:
        return value


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: entries are never edited or deleted; corrections are new entries."""

    list_display = [
        "created_at_display",
        "customer_id_display",
        "operation",
        "amount_display",
        "wallet_display",
        "transaction_id",
        "business_type",
        "actor",
        "description",
    ]
    list_filter = [
        CustomerFilter,
        "customer__project",
        "operation_type",
        WalletFilter,
        ActorFilter,
        BulkGrantFilter,
        "business_type",
        SinceFilter,
        UntilFilter,
    ]
    search_fields = ["=transaction_id"]
    search_help_text = "Exact transaction id."
    list_display_links = ["created_at_display"]
    list_select_related = ["customer", "account"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    list_per_page = 50

    amount_display = amount_column("amount")
    created_at_display = utc_column("created_at", "time")

    customer_id_display = customer_id_column

    @admin.display(description="operation", ordering="operation_type")
    def operation(self, obj: LedgerEntry) -> str:
        return obj.operation_type

    @admin.display(description="wallet")
    def wallet_display(self, obj: LedgerEntry) -> str:
        return obj.account.wallet

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv),
            name="ledger_ledgerentry_export",
        )
        return [export, *super().get_urls()]

    @reads_from_standby()
    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The list as filtered on screen, every page of it, as CSV written while it is read."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        entries = self.get_changelist_instance(request).get_queryset(request)
        writer = SafeWriter(Echo())

        def rows() -> Iterator[str]:
            yield writer.writerow(CSV_COLUMNS)
            for entry in entries.iterator(chunk_size=2000):
                yield writer.writerow(
                    [
                        entry.pk,
                        format_datetime(entry.created_at),
                        entry.customer.external_id,
                        entry.operation_type,
                        format_decimal(entry.amount),
                        entry.account.wallet,
                        entry.account.source,
                        entry.account_id,
                        entry.transaction_id or "",
                        entry.business_type,
                        entry.actor,
                        entry.description,
                    ]
                )

        response = StreamingHttpResponse(
            streamed_from_standby(rows()), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="ledger.csv"'
        return response
