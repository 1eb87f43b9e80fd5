"""Request bodies of grant schedules: create, update and cancel."""

import datetime as dt
from decimal import Decimal
from typing import Any

from rest_framework.fields import empty

from credits_project.errors import (
    CustomerIdRequired,
    InvalidAnchor,
    InvalidCancelAt,
    InvalidEndsAt,
    InvalidEvery,
    InvalidExpiresAfterPeriods,
    InvalidPeriod,
    InvalidRollover,
    InvalidTimezone,
    ScheduleIdRequired,
)
from ledger.contract.fields import (
    AmountField,
    BooleanField,
    ChoiceField,
    ContractField,
    IdField,
    InstantField,
    MetadataField,
    TextField,
)
from ledger.contract.requests import RequestSerializer
from ledger.periods import PERIODS, zone

MAX_COUNT = 1000
# Anchors far enough from the calendar's ends that period arithmetic never leaves it.
EARLIEST_ANCHOR_YEAR, LATEST_ANCHOR_YEAR = 1970, 2999


class Unset:
    """An update's field that was not sent: it leaves the schedule's value as it is. One
    instance, kept through the copies DRF makes of its fields."""

    def __copy__(self) -> "Unset":
        return self

    def __deepcopy__(self, memo: dict) -> "Unset":
        return self

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = Unset()


class CountField(ContractField):
    """An integer in 1…`MAX_COUNT`; absent is `default`, and, with `nullable`, null is None
    (where null means something: "never")."""

    def __init__(self, *, default: Any, error: type, nullable: bool = False, **kwargs: Any):
        self.fallback, self.error, self.nullable = default, error, nullable
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
        if self.fallback is not UNSET and self.fallback is not None:
            schema["default"] = self.fallback
        if self.nullable:
            schema["nullable"] = True
        return schema

    def run_validation(self, data: Any = empty) -> Any:
        if data is empty:
            return self.fallback
        if data is None:
            if self.nullable:
                return None
            raise self.error(self.field_name)
        return self.parse(data)

    def parse(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
            raise self.error(self.field_name)
        return value


class TimezoneField(ContractField):
    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "default": "UTC", "description": "An IANA timezone name."}

    def parse(self, value: Any) -> str:
        if value is None:
            return "UTC"
        if zone(value) is None:
            raise InvalidTimezone(self.field_name)
        return value


class AnchorField(InstantField):
    def __init__(self, **kwargs: Any):
        super().__init__(error=InvalidAnchor, **kwargs)

    def parse(self, value: Any) -> dt.datetime | None:
        anchor = super().parse(value)
        if anchor is not None and not EARLIEST_ANCHOR_YEAR <= anchor.year <= LATEST_ANCHOR_YEAR:
            raise InvalidAnchor(self.field_name)
        return anchor


class RolloverField(ContractField):
    """`{"max_amount": N}` or `{"max_percent": P}`; `{}` (in an update) for none. Absent is
    `default`."""

    def __init__(self, *, default: Any, **kwargs: Any):
        self.fallback = default
        super().__init__(**kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "nullable": True,
            "properties": {
                "max_amount": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "max_percent": {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 100,
                },
            },
            "maxProperties": 1,
            "additionalProperties": False,
        }

    def run_validation(self, data: Any = empty) -> Any:
        if data is empty or data is None:
            return self.fallback
        return self.parse(data)

    def parse(self, value: Any) -> dict[str, Decimal]:
        if not isinstance(value, dict) or len(value) > 1:
            raise InvalidRollover(self.field_name)
        if not value:
            return {}
        [(name, cap)] = value.items()
        if name not in ("max_amount", "max_percent"):
            raise InvalidRollover(self.field_name)
        amount = AmountField(not_positive=InvalidRollover, invalid=InvalidRollover)
        amount.field_name = self.field_name
        cap = amount.parse(cap)
        if name == "max_percent" and cap > 100:
            raise InvalidRollover(self.field_name)
        return {name: cap}


class ScheduleRequestSerializer(RequestSerializer):
    schedule_id = IdField(
        missing_error=ScheduleIdRequired,
        help_text="The client's id of the schedule: repeating the same body replays it.",
    )
    customer_id = IdField(missing_error=CustomerIdRequired, help_text="Created if unknown.")
    amount = AmountField(help_text="Credits granted each period.")
    wallet = TextField(min_length=1, max_length=64, default="default")
    source = TextField(min_length=1, max_length=64, default="schedule")
    period = ChoiceField(choices=PERIODS, default="", error=InvalidPeriod, required=True)
    every = CountField(default=1, error=InvalidEvery, help_text="Periods per grant.")
    anchor = AnchorField(help_text="Period n starts at anchor + n * every * period; default now.")
    timezone = TimezoneField(help_text="Where months and years are counted; default UTC.")
    ends_at = InstantField(error=InvalidEndsAt, help_text="No period starts at or after it.")
    expires_after_periods = CountField(
        default=1,
        nullable=True,
        error=InvalidExpiresAfterPeriods,
        help_text="How many periods a grant lasts; null: it never expires.",
    )
    rollover = RolloverField(default={}, help_text="What of an expiring grant moves on.")
    prorate_first_period = BooleanField(default=False)
    description = TextField(max_length=1000, default="")
    metadata = MetadataField()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data["period"]:
            raise InvalidPeriod("period")
        if data["rollover"] and data["expires_after_periods"] is None:
            raise InvalidRollover("rollover")
        data["metadata"] = data["metadata"] or {}
        return data


class ScheduleUpdateRequestSerializer(RequestSerializer):
    """What an update changes from the next period on; a field not sent stays as it is."""

    amount = AmountField(optional=True)
    rollover = RolloverField(default=UNSET, help_text="`{}` removes it.")
    ends_at = InstantField(error=InvalidEndsAt)
    expires_after_periods = CountField(
        default=UNSET, nullable=True, error=InvalidExpiresAfterPeriods
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        data["amount"] = UNSET if data["amount"] is None else data["amount"]
        data["ends_at"] = UNSET if data["ends_at"] is None else data["ends_at"]
        return data


class ScheduleCancelRequestSerializer(RequestSerializer):
    at = ChoiceField(
        choices=("now", "period_end"),
        default="now",
        error=InvalidCancelAt,
        help_text="`now`: no further grants; `period_end`: none after the current period.",
    )
