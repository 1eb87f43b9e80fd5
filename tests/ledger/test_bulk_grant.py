"""`bulk_grant`: files validated as the API validates deposits, applied exactly once in
batches; grants to every customer once per run id. Run as the command (in process, or as a
subprocess on the test database for the kill), checked against the ledger and `check_ledger`.
"""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from credits_project.errors import IdempotencyConflict
from customers.models import Customer
from ledger import services
from ledger.files.grants import GrantFile
from ledger.models import CreditAccount, LedgerEntry, OperationType, Transaction
from ledger.selectors.consistency import find_inconsistencies
from ledger.services import bulk
from tests.server import ROOT, shared_database_url

pytestmark = pytest.mark.django_db

HEADER = "customer_id,amount,wallet,source,starts_at,expires_at,idempotency_key,description\n"


def run(*args: str) -> tuple[int, str, str]:
    """The command's exit status, standard output and standard error."""
    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("bulk_grant", *args, stdout=stdout, stderr=stderr)
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, stdout.getvalue(), stderr.getvalue()


def write(tmp_path: Path, text: str, name: str = "grants.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def summary(stdout: str) -> dict[str, str]:
    """The summary's `name: value` lines."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def grants(project) -> list[tuple[str, str, Decimal]]:
    """(customer, wallet, amount) of every GRANT entry of the project, in order."""
    return [
        (e.customer.external_id, e.account.wallet, e.amount)
        for e in LedgerEntry.objects.filter(
            customer__project=project, operation_type=OperationType.GRANT
        )
        .select_related("customer", "account")
        .order_by("id")
    ]


def ledger_total(project) -> Decimal:
    entries = LedgerEntry.objects.filter(customer__project=project)
    return entries.aggregate(total=Sum("amount"))["total"] or Decimal(0)


VALID = (
    HEADER + "alice,10,default,,,,,welcome\n"
    "bob,2.5,promo,promo-2026,2026-01-01T00:00:00Z,2027-01-01T00:00:00+02:00,,\n"
    "alice,0.000001,,,,,own-key-1,\n"
)


def test_a_valid_file_grants_every_row_as_a_deposit_with_the_commands_actor(project, tmp_path):
    services.deposit(project=project, customer_id="bob", amount=Decimal(1), actor="api_key:x")

    status, stdout, stderr = run(write(tmp_path, VALID), "--project", project.name)

    assert status == 0, stderr
    assert summary(stdout) | {"elapsed": ""} == {
        "rows granted": "3",
        "rows replayed (granted before)": "0",
        "rows rejected": "0",
        "  default": "10.000001",
        "  promo": "2.5",
        "customers created": "1",
        "elapsed": "",
    }
    assert grants(project) == [
        ("bob", "default", Decimal(1)),
        ("alice", "default", Decimal(10)),
        ("bob", "promo", Decimal("2.5")),
        ("alice", "default", Decimal("0.000001")),
    ]
    promo = CreditAccount.objects.get(wallet="promo")
    assert (promo.source, promo.starts_at.isoformat(), promo.expires_at.isoformat()) == (
        "promo-2026",
        "2026-01-01T00:00:00+00:00",
        "2026-12-31T22:00:00+00:00",
    )
    entries = LedgerEntry.objects.filter(actor=bulk.ACTOR).order_by("id")
    assert entries.count() == 3
    assert entries[0].description.startswith("welcome [bulk_grant:")
    assert all(e.description.endswith(" batch 1]") for e in entries)
    assert entries[2].transaction_id == "own-key-1"
    assert entries[0].transaction_id.startswith("bulk_grant:")
    assert entries[0].transaction_id.endswith(":2")  # line 2 of the file
    # Each row is recorded like a keyed deposit, so the API replays it.
    assert Transaction.objects.filter(kind=Transaction.Kind.DEPOSIT).count() == 3
    assert "bulk_grant: granting 3/3 rows" in stderr
    assert find_inconsistencies(project) == []


def test_a_row_replays_a_deposit_made_through_the_api_with_its_key(project, tmp_path):
    earlier = services.deposit(
        project=project,
        customer_id="alice",
        amount=Decimal("0.000001"),
        actor="api_key:x",
        idempotency_key="own-key-1",
    )

    status, stdout, _ = run(write(tmp_path, VALID), "--project", project.name)

    assert status == 0
    assert summary(stdout)["rows granted"] == "2"
    assert summary(stdout)["rows replayed (granted before)"] == "1"
    assert LedgerEntry.objects.filter(transaction_id="own-key-1").get().pk == int(earlier.record_id)
    # And the API replays the row the file granted, as it would its own deposit.
    replay = services.deposit(
        project=project, customer_id="alice", amount=Decimal(10), actor="api_key:x",
        idempotency_key=LedgerEntry.objects.get(amount=10).transaction_id,
    )  # fmt: skip
    assert replay.is_idempotent_replay


BAD = (
    HEADER + "c1,5,,,,,,\n"
    "c2,-5,,,,,,\n"
    "c3,1.1234567,,,,,,\n"
    "c4,1,,,,tomorrow,,\n"
    ",1,,,,,,\n"
    "c6,1,promo\x00,,,,,\n"
    "c7,1,,,,,,\n"
    f"c8,1,{'w' * 65},,,,,\n"
    "c9,ten,,,,,,\n"
)
BAD_LINES = [
    "line 3: amount_must_be_positive: amount must be a positive number (field: amount)",
    "line 4: invalid_amount: amount must be a number with at most 6 decimal places and at "
    "most 10^12 (field: amount)",
    "line 5: invalid_expires_at: expires_at must be an ISO-8601 datetime with a timezone "
    "(field: expires_at)",
    "line 6: customer_id_required: customer_id is required (field: customer_id)",
    "line 7: invalid_request: invalid request (field: wallet; reason: bad_string)",
    "line 9: invalid_request: invalid request (field: wallet; min_length: 1; max_length: 64; "
    "reason: bad_length)",
    "line 10: invalid_amount: amount must be a number with at most 6 decimal places and at "
    "most 10^12 (field: amount)",
]


def test_a_file_with_bad_rows_is_refused_whole_with_each_bad_line(project, tmp_path):
    status, stdout, stderr = run(write(tmp_path, BAD), "--project", project.name)

    assert status == 1
    assert [line for line in stderr.splitlines() if line.startswith("line ")] == BAD_LINES
    assert "7 row(s) refused: nothing was granted." in stderr
    assert stdout == ""
    assert not Customer.objects.filter(project=project).exists()
    assert not LedgerEntry.objects.exists()


def test_skip_invalid_grants_the_valid_rows_and_reports_the_others(project, tmp_path):
    status, stdout, stderr = run(
        write(tmp_path, BAD), "--project", project.name, "--skip-invalid", "--batch-size", "2"
    )

    assert status == 0
    assert [line for line in stderr.splitlines() if line.startswith("line ")] == BAD_LINES
    assert grants(project) == [("c1", "default", Decimal(5)), ("c7", "default", Decimal(1))]
    assert summary(stdout)["rows granted"] == "2"
    assert summary(stdout)["rows rejected"] == "7"
    assert find_inconsistencies(project) == []


def test_dry_run_reports_what_would_happen_and_changes_nothing(project, tmp_path):
    path = write(tmp_path, VALID)
    run(path, "--project", project.name)
    added = write(tmp_path, VALID + "carol,4,,,,,,\n", name="more.csv")

    status, stdout, _ = run(added, "--project", project.name, "--dry-run")

    assert status == 0
    assert stdout.startswith("dry run: nothing was changed\n")
    # Another file, so other derived keys; the row with its own key was granted before.
    assert summary(stdout)["rows would be granted"] == "3"
    assert summary(stdout)["rows would be replayed (granted before)"] == "1"
    assert summary(stdout)["customers would be created"] == "1"
    own_key_row = run(path, "--project", project.name, "--dry-run")[1]
    assert summary(own_key_row)["rows would be replayed (granted before)"] == "3"
    assert len(grants(project)) == 3
    assert not Customer.objects.filter(external_id="carol").exists()


def test_a_rerun_after_success_changes_nothing_and_counts_replays(project, tmp_path):
    path = write(tmp_path, VALID)
    run(path, "--project", project.name)
    before = (grants(project), Customer.objects.count(), Transaction.objects.count())

    status, stdout, _ = run(path, "--project", project.name)

    assert status == 0
    assert summary(stdout)["rows granted"] == "0"
    assert summary(stdout)["rows replayed (granted before)"] == "3"
    assert summary(stdout)["customers created"] == "0"
    assert (grants(project), Customer.objects.count(), Transaction.objects.count()) == before
    assert find_inconsistencies(project) == []


def test_a_key_reused_with_other_terms_refuses_the_file_as_the_api_would(project, tmp_path):
    services.deposit(
        project=project,
        customer_id="alice",
        amount=Decimal(7),
        actor="api_key:x",
        idempotency_key="own-key-1",
    )
    with pytest.raises(IdempotencyConflict):  # what the API answers
        services.deposit(
            project=project,
            customer_id="alice",
            amount=Decimal("0.000001"),
            actor="api_key:x",
            idempotency_key="own-key-1",
        )

    status, _, stderr = run(write(tmp_path, VALID), "--project", project.name)

    assert status == 1
    assert "line 4: idempotency_conflict: " in stderr
    assert len(grants(project)) == 1


def test_repeated_keys_in_one_file_replay_or_conflict_like_repeated_deposits(project, tmp_path):
    text = HEADER + "a,1,,,,,k,\na,1,,,,,k,\na,2,,,,,k,\nb,1,,,,,k,\n"

    status, stdout, stderr = run(write(tmp_path, text), "--project", project.name, "--skip-invalid")

    assert status == 0
    assert summary(stdout)["rows granted"] == "1"
    assert summary(stdout)["rows replayed (granted before)"] == "1"
    assert "line 4: idempotency_conflict: " in stderr
    assert "line 5: transaction_conflict: " in stderr
    assert grants(project) == [("a", "default", Decimal(1))]


def test_profile_columns_create_and_update_customers_as_deposits_do(project, tmp_path):
    text = (
        "customer_id,amount,name,email,metadata\n"
        'a,1,Ann,,"{""plan"": ""gold""}"\n'
        "a,1,,ann@example.com,\n"
        "b,1,Bob,not-an-email,\n"
        'c,1,,,"[1]"\n'
    )

    status, _, stderr = run(write(tmp_path, text), "--project", project.name, "--skip-invalid")

    assert status == 0
    assert "line 4: invalid_request: invalid request (field: email; reason: invalid_email)" in (
        stderr
    )
    assert "line 5: invalid_metadata: " in stderr
    ann = Customer.objects.get(external_id="a")
    assert (ann.name, ann.email, ann.metadata) == ("Ann", "ann@example.com", {"plan": "gold"})


def test_json_lines_are_read_as_deposit_bodies(project, tmp_path):
    text = "\n".join(
        [
            json.dumps({"customer_id": "a", "amount": 1.5, "wallet": "w", "metadata": {"k": 1}}),
            "",
            json.dumps({"customer_id": "b", "amount": "1"}),
            json.dumps({"customer_id": "c", "amount": 1, "color": "red"}),
            "[1]",
        ]
    )

    status, _, stderr = run(
        write(tmp_path, text, "grants.jsonl"), "--project", project.name, "--skip-invalid"
    )

    assert status == 0
    assert grants(project) == [("a", "w", Decimal("1.5"))]
    assert "line 3: invalid_amount: " in stderr
    assert "line 4: invalid_request: invalid request (field: color; reason: unknown_field)" in (
        stderr
    )
    assert "line 5: invalid_json: " in stderr
    assert Customer.objects.get(external_id="a").metadata == {"k": 1}


def test_unknown_or_missing_columns_refuse_the_file_naming_them(project, tmp_path):
    unknown = write(tmp_path, "customer_id,amount,colour,note\na,1,red,x\n")
    with pytest.raises(CommandError, match="unknown_columns: colour, note"):
        run(unknown, "--project", project.name)
    with pytest.raises(CommandError, match="missing_columns: amount"):
        run(write(tmp_path, "customer_id,wallet\na,x\n"), "--project", project.name)
    assert not LedgerEntry.objects.exists()


def test_all_customers_twice_with_one_run_id_grants_each_customer_once(project):
    for customer_id, plan in [("a", "gold"), ("b", "free"), ("c", "gold")]:
        services.deposit(
            project=project,
            customer_id=customer_id,
            amount=Decimal(1),
            actor="api_key:x",
            profile=services.Profile(metadata={"plan": plan}),
        )
    args = ["--project", project.name, "--all-customers", "--amount", "100", "--wallet", "monthly"]
    args += ["--run-id", "2026-12", "--expires-in", "30d", "--batch-size", "2"]

    first = run(*args)
    second = run(*args)
    gold = run(*args[:-4], "--run-id", "gold-bonus", "--where", "metadata.plan=gold")

    assert summary(first[1])["rows granted"] == "3"
    assert summary(second[1])["rows granted"] == "0"
    assert summary(second[1])["rows replayed (granted before)"] == "3"
    assert summary(gold[1])["rows granted"] == "2"
    monthly = CreditAccount.objects.filter(wallet="monthly", customer__project=project)
    assert sorted(monthly.values_list("customer__external_id", flat=True)) == [
        "a", "a", "b", "c", "c",
    ]  # fmt: skip
    assert monthly.filter(expires_at__isnull=False).count() == 3
    assert find_inconsistencies(project) == []


def test_all_customers_arguments_are_validated_as_a_deposit(project):
    with pytest.raises(CommandError, match="invalid_amount"):
        run("--project", project.name, "--all-customers", "--amount", "1.0000001",
            "--wallet", "w", "--run-id", "r")  # fmt: skip
    with pytest.raises(CommandError, match="needs --run-id"):
        run("--project", project.name, "--all-customers", "--amount", "1", "--wallet", "w")


def test_the_service_previews_a_stream_without_writing(project):
    source = StringIO(VALID)
    with GrantFile(BytesFrom(source)) as grant_file:
        errors = []
        tally = bulk.preview(grant_file.rows(project), project=project, on_error=errors.append)

    assert (tally.granted, tally.replayed, tally.rejected, tally.customers_created) == (3, 0, 0, 2)
    assert dict(tally.credits) == {"default": Decimal("10.000001"), "promo": Decimal("2.5")}
    assert errors == []
    assert not Customer.objects.exists()


class BytesFrom:
    """A binary stream over text, as an upload would be read."""

    def __init__(self, text: StringIO):
        self.data = text.getvalue().encode()

    def read(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


KILL_ROWS = 20_000


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_half_way_then_rerun_grants_every_row_exactly_once(project, tmp_path):
    amounts = [Decimal(n % 97 + 1) / 100 for n in range(KILL_ROWS)]
    path = write(
        tmp_path,
        "customer_id,amount\n" + "".join(f"c{n % 5000},{a}\n" for n, a in enumerate(amounts)),
    )
    command = [sys.executable, "manage.py", "bulk_grant", path, "--project", project.name]
    env = {**os.environ, "DATABASE_URL": shared_database_url()}
    entries = LedgerEntry.objects.filter(customer__project=project)

    child = subprocess.Popen(
        [*command, "--batch-size", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not entries.exists():
        assert child.poll() is None, "the command ended before it could be killed"
        assert time.monotonic() < deadline, "the command granted nothing in time"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    granted_before = entries.count()
    assert 0 < granted_before < KILL_ROWS
    assert granted_before % 100 == 0  # whole batches, nothing half-written

    with open(path, "rb") as stdin:  # the same content from standard input: the same keys
        rerun = subprocess.run(
            [*command[:3], "-", *command[4:]],
            cwd=ROOT,
            env=env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert rerun.returncode == 0, rerun.stderr
    assert summary(rerun.stdout)["rows granted"] == str(KILL_ROWS - granted_before)
    assert summary(rerun.stdout)["rows replayed (granted before)"] == str(granted_before)
    assert entries.count() == KILL_ROWS
    assert entries.values("transaction_id").distinct().count() == KILL_ROWS
    assert ledger_total(project) == sum(amounts)
    assert find_inconsistencies(project) == []


def test_each_granted_row_tells_the_projects_webhooks_as_a_deposit_does(project, tmp_path):
    from ledger.webhooks.models import WebhookEndpoint, WebhookEvent

    path = write(tmp_path, VALID)
    WebhookEndpoint.objects.create(project=project, url="http://127.0.0.1:9/hook")

    status, _, stderr = run(path, "--project", project.name)
    run(path, "--project", project.name)  # a rerun replays: no event again

    assert status == 0, stderr
    deposited = [
        (
            event.payload["customer_id"],
            event.payload["data"]["wallet"],
            event.payload["data"]["amount"],
        )
        for event in WebhookEvent.objects.filter(type="credits.deposited").order_by("id")
    ]
    assert [(c, w, Decimal(str(a))) for c, w, a in deposited] == [
        (customer, wallet, amount) for customer, wallet, amount in grants(project)
    ]


def test_a_compressed_file_is_refused_before_any_row_saying_so(project, tmp_path):
    path = tmp_path / "grants.csv.gz"
    path.write_bytes(gzip.compress(b"customer_id,amount\na,1\n"))

    with pytest.raises(CommandError, match=r"unreadable_grant_file: .*\(reason: gzip\)"):
        run(str(path), "--project", project.name)
    assert not LedgerEntry.objects.exists()
