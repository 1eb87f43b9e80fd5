"""List filters the admin lacks: a typed exact value, and a date range."""

import datetime as dt

from django.contrib import admin
from django.db.models import Q, QuerySet

from customers.models import Customer


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a box, matched exactly against `lookup`."""

    template = "admin/ledger/input_filter.html"
    lookup: str

    def lookups(self, request, model_admin):
        return [("", "")]  # shown as a text box, not as choices

    def value(self) -> str | None:
        """What was typed, without NUL characters (no database column can hold one)."""
        value = super().value()
        return value.replace("\x00", "") if value else value

    def has_output(self) -> bool:
        return True

    def choices(self, changelist):
        other = []
        for name, values in changelist.get_filters_params().items():
            if name != self.parameter_name:
                for value in values if isinstance(values, list) else [values]:
                    other.append((name, value))
        yield {"other_params": other, "value": self.value() or ""}

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.lookup: value}) if value else queryset


class CustomerFilter(InputFilter):
    title = "customer id (exact)"
    parameter_name = "customer"

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        # The customers' keys first, so the list reads a customer's own index (`entry_walk`)
        # in order instead of joining every entry to its customer.
        keys = list(Customer.objects.filter(external_id=value).values_list("pk", flat=True))
        return queryset.filter(customer_id__in=keys)


class WalletFilter(InputFilter):
    title = "wallet"
    parameter_name = "wallet"
    lookup = "account__wallet"


class ActorFilter(InputFilter):
    title = "actor (exact, e.g. staff:alice)"
    parameter_name = "actor"
    lookup = "actor"


class BulkGrantFilter(InputFilter):
    """The entries one bulk grant wrote: each notes its run's reference and batch
    (`[bulk_grant:1a2b3c4d5e6f batch 2]`, `bulk.noted`)."""

    title = "bulk grant (its reference)"
    parameter_name = "bulk_grant"

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(description__contains=f"[{value} batch ") if value else queryset


def parse_day(text: str | None) -> dt.datetime | None:
    """The start (00:00 UTC) of a `YYYY-MM-DD` day; None when absent or not a date."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text or ""), dt.time(), dt.UTC)
    except ValueError:
        return None


class SinceFilter(InputFilter):
    title = "from day (UTC, YYYY-MM-DD)"
    parameter_name = "since"

    def queryset(self, request, queryset):
        start = parse_day(self.value())
        return queryset.filter(created_at__gte=start) if start else queryset


class UntilFilter(InputFilter):
    title = "to day, inclusive (UTC, YYYY-MM-DD)"
    parameter_name = "until"

    def queryset(self, request, queryset):
        end = parse_day(self.value())
        if end is None or end.date() == dt.date.max:  # the last day there is: no bound
            return queryset
        return queryset.filter(Q(created_at__lt=end + dt.timedelta(days=1)))
