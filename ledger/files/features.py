"""Slot and entitlement files: rows of a bulk slot grant or a bulk entitlement set, read from
CSV or JSON Lines like grant files (`grants.GrantFile`) and validated by the API's request
serializers, so a row is refused with the code the API answers with.

A slot row is a grant of capacity (`customer_id`, `wallet`, `amount`; `source`,
`idempotency_key`, `description`); a row without an `idempotency_key` gets one derived from
the project, the file's content and the line, so a rerun grants each row once. An entitlement
row is a set (`customer_id`, `feature_key`, `value`; `valid_from`, `valid_until`, `source`,
`description`, `metadata`), which a rerun repeats harmlessly: a set that changes nothing writes
nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from credits_project.errors import ServiceError
from credits_project.json import check_fields
from customers.models import Project
from ledger.contract.entitlements import SetEntitlementRequestSerializer
from ledger.contract.requests import RequestSerializer
from ledger.contract.slots import CapacityRequestSerializer
from ledger.files.grants import GrantFile
from ledger.services.bulk import RowError


@dataclass(frozen=True)
class FeatureRow:
    """One valid row: its line and the service's keyword arguments."""

    line: int
    request: dict[str, Any]


class FeatureFile(GrantFile):
    serializer: type[RequestSerializer]

    def rows(self, project: Project) -> Iterator[FeatureRow | RowError]:  # type: ignore[override]
        """Each row in file order, valid or not. Raises `InvalidGrantFile` before the first
        row when the header is wrong."""
        for line, data in self._records():
            if isinstance(data, ServiceError):
                yield RowError(f"line {line}", data, line)
                continue
            try:
                check_fields(data)
                request = self.serializer.parse(data)
            except ServiceError as error:
                yield RowError(f"line {line}", error, line)
                continue
            yield FeatureRow(line, self.complete(request, project, line))

    def complete(self, request: dict[str, Any], project: Project, line: int) -> dict[str, Any]:
        return request


class SlotGrantFile(FeatureFile):
    columns = ("customer_id", "wallet", "amount", "source", "idempotency_key", "description")
    required = ("customer_id", "wallet", "amount")
    serializer = CapacityRequestSerializer
    kind = "bulk_slots"

    def complete(self, request, project, line):
        if request["idempotency_key"] is None:
            request["idempotency_key"] = f"{self.key_prefix(project)}:{line}"
        return request


class EntitlementFile(FeatureFile):
    columns = (
        "customer_id",
        "feature_key",
        "value",
        "valid_from",
        "valid_until",
        "source",
        "description",
        "metadata",
    )
    required = ("customer_id", "feature_key", "value")
    serializer = SetEntitlementRequestSerializer
    kind = "bulk_entitlements"
