"""The customer page: everything about a customer's credits, and the operator's actions.

The page reads through `ledger.selectors` (the balance exactly as the API answers it, the rest
from `selectors.console`); the actions go through `ledger.admin.actions`, whose forms call the
services. Support staff see the page; only operators (`act_on_credits`) see and reach actions.
"""

import datetime as dt
from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from credits_project.errors import ServiceError
from credits_project.replicas import reads_from_standby
from customers.admin import CustomerAdmin
from customers.models import Customer
from ledger.admin.actions import (
    FORMS,
    ActionForm,
    AlreadyApplied,
    Effect,
    apply,
    new_token,
    preview,
)
from ledger.admin.charts import line_chart
from ledger.admin.display import can_act
from ledger.admin.slot_actions import FEATURE_FORMS
from ledger.models import CreditLine
from ledger.selectors import console, console_features
from ledger.selectors.balances import customer_balance
from ledger.selectors.schedules import schedules_of
from ledger.templatetags.credits import credits, utc, visible_id, visible_text

admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerCreditsAdmin(CustomerAdmin):
    list_display = ["customer_id", "project", "name", "email", "available", "created"]
    search_fields = ["=external_id", "=email"]
    search_help_text = "Exact customer id or email."
    list_select_related = ["project"]
    show_full_result_count = False

    class Media:
        css = {"all": ["ledger/console.css"]}

    readonly_fields = ["project", "customer_id", "created"]
    exclude = ["created_at", "external_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A customer is created by its first deposit (the API, a bulk grant), under the id the
        # client chose; a customer made here would have no project, id or credits to show.
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A customer's ledger is append-only and keeps it (the delete could only fail).
        return False

    def get_queryset(self, request: HttpRequest):
        # Each listed customer's balance as one correlated sum in the list's own statement.
        return (
            super()
            .get_queryset(request)
            .annotate(available_now=console.available_subquery(timezone.now()))
        )

    @admin.display(description="customer id", ordering="external_id")
    def customer_id(self, customer: Customer) -> str:
        return visible_id(customer.external_id)

    @admin.display(description="available")
    def available(self, customer: Customer) -> str:
        return credits(customer.available_now or Decimal(0))

    @admin.display(description="created", ordering="created_at")
    def created(self, customer: Customer) -> str:
        return utc(customer.created_at)

    # --- the page ------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if customer is not None:
            context.update(credits_context(customer, timezone.now()))
            context["can_act"] = can_act(request)
            context["subtitle"] = visible_text(customer.external_id)
        return super().change_view(request, object_id, form_url, context)

    # --- the actions ---------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view(self.credit_action_view)
        return [
            path(
                "<int:object_id>/credits/<str:action>/",
                view,
                name="customers_customer_credit_action",
            ),
            *super().get_urls(),
        ]

    def credit_action_view(self, request: HttpRequest, object_id: int, action: str):
        """Form → confirmation (the effect, computed by running the action and rolling it
        back) → the action, once; modelled on the admin's own `delete_selected`."""
        if not (self.has_view_permission(request) and can_act(request)):
            raise PermissionDenied
        form_class = FORMS.get(action) or FEATURE_FORMS.get(action)
        if form_class is None:
            raise Http404(f"no action {action!r}")
        customer = get_object_or_404(
            self.get_queryset(request).select_related("project"), pk=object_id
        )
        page = reverse("admin:customers_customer_change", args=[customer.pk])
        now = timezone.now()
        actor = f"staff:{request.user.get_username()}"
        if request.method != "POST":
            initial = {"token": new_token(), **request.GET.dict()}
            form = form_class(initial=initial, customer=customer, now=now)
            return self.render_action(request, customer, form)

        form = form_class(request.POST, customer=customer, now=now)
        if not form.is_valid():
            return self.render_action(request, customer, form)
        try:
            if request.POST.get("confirm") != "yes":
                effect = preview(form, actor=actor)
                return self.render_action(request, customer, form, effect=effect)
            record = apply(form, actor=actor)
        except AlreadyApplied:
            messages.info(request, "This form was already submitted; it was applied once.")
            return HttpResponseRedirect(page)
        except ServiceError as error:
            form.add_error(None, error.message)
            return self.render_action(request, customer, form)
        self.log_change(request, customer, f"{record} ({record.transaction_id}): {record.reason}")
        messages.success(request, f"{form.title}: done ({record.transaction_id}).")
        return HttpResponseRedirect(page)

    def render_action(
        self,
        request: HttpRequest,
        customer: Customer,
        form: ActionForm,
        effect: Effect | None = None,
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": customer,
            "title": f"{form.title} for {visible_text(customer.external_id)}",
            "form": form,
            "effect": effect,
            "summary": form.summary() if effect is not None else None,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/customers/customer/credit_action.html", context)


def credits_context(customer: Customer, now: dt.datetime) -> dict:
    """Everything the customer page shows about credits, in a fixed number of statements."""
    balance = customer_balance(customer.project, customer.external_id, at=now)
    lines = CreditLine.objects.of(customer)
    # The chart is of credits: a wallet's available less its line's headroom.
    headroom = {line.wallet: line.headroom for line in lines if line.wallet}
    current = {
        name: wallet.available - headroom.get(name, 0) for name, wallet in balance.wallets.items()
    }
    with reads_from_standby():  # the chart: the customer's entries of 90 days
        history = console.available_history(customer, at=now, current=current)
    freezes = console.open_freezes(customer)
    project = customer.project_id
    of_customer = urlencode(
        {"customer": customer.external_id, "customer__project__id__exact": project}
    )
    return {
        "now": now,
        "balance": balance.balance,
        "lines": lines,
        "breakdown": console.wallet_breakdown(customer, at=now),
        "accounts": console.accounts_in_order(customer),
        "account_count": console.account_count(customer),
        "freezes": [(freeze, freeze.age(now)) for freeze in freezes],
        "freeze_count": console.open_freeze_count(customer)
        if len(freezes) == console.FREEZES_SHOWN
        else len(freezes),
        "entries": console.latest_entries(customer),
        "actions": console.latest_actions(customer),
        "schedules": schedules_of(customer),
        "pools": console_features.pools_with_holdings(customer, at=now),
        "entitlements": console_features.entitlements_at(customer, at=now),
        "slot_events": console_features.latest_slot_events(customer),
        "entitlement_events": console_features.latest_entitlement_events(customer),
        "history": history,
        "chart": line_chart(history, title="Available credits per wallet, last 90 days (UTC)"),
        "ledger_url": reverse("admin:ledger_ledgerentry_changelist") + "?" + of_customer,
        "audit_url": reverse("admin:ledger_operatoraction_changelist") + "?" + of_customer,
        "slot_events_url": reverse("admin:ledger_slotevent_changelist") + "?" + of_customer,
        "entitlement_events_url": reverse("admin:ledger_entitlementevent_changelist")
        + "?"
        + of_customer,
        "accounts_url": reverse("admin:ledger_creditaccount_changelist")
        + "?"
        + urlencode({"q": customer.external_id, "customer__project__id__exact": project}),
    }
