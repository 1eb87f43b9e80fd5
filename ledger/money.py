"""Exact credit amounts.

An amount is a `Decimal` with at most six fractional digits. The database stores it as an integer
count of micro-credits (1 credit = 10^6), which is exact on SQLite and PostgreSQL alike; no float
is ever on the path of an amount.
"""

from decimal import Decimal

from django.db import models

MICROS_PER_CREDIT = 10**6
MAX_AMOUNT = Decimal(10**12)
ZERO = Decimal(0)


def to_micros(amount: Decimal) -> int:
    micros = amount.scaleb(6)
    if micros != micros.to_integral_value():
        raise ValueError(f"{amount} has more than 6 fractional digits")
    return int(micros)


def from_micros(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6).normalize() if micros else ZERO


class CreditAmountField(models.BigIntegerField):
    """A `Decimal` amount stored as integer micro-credits."""

    description = "Credit amount (Decimal, stored as integer micro-credits)"

    def from_db_value(self, value, expression, connection):
        return None if value is None else from_micros(value)

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value))

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("credit amounts are never floats")
        return to_micros(Decimal(value))

    def formfield(self, **kwargs):
        from django import forms

        return forms.DecimalField(max_digits=19, decimal_places=6, **kwargs)
