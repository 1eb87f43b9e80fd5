"""Bulk grants from the console: upload the `bulk_grant` command's file, read its dry run,
then confirm. The same services grant (`ledger.services.bulk`), as the staff user.

The upload is kept, private, under `DATA_DIR/uploads` between the dry run and the
confirmation (a day at most: `ledger.files.uploads`), named by a random name and its uploader;
confirming reads it again. What the dry run previewed (that file and its content's hash, the
project, the options) is signed into the confirmation's token (`Upload`), so a confirming POST
grants exactly what was previewed or nothing. Its rows carry the keys the command would derive
from the file, so confirming twice, or running the command on the same file afterwards, grants
each row once.
"""

import dataclasses
import hashlib
import os
import secrets
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from credits_project.errors import ServiceError
from customers.models import Project
from ledger.admin.display import can_act
from ledger.files import uploads
from ledger.files.grants import GrantFile
from ledger.services import bulk
from ledger.services.bulk import RowError

MAX_ROWS = 10_000
MAX_BYTES = 10 * 1024 * 1024
ERRORS_SHOWN = 200


class UploadForm(forms.Form):
    project = forms.ModelChoiceField(Project.objects.order_by("name"))
    file = forms.FileField(
        help_text="CSV with a header row (customer_id, amount, and any of wallet, source, "
        "starts_at, expires_at, idempotency_key, business_type, description, name, email, "
        f"metadata), or JSON Lines; at most {MAX_ROWS:,} rows."
    )
    skip_invalid = forms.BooleanField(
        required=False, help_text="Grant the valid rows and report the others."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # With one project there is nothing to choose: it is chosen, not a blank to fill.
        projects = list(self.fields["project"].queryset[:2])
        if len(projects) == 1:
            self.fields["project"].empty_label = None
            self.fields["project"].initial = projects[0].pk

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_BYTES // 2**20} MiB.")
        return upload


@dataclass(frozen=True, slots=True)
class Upload:
    """What a dry run previewed and its confirmation grants: the stored file (`name`, and the
    SHA-256 of its content), the project and the options. Signed into the confirmation's token
    for the user who uploaded it."""

    name: str
    project: int
    skip_invalid: bool
    digest: str

    def token(self, request: HttpRequest) -> str:
        return signing.dumps(dataclasses.asdict(self), salt=token_salt(request))

    @classmethod
    def of_token(cls, request: HttpRequest, token: str) -> "Upload | None":
        """The upload a token names, or None for a token that is not one of ours, for
        another user, or older than an upload is kept."""
        try:
            fields = signing.loads(
                token, salt=token_salt(request), max_age=uploads.LIFETIME_SECONDS
            )
            return cls(**fields)
        except (signing.BadSignature, TypeError, ValueError):
            return None

    def confirmed_by(self, form: dict) -> bool:
        """Whether a confirming POST asks for what the dry run previewed."""
        return (
            form.get("project") == str(self.project)
            and (form.get("skip_invalid") == "on") == self.skip_invalid
        )


def token_salt(request: HttpRequest) -> str:
    return f"credits.bulk_grant.upload:{request.user.pk}"


def bulk_grant_view(request: HttpRequest) -> HttpResponse:
    if not can_act(request):
        raise PermissionDenied
    if request.method == "POST" and "upload" in request.POST:
        return confirmed(request)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, form=form)
    uploads.remove_abandoned()
    name = secrets.token_hex(16)
    stored = upload_path(request, name)
    stored.parent.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256()
    with os.fdopen(os.open(stored, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as copy:
        for chunk in form.cleaned_data["file"].chunks():
            digest.update(chunk)
            copy.write(chunk)
    project, skip_invalid = form.cleaned_data["project"], form.cleaned_data["skip_invalid"]
    upload = Upload(name, project.pk, skip_invalid, digest.hexdigest())
    dry_run = dry_run_of(stored, project)
    if dry_run["too_many"]:
        stored.unlink()
        form.add_error("file", f"The file has more than {MAX_ROWS:,} rows: use the command.")
        return render(request, form=form)
    if dry_run["file_error"] is not None:
        stored.unlink()
        form.add_error("file", dry_run["file_error"])
        return render(request, form=form)
    can_confirm = dry_run["tally"].granted > 0 and (skip_invalid or not dry_run["errors"])
    if not can_confirm:
        stored.unlink()
    return render(
        request,
        form=None,
        dry_run=dry_run,
        project=project,
        skip_invalid=skip_invalid,
        token=upload.token(request) if can_confirm else None,
    )


def confirmed(request: HttpRequest) -> HttpResponse:
    again = HttpResponseRedirect(reverse("credits_bulk_grant"))
    upload = Upload.of_token(request, request.POST["upload"])
    if upload is not None and not upload.confirmed_by(request.POST):
        messages.error(
            request,
            "This confirmation does not match its dry run (another project or options): "
            "nothing was granted.",
        )
        return again
    project = Project.objects.filter(pk=upload.project).first() if upload else None
    claimed = None
    if project is not None:
        # Claimed by renaming: of two confirmations at once, one finds the file gone.
        stored = upload_path(request, upload.name)
        claimed = stored.with_name(stored.name + ".granting")
        try:
            stored.rename(claimed)
        except FileNotFoundError:
            claimed = None
    if claimed is None:
        messages.info(request, "This upload was already granted or discarded; nothing was done.")
        return again
    stored = claimed
    actor = f"staff:{request.user.get_username()}"
    errors: list[RowError] = []
    with stored.open("rb") as source, GrantFile(source) as grant_file:
        reference = grant_file.reference(project)
        if grant_file.digest != upload.digest:
            stored.unlink()
            messages.error(
                request, "The stored upload changed after its dry run: nothing was granted."
            )
            return again
        if not upload.skip_invalid:
            # The dry run was clean, but the credits may have changed since (a key used).
            bulk.preview(grant_file.rows(project), project=project, on_error=errors.append)
        if errors:
            tally = None
        else:
            tally = bulk.apply(
                grant_file.rows(project),
                project=project,
                reference=reference,
                actor=actor,
                on_error=errors.append,
            )
    stored.unlink(missing_ok=True)
    if tally is None:
        messages.error(request, f"{len(errors)} row(s) are refused now: nothing was granted.")
        return again
    summary = (
        f"Bulk grant: {tally.granted} row(s) granted, {tally.replayed} replayed, "
        f"{tally.rejected} refused; "
        + ", ".join(f"{wallet} {amount}" for wallet, amount in sorted(tally.credits.items()))
    )
    admin.site._registry[Project].log_change(request, project, summary)
    messages.success(request, summary)
    if tally.rejected:
        messages.warning(request, bulk.REFUSED_ROWS_ADVICE)
    # This batch's entries (every one notes its reference), not every grant by this user.
    of_batch = {"bulk_grant": reference, "customer__project__id__exact": project.pk}
    return HttpResponseRedirect(
        reverse("admin:ledger_ledgerentry_changelist") + "?" + urlencode(of_batch)
    )


def dry_run_of(stored: Path, project: Project) -> dict:
    errors: list[RowError] = []
    with stored.open("rb") as source, GrantFile(source) as grant_file:
        try:
            # Rows as parsed, not lines counted: a CSV may end its lines with a bare CR.
            if sum(1 for _ in islice(grant_file.rows(project), MAX_ROWS + 1)) > MAX_ROWS:
                return {"too_many": True, "file_error": None}
            tally = bulk.preview(grant_file.rows(project), project=project, on_error=errors.append)
        except ServiceError as error:  # the file as a whole (its header) is not valid
            message = str(RowError("file", error)).removeprefix("file: ")
            return {"too_many": False, "file_error": message}
    return {
        "too_many": False,
        "file_error": None,
        "tally": tally,
        "credits": sorted(tally.credits.items()),
        "errors": [str(error) for error in errors[:ERRORS_SHOWN]],
        "more_errors": max(len(errors) - ERRORS_SHOWN, 0),
    }


def upload_path(request: HttpRequest, name: str) -> Path:
    return uploads.uploads_dir() / f"{request.user.pk}-{name}"


def render(request: HttpRequest, **context) -> HttpResponse:
    return TemplateResponse(
        request,
        "admin/ledger/bulk_grant.html",
        {
            **admin.site.each_context(request),
            "title": "Bulk grant",
            "max_rows": MAX_ROWS,
            **context,
        },
    )


def bulk_grant_urls() -> list:
    """Mounted before the admin's own URLs (under `admin/`), behind its login."""
    return [
        path(
            "credits-bulk-grant/", admin.site.admin_view(bulk_grant_view), name="credits_bulk_grant"
        )
    ]
