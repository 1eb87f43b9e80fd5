"""Credit accounts and transactions: read-only lists."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from ledger.admin.display import (
    ReadOnlyAdmin,
    amount_column,
    can_act,
    customer_id_column,
    utc_column,
)
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

    customer_id_display = customer_id_column

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

    customer_id_display = customer_id_column

    def get_readonly_fields(self, request, obj=None):
        # The refund link is for operators only: support staff read.
        operator = ["refund"] if can_act(request) else []
        return [*super().get_readonly_fields(request, obj), *operator]

    @admin.display(description="refund")
    def refund(self, obj: Transaction) -> str:
        """A refund of a deduct or consumed freeze, for operators: the customer's refund
        form, with this charge filled in (it confirms each wallet before and after)."""
        if obj.state not in (Transaction.State.DEDUCTED, Transaction.State.CONSUMED):
            return "not refundable"
        if obj.refunded_amount == obj.consumed_amount:
            return "refunded in full"
        url = reverse("admin:customers_customer_credit_action", args=[obj.customer_id, "refund"])
        return format_html(
            '<a href="{}?{}">Refund…</a>', url, urlencode({"charge": obj.transaction_id})
        )
