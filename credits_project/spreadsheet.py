"""CSV that a spreadsheet opens without running anything (OWASP's rule against formula
injection): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is what
Excel, LibreOffice and Sheets read as a formula, so it is written after a `'`, which they show
as text. A plain number, such as a negative amount, is left as it is: it is no formula.

Every CSV the service writes goes through `SafeWriter`. (defusedcsv does the same as a drop-in
module, but leaves cells starting with a tab or a carriage return as they are.)
"""

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class Writable(Protocol):
    def write(self, value: str, /) -> Any: ...


def safe_cell(value: Any) -> str:
    """`value` as a cell no spreadsheet evaluates."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """`csv.writer`, every cell made safe first."""

    def __init__(self, file: Writable):
        self.writer = csv.writer(file)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self.writer.writerow([safe_cell(value) for value in row])
