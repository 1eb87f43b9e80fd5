"""Response bodies, rendered and documented from the result dataclasses of `ledger.results`.

`response_serializer(DeductResult)` is a `DataclassSerializer` (djangorestframework-dataclasses)
whose fields follow the dataclass: drf-spectacular documents it, and `render` uses one cached
instance of it per class to turn a result into the body the exact JSON renderer writes. Amounts
stay `Decimal` and instants `datetime` until that renderer writes them.
"""

import dataclasses
import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_dataclasses.serializers import DataclassSerializer


@extend_schema_field({"type": "number"})
class Amount(serializers.Field):
    """An exact amount: a JSON number, integral values written as integers, never exponents.
    Sums over many accounts may pass the per-operation maximum, so no bound is declared."""

    def to_representation(self, value: Decimal) -> Decimal:
        return value


@extend_schema_field({"type": "string", "format": "date-time"})
class Instant(serializers.Field):
    """A UTC instant, written with milliseconds and `Z`."""

    def to_representation(self, value: dt.datetime) -> dt.datetime:
        return value


class ResponseSerializer(DataclassSerializer):
    serializer_field_mapping = {
        **DataclassSerializer.serializer_field_mapping,
        Decimal: Amount,
        dt.datetime: Instant,
    }

    @property
    def serializer_dataclass_field(self):
        return ResponseSerializer

    def to_representation(self, instance: Any) -> dict[str, Any]:
        body = super().to_representation(instance)
        for field in dataclasses.fields(instance):
            if field.metadata.get("omit_when_none") and body[field.name] is None:
                del body[field.name]
        return body


@cache
def response_serializer(result_type: type) -> ResponseSerializer:
    """The serializer of one result class, built once: its fields are bound on first use."""
    serializer = type(
        f"{result_type.__name__}Serializer",
        (ResponseSerializer,),
        {"Meta": type("Meta", (), {"dataclass": result_type})},
    )
    return serializer()


def render(result: Any) -> dict[str, Any]:
    """The response body of a service's or selector's result."""
    return response_serializer(type(result)).to_representation(result)
