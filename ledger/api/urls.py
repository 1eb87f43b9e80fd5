from django.urls import path, register_converter

from ledger.api import ledger_views, views


class PercentEncodedSegment:
    """One path segment that `RawPathMiddleware` percent-encoded; the view gets it decoded."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        from urllib.parse import unquote

        return unquote(value)

    def to_url(self, value: str) -> str:
        from urllib.parse import quote

        return quote(value, safe="")


register_converter(PercentEncodedSegment, "segment")

urlpatterns = [
    path("customers/deposit", views.DepositView.as_view(), name="deposit"),
    path("billing/deposit", views.BillingDepositView.as_view(), name="billing-deposit"),
    path("customers/<segment:customer_id>", views.CustomerView.as_view(), name="customer"),
    path(
        "customers/<segment:customer_id>/ledger",
        ledger_views.CustomerLedgerView.as_view(),
        name="customer-ledger",
    ),
    path("billing/freeze", views.FreezeView.as_view(), name="freeze"),
    path("billing/consume", views.ConsumeView.as_view(), name="consume"),
    path("billing/unfreeze", views.UnfreezeView.as_view(), name="unfreeze"),
    path("billing/deduct", views.DeductView.as_view(), name="deduct"),
    path(
        "billing/transactions/<segment:transaction_id>",
        views.TransactionView.as_view(),
        name="transaction",
    ),
    path("health", views.HealthView.as_view(), name="health"),
]
