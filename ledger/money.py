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


class MicroCredits:
    """A `Decimal` amount kept in the database as a count of micro-credits."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else from_micros(int(value))

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value))

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("credit amounts are never floats")
        return self.stored(to_micros(Decimal(value)))


class CreditAmountField(MicroCredits, models.BigIntegerField):
    """One operation's amount (at most 10^12 credits): an integer of micro-credits."""

    description = "Credit amount (Decimal, stored as integer micro-credits)"

    def stored(self, micros: int) -> int:
        return micros

    def formfield(self, **kwargs):
        from django import forms

        return forms.DecimalField(max_digits=19, decimal_places=6, **kwargs)


class CreditTotalField(MicroCredits, models.TextField):
    """A sum of many amounts, kept exactly as the decimal text of its micro-credits.

    A per-operation amount fits a 64-bit integer of micro-credits; a sum over thousands of
    deposits may not (2^63 micro-credits is about 9.2 * 10^12 credits), and SQLite has no exact
    type wider than that. Sums are only ever added to in Python, never in SQL.
    """

    description = "Credit sum (Decimal, stored as the text of its integer micro-credits)"

    def stored(self, micros: int) -> str:
        return str(micros)
