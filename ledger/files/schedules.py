"""Schedule files: the rows of a bulk schedule, read from CSV or JSON Lines like grant files
(`grants.GrantFile`: the file copied once, its encoding checked, a CSV header of known
columns), each row a `POST /v1/schedules` body for `ScheduleRequestSerializer` to judge.

In CSV the rollover cap is two flat columns, `rollover_max_amount` and `rollover_max_percent`
(JSON Lines may use them too, or the API's `rollover` object); `expires_after_periods` may be
`never` (the API's null), `prorate_first_period` is `true` or `false`, `metadata` a JSON object.
An empty cell is an absent field, so it takes the API's default.
"""

from collections.abc import Iterator
from typing import Any

from credits_project.errors import ServiceError
from ledger.files.grants import GrantFile, cell_value

COLUMNS = (
    "schedule_id",
    "customer_id",
    "amount",
    "wallet",
    "source",
    "period",
    "every",
    "anchor",
    "timezone",
    "ends_at",
    "expires_after_periods",
    "rollover",
    "rollover_max_amount",
    "rollover_max_percent",
    "prorate_first_period",
    "description",
    "metadata",
)
NUMBERS = (
    "amount",
    "every",
    "expires_after_periods",
    "rollover_max_amount",
    "rollover_max_percent",
)
CAPS = {"rollover_max_amount": "max_amount", "rollover_max_percent": "max_percent"}
NEVER = object()  # `never` in a CSV cell: the API's null


def schedule_cell(column: str, text: str) -> Any:
    """A CSV cell as the JSON value the API would receive (see `grants.cell_value`)."""
    if text == "":
        return None
    if column == "expires_after_periods" and text.strip().lower() == "never":
        return NEVER
    if column in NUMBERS:
        return cell_value("amount", text)  # a JSON number, or the text for the field to refuse
    if column == "prorate_first_period":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if column in ("metadata", "rollover"):
        return cell_value("metadata", text)  # a JSON object, or the text
    return text


class ScheduleFile(GrantFile):
    columns = COLUMNS
    required = ("customer_id", "amount", "period")
    kind = "bulk_schedule"
    cell = staticmethod(schedule_cell)

    def records(self) -> Iterator[tuple[str, dict[str, Any] | ServiceError]]:
        """(where, the row as a request body, or its error) per row, in file order. Raises
        `InvalidGrantFile` or `UnreadableGrantFile` before the first row for a file that
        is not one."""
        for line, data in self._records():
            if not isinstance(data, ServiceError):
                data = with_rollover(from_csv(data) if self.format == "csv" else data)
            yield f"line {line}", data


def from_csv(data: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as the API's body: empty cells left out (absent), `never` as null."""
    return {
        name: None if value is NEVER else value for name, value in data.items() if value is not None
    }


def with_rollover(body: dict[str, Any]) -> dict[str, Any]:
    """The flat rollover columns as the API's `rollover` object (a null one is absent); a
    row with both forms has its `rollover` refused, as an object the API would refuse."""
    caps = {CAPS[name]: body.pop(name) for name in list(CAPS) if name in body}
    caps = {name: value for name, value in caps.items() if value is not None}
    if caps:
        body["rollover"] = caps if "rollover" not in body else "both rollover and its columns"
    return body
