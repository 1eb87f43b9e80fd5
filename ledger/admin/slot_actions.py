"""The operator's slot and entitlement actions on a customer: grant and revoke capacity,
release a holding, set and remove an entitlement. Each validates by the API's request
serializer and runs the API's service, like the credit actions (`actions`); they change no
credits, so their confirmation shows what they will do, not a balance."""

from decimal import Decimal
from typing import Any

from django import forms

from credits_project.errors import EntitlementNotFound, SlotHoldingNotFound
from ledger import services
from ledger.admin.actions import UTC_HELP, ActionForm, Applied, amount_of, instant_of
from ledger.contract.entitlements import (
    RemoveEntitlementRequestSerializer,
    SetEntitlementRequestSerializer,
)
from ledger.contract.slots import CapacityRequestSerializer, ReleaseRequestSerializer
from ledger.models import OperatorAction
from ledger.templatetags.credits import utc


class FeatureActionForm(ActionForm):
    shows_balances = False

    def target(self) -> dict[str, Any]:
        """The service's arguments besides the request (which names the customer)."""
        return {"project": self.customer.project}

    def body(self, data: dict[str, Any], *names: str) -> dict[str, Any]:
        """The API's request body from the form's fields `names` (empty ones left out)."""
        given = {name: data.get(name) for name in names}
        return {
            "customer_id": self.customer.external_id,
            **{name: value for name, value in given.items() if value not in (None, "")},
        }


class SlotCapacityForm(FeatureActionForm):
    wallet = forms.CharField(max_length=64)
    source = forms.CharField(max_length=64, initial="default")
    amount = forms.CharField(max_length=12, help_text="Slots, a whole number.")

    def parse(self, data):
        body = self.body(data, "wallet", "source")
        body["amount"] = amount_of(data.get("amount"))
        # The form's token is the change's idempotency key: a second submit replays it.
        body["idempotency_key"] = self.transaction_id
        body["description"] = data.get("reason")
        return CapacityRequestSerializer.parse(body)

    def summary(self):
        return [
            ("Slots", str(self.request["amount"])),
            ("Pool", f"{self.request['wallet']} / {self.request['source']}"),
            ("Reason", self.cleaned_data["reason"]),
        ]


class SlotGrantForm(SlotCapacityForm):
    action = OperatorAction.Action.SLOT_GRANT
    title = "Grant slot capacity"

    def run(self, *, actor):
        services.grant_capacity(**self.target(), actor=actor, **self.request)
        return Applied(Decimal(self.request["amount"]), self.transaction_id)


class SlotRevokeForm(SlotCapacityForm):
    action = OperatorAction.Action.SLOT_REVOKE
    title = "Revoke slot capacity"

    def run(self, *, actor):
        services.revoke_capacity(**self.target(), actor=actor, **self.request)
        return Applied(Decimal(self.request["amount"]), self.transaction_id)


class SlotReleaseForm(FeatureActionForm):
    action = OperatorAction.Action.SLOT_RELEASE
    title = "Release a slot holding"

    wallet = forms.CharField(max_length=64)
    resource_id = forms.CharField(max_length=255, label="Resource id")

    def parse(self, data):
        return ReleaseRequestSerializer.parse(self.body(data, "wallet", "resource_id"))

    def run(self, *, actor):
        released = services.release(**self.target(), actor=actor, **self.request)
        if released.is_idempotent_replay:  # released meanwhile: nothing for this action to do
            raise SlotHoldingNotFound(
                {"wallet": self.request["wallet"], "resource_id": self.request["resource_id"]}
            )
        return Applied(None, self.request["resource_id"])

    def summary(self):
        return [
            ("Resource", self.request["resource_id"]),
            ("Wallet", self.request["wallet"]),
            ("Reason", self.cleaned_data["reason"]),
        ]


class EntitlementSetForm(FeatureActionForm):
    action = OperatorAction.Action.FEATURE_SET
    title = "Set an entitlement"

    feature_key = forms.CharField(max_length=255, label="Feature key")
    value = forms.CharField(max_length=4096)
    valid_from = forms.CharField(required=False, label="Valid from", help_text=UTC_HELP)
    valid_until = forms.CharField(required=False, label="Valid until", help_text=UTC_HELP)
    source = forms.CharField(max_length=64, initial="default")

    def parse(self, data):
        body = self.body(data, "feature_key", "value", "source")
        body["valid_from"] = instant_of(data.get("valid_from"))
        body["valid_until"] = instant_of(data.get("valid_until"))
        body["description"] = data.get("reason")
        return SetEntitlementRequestSerializer.parse(body)

    def run(self, *, actor):
        services.set_entitlement(**self.target(), actor=actor, **self.request)
        return Applied(None, self.request["feature_key"])

    def summary(self):
        window = f"{utc(self.request['valid_from']) or 'now'} to "
        window += utc(self.request["valid_until"]) or "for good"
        return [
            ("Feature", self.request["feature_key"]),
            ("Value", self.request["value"]),
            ("Valid", window),
            ("Source", self.request["source"]),
            ("Reason", self.cleaned_data["reason"]),
        ]


class EntitlementRemoveForm(FeatureActionForm):
    action = OperatorAction.Action.FEATURE_REMOVE
    title = "Remove an entitlement"

    feature_key = forms.CharField(max_length=255, label="Feature key")

    def parse(self, data):
        return RemoveEntitlementRequestSerializer.parse(self.body(data, "feature_key"))

    def run(self, *, actor):
        removed = services.remove_entitlement(**self.target(), actor=actor, **self.request)
        if not removed.removed:
            raise EntitlementNotFound({"feature_key": self.request["feature_key"]})
        return Applied(None, self.request["feature_key"])

    def summary(self):
        return [("Feature", self.request["feature_key"]), ("Reason", self.cleaned_data["reason"])]


FEATURE_FORMS: dict[str, type[ActionForm]] = {
    "slot-grant": SlotGrantForm,
    "slot-revoke": SlotRevokeForm,
    "slot-release": SlotReleaseForm,
    "entitlement-set": EntitlementSetForm,
    "entitlement-remove": EntitlementRemoveForm,
}
