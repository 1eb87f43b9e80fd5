"""Bulk grants uploaded in the console: the dry run first, then the grant, as the staff user."""

import gzip
import io
import json
import os
import re
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from ledger.models import LedgerEntry
from ledger.selectors.consistency import find_inconsistencies
from tests.support import ProjectFactory

pytestmark = pytest.mark.django_db

URL = reverse("credits_bulk_grant")
HEADER = "customer_id,amount,wallet,description\n"
VALID = HEADER + "alice,10,default,welcome\nbob,2.5,promo,\nalice,0.000001,,\n"


def zip_of(content: bytes) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("grants.csv", content)
    return archive.getvalue()


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path) -> Path:
    """Each test's uploads in a directory of its own."""
    settings.DATA_DIR = tmp_path
    return tmp_path


def upload(client, project, text: str, **fields):
    data = {"project": project.pk, "file": SimpleUploadedFile("grants.csv", text.encode())}
    return client.post(URL, {**data, **fields})


def confirm(client, dry_run):
    form = dry_run.context["token"], dry_run.context["project"].pk
    data = {"upload": form[0], "project": form[1]}
    if dry_run.context["skip_invalid"]:
        data["skip_invalid"] = "on"
    return client.post(URL, data)


def grants(project) -> list[tuple[str, str, Decimal, str]]:
    return [
        (e.customer.external_id, e.account.wallet, e.amount, e.actor)
        for e in LedgerEntry.objects.filter(customer__project=project).order_by("id")
    ]


def test_an_upload_shows_the_dry_run_and_grants_nothing_until_confirmed(operator_client, project):
    dry_run = upload(operator_client, project, VALID)

    assert dry_run.status_code == 200
    tally = dry_run.context["dry_run"]["tally"]
    assert (tally.granted, tally.replayed, tally.rejected, tally.customers_created) == (3, 0, 0, 2)
    assert dry_run.context["dry_run"]["credits"] == [
        ("default", Decimal("10.000001")),
        ("promo", Decimal("2.5")),
    ]
    assert b"Grant 3 row(s)" in dry_run.content
    assert not LedgerEntry.objects.exists()

    granted = confirm(operator_client, dry_run)

    assert granted.status_code == 302
    assert grants(project) == [
        ("alice", "default", Decimal(10), "staff:alice"),
        ("bob", "promo", Decimal("2.5"), "staff:alice"),
        ("alice", "default", Decimal("0.000001"), "staff:alice"),
    ]
    assert find_inconsistencies() == []
    assert not list((Path(settings.DATA_DIR) / "uploads").iterdir())


def test_confirming_twice_or_uploading_the_same_file_again_grants_once(operator_client, project):
    dry_run = upload(operator_client, project, VALID)
    confirm(operator_client, dry_run)

    again = confirm(operator_client, dry_run)
    second_upload = upload(operator_client, project, VALID)

    assert again.status_code == 302
    assert len(grants(project)) == 3
    tally = second_upload.context["dry_run"]["tally"]
    assert (tally.granted, tally.replayed) == (0, 3)
    assert second_upload.context["token"] is None  # nothing left to grant


def test_bad_rows_are_listed_by_line_and_nothing_can_be_granted(operator_client, project):
    text = HEADER + "alice,10,,\n,5,,\ncarol,-1,,\ndave,1.0000001,,\n"

    dry_run = upload(operator_client, project, text)

    assert dry_run.context["dry_run"]["errors"] == [
        "line 3: customer_id_required: customer_id is required (field: customer_id)",
        "line 4: amount_must_be_positive: amount must be a positive number (field: amount)",
        "line 5: invalid_amount: amount must be a number with at most 6 decimal places and "
        "at most 10^12 (field: amount)",
    ]
    assert dry_run.context["token"] is None
    assert b"bulk-grant-confirm" not in dry_run.content
    assert not LedgerEntry.objects.exists()


def test_skip_invalid_grants_the_valid_rows(operator_client, project):
    text = HEADER + "alice,10,,\n,5,,\n"

    dry_run = upload(operator_client, project, text, skip_invalid="on")
    confirm(operator_client, dry_run)

    assert grants(project) == [("alice", "default", Decimal(10), "staff:alice")]


def test_a_file_with_an_unknown_column_is_refused_naming_it(operator_client, project):
    response = upload(operator_client, project, "customer_id,amount,colour\nalice,1,red\n")

    assert response.status_code == 200
    assert "colour" in str(response.context["form"].errors["file"])
    assert not LedgerEntry.objects.exists()


def test_a_file_of_more_than_ten_thousand_rows_is_for_the_command(operator_client, project):
    text = HEADER + "".join(f"c{i},1,,\n" for i in range(10_001))

    response = upload(operator_client, project, text)

    assert "use the command" in str(response.context["form"].errors["file"])
    assert not LedgerEntry.objects.exists()


def test_support_staff_cannot_reach_the_bulk_grant(support_client, project):
    assert support_client.get(URL).status_code == 403
    assert upload(support_client, project, VALID).status_code == 403
    assert not LedgerEntry.objects.exists()


def test_a_confirmation_naming_no_project_or_a_bad_one_does_nothing(operator_client, project):
    dry_run = upload(operator_client, project, VALID)

    for bad in ("abc", "", "999999"):
        data = {"upload": dry_run.context["token"], "project": bad}
        assert operator_client.post(URL, data).status_code == 302

    assert not LedgerEntry.objects.exists()
    assert confirm(operator_client, dry_run).status_code == 302  # the upload is still there
    assert len(grants(project)) == 3


def test_rows_are_counted_as_parsed_whatever_ends_the_lines(operator_client, project):
    text = "customer_id,amount\r" + "".join(f"c{i},1\r" for i in range(10_001))

    response = upload(operator_client, project, text)

    assert "use the command" in str(response.context["form"].errors["file"])


def test_a_confirmation_grants_into_the_previewed_project_with_the_previewed_options_only(
    operator_client, project
):
    other = ProjectFactory()
    dry_run = upload(operator_client, project, VALID)
    token = dry_run.context["token"]

    for changed in (
        {"project": other.pk},  # another tenant's project
        {"project": project.pk, "skip_invalid": "on"},  # options the dry run did not have
    ):
        refused = operator_client.post(URL, {"upload": token, **changed}, follow=True)
        assert "does not match its dry run" in refused.content.decode()
    assert not LedgerEntry.objects.exists()

    assert confirm(operator_client, dry_run).status_code == 302  # as previewed, it still grants
    assert len(grants(project)) == 3 and grants(other) == []


def test_a_confirmation_without_skip_invalid_cannot_drop_the_dry_runs_option(
    operator_client, project
):
    dry_run = upload(operator_client, project, HEADER + "alice,10,,\n,5,,\n", skip_invalid="on")

    refused = operator_client.post(
        URL, {"upload": dry_run.context["token"], "project": project.pk}, follow=True
    )

    assert "does not match its dry run" in refused.content.decode()
    assert not LedgerEntry.objects.exists()


def test_a_token_edited_to_name_another_project_or_file_is_refused(operator_client, project):
    other = ProjectFactory()
    dry_run = upload(operator_client, project, VALID)
    token = dry_run.context["token"]
    payload, rest = token.split(":", 1)
    data = json.loads(signing.b64_decode(payload.encode()))
    forged = signing.b64_encode(json.dumps({**data, "project": other.pk}).encode()).decode()

    response = operator_client.post(
        URL, {"upload": f"{forged}:{rest}", "project": other.pk}, follow=True
    )

    assert "nothing was done" in response.content.decode()
    assert not LedgerEntry.objects.exists()


def test_a_stored_upload_changed_after_its_dry_run_is_not_granted(operator_client, project):
    dry_run = upload(operator_client, project, VALID)
    (stored,) = (Path(settings.DATA_DIR) / "uploads").iterdir()
    stored.write_bytes((HEADER + "mallory,1000,,\n").encode())

    response = confirm(operator_client, dry_run)

    assert response.status_code == 302
    assert not LedgerEntry.objects.exists()


GOOD_ROWS = "customer_id,amount\nalice,1\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (gzip.compress(GOOD_ROWS.encode()), "gzip"),
        (zip_of(GOOD_ROWS.encode()), "zip"),
        (GOOD_ROWS.encode("utf-16"), "utf16"),  # with its byte order mark
        (GOOD_ROWS.encode("utf-16-le"), "binary"),  # without: NULs between the letters
        (bytes(range(256)) * 8, "binary"),
        (b"\xff\xd8\xff\xe0\x10JFIF,amount\n", "not_utf8"),  # a JPEG's start, no NUL in it
        ("customer_id,montant_réglé\nalice,1\n".encode("latin-1"), "not_utf8"),
    ],
)
def test_a_file_that_is_not_utf8_text_is_a_form_error_saying_what_it_is(
    operator_client, project, data_dir, content, reason
):
    data = {"project": project.pk, "file": SimpleUploadedFile("grants.csv", content)}

    response = operator_client.post(URL, data)

    assert response.status_code == 200
    error = str(response.context["form"].errors["file"])
    assert "unreadable_grant_file" in error and f"reason: {reason}" in error, error
    assert "CSV or JSON Lines in UTF-8" in error
    assert not LedgerEntry.objects.exists()
    assert not list((data_dir / "uploads").iterdir())


def test_a_header_of_a_hundred_thousand_unknown_columns_names_a_few(operator_client, project):
    header = ",".join(f"col{n}" for n in range(100_000))

    response = upload(operator_client, project, f"customer_id,amount,{header}\nalice,1\n")

    error = str(response.context["form"].errors["file"])
    assert "unknown_columns: col0, col1, col2, col3, col4, and 99995 more" in error, error[:300]
    assert "col5" not in error
    assert len(response.content) < 20_000


def test_a_header_repeating_a_column_a_hundred_thousand_times_is_refused_at_once(
    operator_client, project
):
    started = time.monotonic()

    response = upload(operator_client, project, "customer_id,amount" + ",wallet" * 100_000 + "\n")

    assert "repeated_columns: wallet" in str(response.context["form"].errors["file"])
    assert time.monotonic() - started < 10  # counted once, not once per column


def aged(path: Path, seconds: float) -> Path:
    """`path`, made if need be, last written `seconds` ago."""
    path.touch()
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_uploads_left_unconfirmed_for_a_day_are_removed_by_the_next_upload(
    operator_client, project, data_dir
):
    abandoned = upload(operator_client, project, VALID)
    recent = upload(operator_client, project, HEADER + "carol,1,,\n")
    old_file, recent_file = sorted(
        (data_dir / "uploads").iterdir(), key=lambda p: p.stat().st_mtime
    )
    aged(old_file, 24 * 3600 + 60)
    aged(recent_file, 23 * 3600)

    upload(operator_client, project, HEADER + "dave,1,,\n")  # a third, the next day

    left = set((data_dir / "uploads").iterdir())
    assert old_file not in left and recent_file in left and len(left) == 2
    assert confirm(operator_client, abandoned).status_code == 302
    assert not LedgerEntry.objects.exists()  # the abandoned dry run grants nothing any more
    assert confirm(operator_client, recent).status_code == 302
    assert grants(project) == [("carol", "default", Decimal(1), "staff:alice")]


def test_the_scheduler_pass_removes_day_old_uploads_and_keeps_younger_ones(
    data_dir, transactional_db
):
    stored = data_dir / "uploads"
    stored.mkdir()
    old = aged(stored / ("1-" + "a" * 32), 24 * 3600 + 1)
    half_granted = aged(stored / ("1-" + "b" * 32 + ".granting"), 3 * 24 * 3600)
    young = aged(stored / ("1-" + "c" * 32), 3600)
    for path in (old, half_granted, young):
        assert path.exists()

    call_command("run_scheduler", "--once", stdout=io.StringIO())

    assert list(stored.iterdir()) == [young]


def test_with_one_project_the_form_has_it_chosen_and_with_two_asks(operator_client, project):
    one = operator_client.get(URL).content.decode()
    options = re.findall(r"<option[^>]*>[^<]*</option>", one)
    assert options == [f'<option value="{project.pk}" selected>{project.name}</option>']

    ProjectFactory()
    two = re.findall(r"<option[^>]*>", operator_client.get(URL).content.decode())
    assert len(two) == 3 and two[0] == '<option value="" selected>'


def test_after_confirming_the_ledger_shows_this_batchs_grants_only(operator_client, project):
    confirm(operator_client, upload(operator_client, project, VALID))
    second = upload(operator_client, project, HEADER + "carol,7,,second batch\n")

    granted = confirm(operator_client, second)
    listed = operator_client.get(granted.url)

    entries = listed.context["cl"].result_list
    assert [(e.customer.external_id, e.amount) for e in entries] == [("carol", Decimal(7))]
    assert len(grants(project)) == 4
