from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from customers.models import ApiKey, Customer, Project
from ledger.contract.forms import validate_by_contract
from ledger.contract.requests import CustomerProfileSerializer, ProjectNoticesSerializer

# The library's own key model is unused: keys here belong to a project.
admin.site.unregister(APIKey)


class ProjectForm(forms.ModelForm):
    """Validates the notice settings as the API validates an amount and a wallet name."""

    # A notice further ahead than ten years is none: and a day count past what a date can
    # hold would stop the scheduler's notices.
    expiring_notice_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        help_text=Project._meta.get_field("expiring_notice_days").help_text,
    )

    class Meta:
        model = Project
        fields = [
            "name",
            "created_at",
            "low_balance_threshold",
            "low_balance_wallet",
            "expiring_notice_days",
        ]

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors:
            notices = ["low_balance_threshold", "low_balance_wallet"]
            validate_by_contract(self, ProjectNoticesSerializer, {f: data[f] for f in notices})
        return data


class CustomerForm(forms.ModelForm):
    """Saves only a profile the API would take from a deposit (`CustomerProfileSerializer`),
    so that the API can always render it."""

    class Meta:
        model = Customer
        fields = ["name", "email", "metadata"]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        if data.get("metadata") is None:  # left empty: no metadata, as a deposit without
            data["metadata"] = {}
        validate_by_contract(
            self, CustomerProfileSerializer, {f: data.get(f) for f in ("name", "email", "metadata")}
        )
        return data


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ["name", "created_at"]
    search_fields = ["name"]

    def has_delete_permission(self, request, obj=None):
        # A project's customers, keys and ledger are kept (PROTECT): only an empty project
        # can be deleted, so no other shows a Delete button that can only fail.
        if obj is not None and (obj.customers.exists() or obj.api_keys.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Creating a key shows the raw key once, in a message; only its hash is stored."""

    list_display = ["prefix", "name", "project", "created", "last_used_at", "revoked"]
    list_filter = ["project", "revoked"]
    search_fields = ["name", "prefix", "project__name"]
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None:
            fields = (*fields, "project")
        return (*fields, "revoked_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change and obj.revoked and not obj.revoked_at:
            from django.utils import timezone

            obj.revoked_at = timezone.now()
        super().save_model(request, obj, form, change)

    # Revoking changes a key: only who may change keys is offered (and may run) the action.
    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        """Revoke each key at once, each written to the admin history with who revoked it."""
        revoked = 0
        for api_key in queryset:
            if api_key.revoked:
                continue
            api_key.revoke()
            self.log_change(request, api_key, "Revoked the API key.")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["external_id", "project", "name", "email", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id", "name", "email"]
    readonly_fields = ["project", "external_id", "created_at"]
