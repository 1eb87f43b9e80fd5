"""Shared pieces of the console's model admins."""

import datetime as dt
from decimal import Decimal

from django.contrib import admin
from django.http import HttpRequest
from django.utils.text import capfirst

from ledger.templatetags.credits import credits, utc, visible_id

ACT_PERMISSION = "ledger.act_on_credits"


def can_act(request: HttpRequest) -> bool:
    """Operators (and superusers) may change credits; support staff only read."""
    return request.user.is_active and request.user.has_perm(ACT_PERMISSION)


class ConsoleAdmin(admin.ModelAdmin):
    """A list styled for the console (`ledger/console.css`), titled by what it lists (not
    Django's "Select ledger entry to view")."""

    class Media:
        css = {"all": ["ledger/console.css"]}

    def changelist_view(self, request, extra_context=None):
        title = capfirst(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title, **(extra_context or {})})


class ReadOnlyAdmin(ConsoleAdmin):
    """Balances change only through the services; the admin shows, it does not edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.display(description="customer", ordering="customer__external_id")
def customer_id_column(self, obj) -> str:
    """A list column of the row's customer id, its invisible characters shown."""
    return visible_id(obj.customer.external_id)


def amount_column(field: str, label: str | None = None):
    """A list column showing an amount in plain decimals."""

    @admin.display(description=label or field, ordering=field)
    def column(self, obj) -> str:
        value: Decimal | None = getattr(obj, field)
        return credits(value)

    column.__name__ = f"{field}_display"
    return column


def utc_column(field: str, label: str | None = None):
    """A list column showing an instant with its zone."""

    @admin.display(description=label or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        value: dt.datetime | None = getattr(obj, field)
        return utc(value)

    column.__name__ = f"{field}_display"
    return column
