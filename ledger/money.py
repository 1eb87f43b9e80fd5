"""Exact credit amounts.

An amount is a `Decimal` with at most six fractional digits. The database stores it as an integer
count of micro-credits (1 credit = 10^6), which is exact on SQLite and PostgreSQL alike; no float
is ever on the path of an amount.
"""

from decimal import Decimal
from typing import Any

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


# --- sums in SQL -----------------------------------------------------------------------------

INT64 = range(-(2**63), 2**63)
# Past 64 bits `exact_sum` answers text, padded to one width so that non-negative sums still
# order as numbers (SQLite orders every integer before any text, and texts of one width by
# their digits). 40 digits hold 10^21 operations of 10^12 credits.
SUM_DIGITS = 40


class _ExactSum:
    """SQLite's `exact_sum`: SUM over Python's unbounded integers. SQLite's own SUM raises
    `integer overflow` past 2^63, which ten deposits of 10^12 credits pass (10^19
    micro-credits); its TOTAL is a float."""

    def __init__(self) -> None:
        self.total: int | None = None

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total = (self.total or 0) + value

    def finalize(self) -> int | str | None:
        if self.total is None or self.total in INT64:
            return self.total
        return f"{self.total:0{SUM_DIGITS}d}"


def install_exact_sum(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On every new SQLite connection (`connection_created`), define `exact_sum`."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("exact_sum", 1, _ExactSum)


def sum_function(vendor: str) -> str:
    """The SQL function that sums micro-credits exactly: PostgreSQL sums `bigint` as
    `numeric`; SQLite needs `exact_sum`."""
    return "exact_sum" if vendor == "sqlite" else "SUM"


class CreditSum(models.Sum):
    """`Sum` of micro-credit amounts, exact on both databases however large (see
    `sum_function`), read back as a `Decimal` amount."""

    def __init__(self, expression: Any, **extra: Any):
        extra.setdefault("output_field", CreditAmountField())
        super().__init__(expression, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function=sum_function("sqlite"), **extra)
