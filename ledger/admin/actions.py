"""The operator's actions on a customer: one form each, validated by the API's own request
serializers and carried out by the API's own service functions.

Every form carries a `token` made when it is first shown. It names the action: the grant's
idempotency key and the deduct's transaction id derive from it, and the audit row stores it
(unique), so submitting one form twice applies it once.
"""

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django import forms
from django.db import IntegrityError, transaction
from django.utils import timezone

from credits_project.errors import InvalidAmount, InvalidCreditLimit, ServiceError
from customers.models import Customer
from ledger import services
from ledger.contract.forms import add_contract_error
from ledger.contract.requests import (
    ConsumeRequestSerializer,
    CreditLimitRequestSerializer,
    DeductRequestSerializer,
    DepositRequestSerializer,
    RefundRequestSerializer,
    UnfreezeRequestSerializer,
    VoidRequestSerializer,
)
from ledger.contract.schedules import (
    UNSET,
    ScheduleCancelRequestSerializer,
    ScheduleRequestSerializer,
    ScheduleUpdateRequestSerializer,
)
from ledger.models import BusinessType, OperatorAction, Transaction
from ledger.models.transactions import CHARGE_KINDS
from ledger.periods import PERIODS
from ledger.selectors.balances import customer_balance
from ledger.selectors.console import expirable_accounts, voidable_accounts
from ledger.selectors.schedules import active_schedules
from ledger.templatetags.credits import credits, utc

UTC_HELP = "UTC, e.g. 2027-01-31 00:00 (an offset such as +02:00 may be given)."


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Applied:
    """What an action did, for its audit row."""

    amount: Decimal | None
    transaction_id: str


class ActionForm(forms.Form):
    """Validates like the API (its serializer raises the API's errors, shown on the fields
    they name) and runs the service the API runs."""

    action: ClassVar[str]
    title: ClassVar[str]
    # Whether the confirmation shows the balance per wallet before and after (the slot and
    # entitlement actions change no credits).
    shows_balances: ClassVar[bool] = True
    # The API's field names, where they differ from the form's.
    api_fields: ClassVar[dict[str, str]] = {"description": "reason"}

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=1000,
        help_text="Required; recorded with the action (and on the ledger entry where it has one).",
    )

    def __init__(self, *args: Any, customer: Customer, now: dt.datetime, **kwargs: Any):
        self.customer, self.now = customer, now
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.request = self.parse(data)
        except ServiceError as error:
            add_contract_error(self, error, self.api_fields)
        return data

    def parse(self, data: dict[str, Any]) -> dict[str, Any]:
        """The API's validated request for this form's data."""
        raise NotImplementedError

    def run(self, *, actor: str) -> Applied:
        """Carry the action out through the services (in the caller's transaction)."""
        raise NotImplementedError

    def summary(self) -> list[tuple[str, str]]:
        """What the confirmation step says will be done."""
        raise NotImplementedError

    @property
    def transaction_id(self) -> str:
        return f"console-{self.cleaned_data['token']}"


def amount_of(text: str | None) -> Decimal | int | None:
    """A typed amount as the API's JSON parser would read it: exact, never a float."""
    if text in (None, ""):
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidAmount("amount") from None
    if not value.is_finite():
        raise InvalidAmount("amount")
    return value


def instant_of(text: str | None) -> str | None:
    """A typed instant for the API's field: UTC unless an offset is given."""
    if not text:
        return None
    text = text.strip().replace(" ", "T", 1)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # the API's field rejects it with its own error
    return text if parsed.tzinfo else f"{text}+00:00"


class GrantForm(ActionForm):
    action = OperatorAction.Action.GRANT
    title = "Grant credits"

    amount = forms.CharField(max_length=40)
    wallet = forms.CharField(max_length=64, initial="default")
    source = forms.CharField(max_length=64, initial="default")
    starts_at = forms.CharField(required=False, label="Starts at", help_text=UTC_HELP)
    expires_at = forms.CharField(required=False, label="Expires at", help_text=UTC_HELP)
    repays_debt = forms.BooleanField(
        required=False,
        initial=True,
        label="Pays debts first",
        help_text="The credits first pay what the customer owes on its credit lines in this "
        "wallet; clear it for a grant that should not pay for usage.",
    )
    field_order = ["amount", "wallet", "source", "starts_at", "expires_at", "repays_debt", "reason"]

    def parse(self, data):
        return DepositRequestSerializer.parse(
            {
                "customer_id": self.customer.external_id,
                "amount": amount_of(data["amount"]),
                "wallet": data["wallet"],
                "source": data["source"],
                "starts_at": instant_of(data["starts_at"]),
                "expires_at": instant_of(data["expires_at"]),
                "idempotency_key": self.transaction_id,
                "description": data["reason"],
                "business_type": BusinessType.ADMIN_GRANT,
                "repays_debt": data["repays_debt"],
            }
        )

    def run(self, *, actor):
        request = dict(self.request)
        for profile_field in ("name", "email", "metadata"):
            request.pop(profile_field)
        result = services.deposit(project=self.customer.project, actor=actor, **request)
        return Applied(result.added_amount, self.transaction_id)

    def summary(self):
        r = self.request
        return [
            ("Amount", credits(r["amount"])),
            ("Wallet", r["wallet"]),
            ("Source", r["source"]),
            ("Starts", utc(r["starts_at"]) or "at once"),
            ("Expires", utc(r["expires_at"]) or "never"),
            ("Business type", BusinessType.ADMIN_GRANT),
            ("Pays debts first", "yes" if r["repays_debt"] else "no"),
            ("Reason", r["description"]),
        ]


class DeductForm(ActionForm):
    action = OperatorAction.Action.DEDUCT
    title = "Deduct credits (a correction)"

    amount = forms.CharField(max_length=40)
    wallet = forms.CharField(
        max_length=64, required=False, help_text="Only from this wallet; empty for any."
    )
    field_order = ["amount", "wallet", "reason"]

    def parse(self, data):
        return DeductRequestSerializer.parse(
            {
                "customer_id": self.customer.external_id,
                "transaction_id": self.transaction_id,
                "amount": amount_of(data["amount"]),
                "wallet": data["wallet"] or None,
                "description": data["reason"],
            }
        )

    def run(self, *, actor):
        result = services.deduct(project=self.customer.project, actor=actor, **self.request)
        return Applied(result.deducted_amount, self.transaction_id)

    def summary(self):
        r = self.request
        return [
            ("Amount", credits(r["amount"])),
            ("Wallets", ", ".join(r["wallets"]) if r["wallets"] else "any"),
            ("Transaction id", r["transaction_id"]),
            ("Reason", r["description"]),
        ]


class FreezeForm(ActionForm):
    """A form about one of the customer's open freezes."""

    freeze = forms.CharField(max_length=255, label="Freeze (transaction id)")

    def clean_freeze(self) -> str:
        transaction_id = self.cleaned_data["freeze"]
        if not Transaction.objects.filter(
            customer=self.customer, kind=Transaction.Kind.FREEZE, transaction_id=transaction_id
        ).exists():
            raise forms.ValidationError("This customer has no freeze with this transaction id.")
        return transaction_id

    @property
    def transaction_id(self) -> str:
        return self.cleaned_data["freeze"]


class UnfreezeForm(FreezeForm):
    action = OperatorAction.Action.UNFREEZE
    title = "Release a freeze"
    field_order = ["freeze", "reason"]

    def parse(self, data):
        return UnfreezeRequestSerializer.parse({"transaction_id": data["freeze"]})

    def run(self, *, actor):
        result = services.unfreeze(project=self.customer.project, actor=actor, **self.request)
        return Applied(result.unfrozen_amount, self.transaction_id)

    def summary(self):
        return [("Freeze", self.transaction_id), ("Reason", self.cleaned_data["reason"])]


class ConsumeForm(FreezeForm):
    action = OperatorAction.Action.CONSUME
    title = "Settle a freeze"
    actual_amount = forms.CharField(
        max_length=40, required=False, help_text="Empty to consume the whole frozen amount."
    )
    field_order = ["freeze", "actual_amount", "reason"]

    def parse(self, data):
        amount = data["actual_amount"]
        try:
            actual = amount_of(amount)
        except InvalidAmount:
            raise InvalidAmount("actual_amount") from None
        return ConsumeRequestSerializer.parse(
            {"transaction_id": data["freeze"], "actual_amount": actual}
        )

    def run(self, *, actor):
        result = services.consume(project=self.customer.project, actor=actor, **self.request)
        return Applied(result.consumed_amount, self.transaction_id)

    def summary(self):
        actual = self.request["actual_amount"]
        return [
            ("Freeze", self.transaction_id),
            ("Consume", "the whole frozen amount" if actual is None else credits(actual)),
            ("Reason", self.cleaned_data["reason"]),
        ]


class ExpireForm(ActionForm):
    action = OperatorAction.Action.EXPIRE
    title = "Expire an account now"
    account = forms.TypedChoiceField(coerce=int, label="Account")
    field_order = ["account", "reason"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [
            (
                a.pk,
                f"account {a.pk}: {a.wallet}/{a.source}, {credits(a.available)} available"
                + (f", expires {utc(a.expires_at)}" if a.expires_at else ""),
            )
            for a in expirable_accounts(self.customer, at=self.now)
        ]

    def parse(self, data):
        return {"account_id": data["account"]}

    def run(self, *, actor):
        services.expire_account(
            project=self.customer.project,
            customer_id=self.customer.external_id,
            actor=actor,
            **self.request,
        )
        return Applied(None, self.transaction_id)

    @property
    def transaction_id(self) -> str:
        return f"account {self.cleaned_data['account']}"

    def summary(self):
        label = dict(self.fields["account"].choices)[self.cleaned_data["account"]]
        return [("Account", label), ("Reason", self.cleaned_data["reason"])]


class RefundForm(ActionForm):
    action = OperatorAction.Action.REFUND
    title = "Refund a charge"

    charge = forms.CharField(max_length=255, label="Charge (transaction id)")
    amount = forms.CharField(
        max_length=40, required=False, help_text="Empty to refund all not refunded yet."
    )
    field_order = ["charge", "amount", "reason"]

    def clean_charge(self) -> str:
        transaction_id = self.cleaned_data["charge"]
        if not Transaction.objects.filter(
            customer=self.customer, kind__in=CHARGE_KINDS, transaction_id=transaction_id
        ).exists():
            raise forms.ValidationError("This customer has no charge with this transaction id.")
        return transaction_id

    def parse(self, data):
        return RefundRequestSerializer.parse(
            {
                "transaction_id": data["charge"],
                "refund_id": self.transaction_id,
                "amount": amount_of(data["amount"]),
                "description": data["reason"],
            }
        )

    def run(self, *, actor):
        result = services.refund(project=self.customer.project, actor=actor, **self.request)
        return Applied(result.refunded_amount, self.transaction_id)

    def summary(self):
        amount = self.request["amount"]
        return [
            ("Charge", self.request["transaction_id"]),
            ("Refund", "all not refunded yet" if amount is None else credits(amount)),
            ("Refund id", self.transaction_id),
            ("Reason", self.cleaned_data["reason"]),
        ]


class VoidForm(ActionForm):
    action = OperatorAction.Action.VOID
    title = "Void an account"

    account = forms.TypedChoiceField(coerce=int, label="Account")
    mode = forms.ChoiceField(
        choices=[
            ("remainder", "Remainder: end its unused credits now"),
            ("clawback", "Clawback: also take back what was consumed from it, as debt"),
        ],
        initial="remainder",
    )
    field_order = ["account", "mode", "reason"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [
            (a.pk, f"account {a.pk}: {a.wallet}/{a.source}, {credits(a.total)} granted")
            for a in voidable_accounts(self.customer)
        ]

    def parse(self, data):
        return VoidRequestSerializer.parse(
            {"void_id": self.transaction_id, "mode": data["mode"], "description": data["reason"]}
        ) | {"account_id": data["account"]}

    def run(self, *, actor):
        result = services.void(
            project=self.customer.project,
            customer_id=self.customer.external_id,
            actor=actor,
            **self.request,
        )
        return Applied(result.voided_amount + result.clawed_back_amount, self.transaction_id)

    def summary(self):
        # The void's own dry run: the entries it would write.
        planned = services.void(
            project=self.customer.project,
            customer_id=self.customer.external_id,
            actor="console",
            **{**self.request, "dry_run": True},
        )
        label = dict(self.fields["account"].choices)[self.cleaned_data["account"]]
        return [
            ("Account", label),
            ("Mode", self.request["mode"]),
            *(
                (f"{e.operation_type} entry", f"{credits(e.amount)} ({e.wallet})")
                for e in planned.entries
            ),
            ("Void id", self.transaction_id),
            ("Reason", self.cleaned_data["reason"]),
        ]


class CreditLimitForm(ActionForm):
    action = OperatorAction.Action.CREDIT_LIMIT
    title = "Set a credit limit"

    limit = forms.CharField(max_length=40, help_text="0 removes the limit.")
    wallet = forms.CharField(
        max_length=64, required=False, help_text="Empty for all the customer's wallets."
    )
    field_order = ["limit", "wallet", "reason"]

    def parse(self, data):
        try:
            limit = amount_of(data["limit"])
        except InvalidAmount:
            raise InvalidCreditLimit("limit") from None
        return CreditLimitRequestSerializer.parse(
            {"limit": limit, "wallet": data["wallet"] or None}
        )

    def run(self, *, actor):
        result = services.set_credit_limit(
            project=self.customer.project,
            customer_id=self.customer.external_id,
            actor=actor,
            **self.request,
        )
        return Applied(result.credit_limit, self.transaction_id)

    @property
    def transaction_id(self) -> str:
        return f"credit limit {self.cleaned_data.get('wallet') or 'all wallets'}"

    def summary(self):
        return [
            ("Limit", credits(self.request["limit"])),
            ("Wallet", self.request["wallet"] or "all wallets"),
            ("Reason", self.cleaned_data["reason"]),
        ]


class ScheduleForm(ActionForm):
    action = OperatorAction.Action.SCHEDULE
    title = "Put on a schedule"

    amount = forms.CharField(max_length=40, help_text="Granted each period.")
    period = forms.ChoiceField(choices=[(p, p) for p in PERIODS], initial="month")
    every = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    wallet = forms.CharField(max_length=64, initial="default")
    anchor = forms.CharField(
        required=False, label="First period starts", help_text=f"Empty for now. {UTC_HELP}"
    )
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="Where months count.")
    expires_after_periods = forms.IntegerField(
        min_value=1, max_value=1000, initial=1, required=False, help_text="Empty: never."
    )
    rollover = forms.CharField(
        max_length=40, required=False, label="Rollover cap", help_text="Credits; empty: none."
    )
    field_order = [
        "amount",
        "period",
        "every",
        "wallet",
        "anchor",
        "timezone",
        "expires_after_periods",
        "rollover",
        "reason",
    ]

    def parse(self, data):
        cap = amount_of(data["rollover"])
        return ScheduleRequestSerializer.parse(
            {
                "schedule_id": self.transaction_id,
                "customer_id": self.customer.external_id,
                "amount": amount_of(data["amount"]),
                "period": data["period"],
                "every": data["every"],
                "wallet": data["wallet"],
                "anchor": instant_of(data["anchor"]),
                "timezone": data["timezone"],
                "expires_after_periods": data["expires_after_periods"],
                "rollover": {} if cap is None else {"max_amount": cap},
                "description": data["reason"],
            }
        )

    def run(self, *, actor):
        result = services.create_schedule(
            project=self.customer.project, actor=actor, **self.request
        )
        return Applied(result.amount, result.schedule_id)

    def summary(self):
        r = self.request
        every = f"every {r['every']} {r['period']}s" if r["every"] > 1 else f"every {r['period']}"
        lasting = r["expires_after_periods"]
        return [
            ("Amount", f"{credits(r['amount'])} {every}"),
            ("Wallet", r["wallet"]),
            ("First period starts", utc(r["anchor"]) or "now"),
            ("Timezone", r["timezone"]),
            ("Each grant lasts", f"{lasting} period(s)" if lasting else "forever"),
            ("Rollover cap", credits(r["rollover"]["max_amount"]) if r["rollover"] else "none"),
            ("Reason", r["description"]),
        ]


class ScheduleChoiceForm(ActionForm):
    """An action on one of the customer's active schedules."""

    schedule = forms.ChoiceField(choices=())

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["schedule"].choices = [
            (s.schedule_id, s.schedule_id) for s in active_schedules(self.customer)
        ]

    @property
    def transaction_id(self) -> str:
        return self.cleaned_data["schedule"]


class ScheduleUpdateForm(ScheduleChoiceForm):
    action = OperatorAction.Action.SCHEDULE_UPDATE
    title = "Update a schedule"

    amount = forms.CharField(
        max_length=40, required=False, help_text="Granted each period; empty keeps it."
    )
    expires_after_periods = forms.CharField(
        max_length=10,
        required=False,
        label="Each grant lasts",
        help_text="Periods, or 'never'; empty keeps it.",
    )
    rollover = forms.CharField(
        max_length=40,
        required=False,
        label="Rollover cap",
        help_text="Credits, or a percent of the period's grant (40%); 'none' removes it; "
        "empty keeps it.",
    )
    ends_at = forms.CharField(required=False, label="Ends", help_text=f"Empty keeps it. {UTC_HELP}")
    field_order = ["schedule", "amount", "expires_after_periods", "rollover", "ends_at", "reason"]

    def parse(self, data):
        amount, ends_at = amount_of(data["amount"]), instant_of(data["ends_at"])
        changes = {
            "amount": UNSET if amount is None else amount,
            "expires_after_periods": periods_of(data["expires_after_periods"]),
            "rollover": rollover_of(data["rollover"]),
            "ends_at": UNSET if ends_at is None else ends_at,
        }
        # An empty field keeps the term as it is.
        changes = {name: value for name, value in changes.items() if value is not UNSET}
        if not changes:
            raise forms.ValidationError("Change at least one of the schedule's terms.")
        return ScheduleUpdateRequestSerializer.parse(changes)

    def run(self, *, actor):
        result = services.update_schedule(
            project=self.customer.project,
            schedule_id=self.transaction_id,
            actor=actor,
            **self.request,
        )
        return Applied(result.amount, result.schedule_id)

    def summary(self):
        r = self.request
        lasting = r["expires_after_periods"]
        rollover = r["rollover"]
        changes = [
            ("Amount", r["amount"] is not UNSET and credits(r["amount"])),
            (
                "Each grant lasts",
                lasting is not UNSET and (f"{lasting} period(s)" if lasting else "forever"),
            ),
            ("Rollover cap", rollover is not UNSET and rollover_text(rollover)),
            ("Ends", r["ends_at"] is not UNSET and utc(r["ends_at"])),
        ]
        return [
            ("Schedule", self.transaction_id),
            *((f"{name} from the next period", text) for name, text in changes[:3] if text),
            *(("Ends", text) for _, text in changes[3:] if text),
            ("Reason", self.cleaned_data["reason"]),
        ]


def periods_of(text: str) -> Any:
    """A typed number of periods for the API's field: 'never' is none (null); empty is
    UNSET (kept); anything else the API's field judges."""
    text = text.strip()
    if not text:
        return UNSET
    if text.lower() == "never":
        return None
    try:
        return int(text, 10) if text.isascii() else text
    except ValueError:
        return text


def rollover_of(text: str) -> Any:
    """A typed rollover cap for the API's field: credits, or a percent (`40%`); 'none' is
    none (`{}`); empty is UNSET (kept)."""
    text = text.strip()
    if not text:
        return UNSET
    if text.lower() == "none":
        return {}
    if text.endswith("%"):
        return {"max_percent": exact(text[:-1])}
    return {"max_amount": exact(text)}


def exact(text: str) -> Any:
    """A typed number as an exact Decimal, or the text for the API's field to refuse."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return text
    return value if value.is_finite() else text


def rollover_text(rollover: dict[str, Any]) -> str:
    if "max_percent" in rollover:
        return f"{rollover['max_percent']}% of the period's grant"
    if "max_amount" in rollover:
        return credits(rollover["max_amount"])
    return "none"


class ScheduleCancelForm(ScheduleChoiceForm):
    action = OperatorAction.Action.SCHEDULE_CANCEL
    title = "Cancel a schedule"

    at = forms.ChoiceField(
        choices=[("now", "now: no further grants"), ("period_end", "at the end of this period")]
    )
    field_order = ["schedule", "at", "reason"]

    def parse(self, data):
        return ScheduleCancelRequestSerializer.parse({"at": data["at"]})

    def run(self, *, actor):
        result = services.cancel_schedule(
            project=self.customer.project,
            schedule_id=self.transaction_id,
            actor=actor,
            **self.request,
        )
        return Applied(None, result.schedule_id)

    def summary(self):
        return [
            ("Schedule", self.transaction_id),
            ("Cancel", dict(self.fields["at"].choices)[self.request["at"]]),
            ("Reason", self.cleaned_data["reason"]),
        ]


class AlreadyApplied(Exception):
    """The form's token names an action already applied: this submit is a repeat."""


class DryRun(Exception):
    """Raised to roll back an action run only to show its effect."""


Effect = list[tuple[str, Decimal, Decimal, Decimal, Decimal]]
"""Per wallet: available before, frozen before, available after, frozen after."""


def preview(form: ActionForm, *, actor: str) -> Effect:
    """What the action would do to each wallet, found by running it through the services in a
    transaction that is then rolled back. Raises the service's error, or `AlreadyApplied`."""
    if OperatorAction.objects.filter(token=form.cleaned_data["token"]).exists():
        raise AlreadyApplied
    before = wallet_balances(form.customer)
    try:
        with transaction.atomic():
            form.run(actor=actor)
            after = wallet_balances(form.customer)
            raise DryRun
    except DryRun:
        pass
    zero = (Decimal(0), Decimal(0))
    return [
        (name, *before.get(name, zero), *after.get(name, zero))
        for name in sorted(set(before) | set(after))
    ]


def apply(form: ActionForm, *, actor: str) -> OperatorAction:
    """Run the action and record it, in one transaction. Raises the service's error, or
    `AlreadyApplied` when the form's token was used (by an earlier submit, or by one that ran
    at the same time and committed first: the services replay it, and the audit row's unique
    token refuses the second record)."""
    token = form.cleaned_data["token"]
    if OperatorAction.objects.filter(token=token).exists():
        raise AlreadyApplied
    try:
        with transaction.atomic():
            applied = form.run(actor=actor)
            return OperatorAction.objects.create(
                customer=form.customer,
                actor=actor,
                action=form.action,
                reason=form.cleaned_data["reason"],
                amount=applied.amount,
                transaction_id=applied.transaction_id,
                token=token,
                created_at=timezone.now(),
            )
    except (ServiceError, IntegrityError):
        if OperatorAction.objects.filter(token=token).exists():
            raise AlreadyApplied from None
        raise


def wallet_balances(customer: Customer) -> dict[str, tuple[Decimal, Decimal]]:
    """Available and frozen per wallet, as the API's balance answers them."""
    balance = customer_balance(customer.project, customer.external_id)
    return {name: (w.available, w.frozen) for name, w in balance.wallets.items()}


FORMS: dict[str, type[ActionForm]] = {
    "grant": GrantForm,
    "deduct": DeductForm,
    "unfreeze": UnfreezeForm,
    "consume": ConsumeForm,
    "expire": ExpireForm,
    "refund": RefundForm,
    "void": VoidForm,
    "credit-limit": CreditLimitForm,
    "schedule": ScheduleForm,
    "schedule-update": ScheduleUpdateForm,
    "schedule-cancel": ScheduleCancelForm,
}
