"""Grant files: the rows of a bulk grant, read from CSV or JSON Lines and validated exactly as
the API validates a deposit request.

A CSV file has a header row naming its columns; a JSON Lines file has one JSON object per line.
Either way the columns are the deposit's fields (`COLUMNS`), each meaning what it means in a
deposit; `customer_id` and `amount` are required. A row is checked as a request body would be:
strings free of NUL and surrogates (`check_fields`), then `DepositRequestSerializer`, so a
row is refused with the same code the API answers with. An empty CSV cell is an absent field.

The file is read into a private temporary copy first, which fixes its content (and the hash
that names its rows' derived idempotency keys) however often it is read afterwards; reading
streams it, so memory does not grow with the file.
"""

import csv
import hashlib
import io
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import IO, Any, Literal

from credits_project.errors import (
    InvalidGrantFile,
    InvalidRequest,
    ServiceError,
    UnreadableGrantFile,
)
from credits_project.json import check_fields, loads, parse_object
from customers.models import Project
from ledger.contract.requests import DepositRequestSerializer
from ledger.services.bulk import GrantRow, RowError
from ledger.services.deposits import Grant, Profile

COLUMNS = (
    "customer_id",
    "amount",
    "wallet",
    "source",
    "starts_at",
    "expires_at",
    "idempotency_key",
    "business_type",
    "description",
    "name",
    "email",
    "metadata",
    "repays_debt",
)
REQUIRED = ("customer_id", "amount")
PROFILE = ("name", "email", "metadata")

Format = Literal["csv", "jsonl"]

# A JSON number, as the API's body parser would read the field.
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
COPY_CHUNK_BYTES = 1 << 20
# What files that are not UTF-8 text start with: the reason each is refused under.
SIGNATURES = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),  # also a spreadsheet (.xlsx, .ods)
    (b"\xff\xfe", "utf16"),  # byte order marks (UTF-32's begin the same)
    (b"\xfe\xff", "utf16"),
)
HEAD_BYTES = 4096
NAMES_SHOWN = 5


def validate_deposit(data: dict[str, Any]) -> tuple[str, Grant, Profile]:
    """A deposit's fields as the API's deposit takes them (customer, terms, profile), or the
    API's error. `data` holds values as a parsed JSON body would."""
    check_fields(data)
    fields = DepositRequestSerializer.parse(data)
    profile = Profile(**{name: fields.pop(name) for name in PROFILE if fields[name] is not None})
    for name in PROFILE:
        fields.pop(name, None)
    customer_id = fields.pop("customer_id")
    return customer_id, Grant(**fields), profile


def cell_value(column: str, text: str) -> Any:
    """A CSV cell as the JSON value the API would receive: empty is absent, `amount` a JSON
    number, `metadata` a JSON object. Text that does not parse is passed on as a string, which
    the field then refuses with its own code, in the fields' order."""
    if text == "":
        return None
    if column == "amount":
        number = text.strip()
        return loads(number) if JSON_NUMBER.fullmatch(number) else text
    if column == "repays_debt":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if column == "metadata":
        try:
            return loads(text)
        except (ValueError, RecursionError):
            return text
    return text


class GrantFile:
    """A grant file, copied once from `source` (a binary stream) and read as often as needed.

    `digest` is the SHA-256 of the content; `lines` the number of lines in it, for progress.
    `columns` and `required` are the columns a row may and must have (a deposit's here).
    """

    columns: tuple[str, ...] = COLUMNS
    required: tuple[str, ...] = REQUIRED
    kind = "bulk_grant"  # what its rows' derived idempotency keys start with
    # A CSV cell as the JSON value the API would receive (column, text → value).
    cell: Callable[[str, str], Any] = staticmethod(cell_value)

    def __init__(self, source: IO[bytes], *, format: Format | None = None):
        self.copy = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        digest = hashlib.sha256()
        self.lines = 0
        last = b""
        while chunk := source.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
            self.copy.write(chunk)
            self.lines += chunk.count(b"\n")
            last = chunk
        if last and not last.endswith(b"\n"):
            self.lines += 1
        self.digest = digest.hexdigest()
        self.format = format or self._sniff()

    def close(self) -> None:
        self.copy.close()

    def __enter__(self) -> "GrantFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key_prefix(self, project: Project) -> str:
        """What the derived idempotency keys of this file's rows start with: the project and
        the content, so a rerun of the same file in the same project names the same rows
        (the project by its primary key, which a rename does not change)."""
        run = hashlib.sha256(f"{project.pk}\n{self.digest}".encode()).hexdigest()[:32]
        return f"{self.kind}:{run}"

    def reference(self, project: Project) -> str:
        """A short name of this file's run, for the entries' descriptions."""
        return self.key_prefix(project)[: len("bulk_grant:") + 12]

    def rows(self, project: Project) -> Iterator[GrantRow | RowError]:
        """Each row in file order, valid or not. A row without an `idempotency_key` gets one
        derived from the file (`key_prefix`) and its line. Raises `InvalidGrantFile` before
        the first row when the header is wrong."""
        prefix = self.key_prefix(project)
        for line, data in self._records():
            if isinstance(data, ServiceError):
                yield RowError(f"line {line}", data, line)
                continue
            try:
                customer_id, grant, profile = validate_deposit(data)
            except ServiceError as error:
                yield RowError(f"line {line}", error, line)
                continue
            if grant.idempotency_key is None:
                grant = replace(grant, idempotency_key=f"{prefix}:{line}")
            yield GrantRow(line, customer_id, grant, profile)

    def _sniff(self) -> Format:
        self.copy.seek(0)
        start = self.copy.read(HEAD_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
        return "jsonl" if start.startswith(b"{") else "csv"

    def _records(self) -> Iterator[tuple[int, dict[str, Any] | ServiceError]]:
        self.copy.seek(0)
        check_text(self.copy.read(HEAD_BYTES))
        self.copy.seek(0)
        if self.format == "jsonl":
            yield from jsonl_records(self.copy, self.columns)
        else:
            yield from csv_records(self.copy, self.columns, self.required, self.cell)


def check_text(head: bytes) -> None:
    """Refuse a file whose start is not text, before any row: read as UTF-8, a compressed,
    UTF-16 or binary file would be one refused row per line, or a header of garbled names."""
    for signature, reason in SIGNATURES:
        if head.startswith(signature):
            raise UnreadableGrantFile({"reason": reason})
    # A NUL in a row is that row's error; in the first line, the file is not text (UTF-16
    # without its mark has one after every letter).
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise UnreadableGrantFile({"reason": "binary"})


def csv_records(
    stream: IO[bytes],
    columns: tuple[str, ...] = COLUMNS,
    required: tuple[str, ...] = REQUIRED,
    cell: Callable[[str, str], Any] = cell_value,
) -> Iterator[tuple[int, dict[str, Any] | ServiceError]]:
    # Undecodable bytes become lone surrogates, which `check_fields` refuses row by row.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text, strict=True)
        header = read_header(reader, columns, required)
        end = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                start, end = end + 1, reader.line_num
                yield start, InvalidRequest("row", "bad_csv")
                continue
            start, end = end + 1, reader.line_num
            if not cells or cells == [""]:
                continue
            if len(cells) > len(header):
                yield start, InvalidRequest("row", "too_many_cells", columns=len(header))
                continue
            yield (
                start,
                {column: cell(column, text) for column, text in zip(header, cells, strict=False)},
            )
    finally:
        text.detach()


def read_header(reader: Any, columns: tuple[str, ...], required: tuple[str, ...]) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise InvalidGrantFile({"reason": "empty"}) from None
    except csv.Error:
        raise InvalidGrantFile({"reason": "bad_header"}) from None
    if any(has_surrogates(name) for name in header):  # bytes that are not UTF-8
        raise UnreadableGrantFile({"reason": "not_utf8"})
    check_columns(header, columns, required)
    return header


def check_columns(names: list[str], columns: tuple[str, ...], required: tuple[str, ...]) -> None:
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise InvalidGrantFile({"unknown_columns": a_few(unknown)})
    # Every name is known here, so the repeated ones are among the few columns there are.
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise InvalidGrantFile({"repeated_columns": repeated})
    missing = [name for name in required if name not in names]
    if missing:
        raise InvalidGrantFile({"missing_columns": missing})


def has_surrogates(text: str) -> bool:
    return any("\ud800" <= character <= "\udfff" for character in text)


def a_few(names: list[str]) -> list[str]:
    """The first names of a list that may be a whole hostile header long, and how many more."""
    if len(names) <= NAMES_SHOWN:
        return names
    return [*names[:NAMES_SHOWN], f"and {len(names) - NAMES_SHOWN} more"]


def jsonl_records(
    stream: IO[bytes], columns: tuple[str, ...] = COLUMNS
) -> Iterator[tuple[int, dict[str, Any] | ServiceError]]:
    for line, raw in enumerate(stream, start=1):
        if line == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            data = parse_object(raw)
        except ServiceError as error:
            yield line, error
            continue
        unknown = next((name for name in data if name not in columns), None)
        if unknown is not None:
            yield line, InvalidRequest(unknown, "unknown_field")
            continue
        yield line, data


def amount_value(text: str) -> Decimal | int | str | None:
    """A command-line amount as the API would receive it (see `cell_value`)."""
    return cell_value("amount", text)
