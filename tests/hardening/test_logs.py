"""What gunicorn and the service write to their logs: one line for a disallowed host, and no
credentials from URLs in the access log."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.server import Service

SECRETS = [f"SECRET{uuid.uuid4().hex}" for _ in range(6)]


@pytest.fixture(scope="module")
def logged_service(django_db_setup, django_db_blocker) -> Iterator[tuple[Service, Path]]:
    """gunicorn (one worker) with its access log in a file of its own."""
    access_log = settings.DATA_DIR / f"access-{uuid.uuid4().hex}.log"
    with django_db_blocker.unblock():
        server = Service(1, env={"GUNICORN_ACCESSLOG": str(access_log)})
    yield server, access_log
    server.stop()
    access_log.unlink(missing_ok=True)


def wait_for_line(path: Path, marker: str) -> list[str]:
    """The lines of `path` holding `marker`, once there is one (bounded wait)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in path.read_text().splitlines() if marker in line]
        if lines:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never appeared in {path}")


def test_a_disallowed_host_logs_one_line_without_a_traceback(logged_service):
    server, _ = logged_service
    host = f"scan-{uuid.uuid4().hex[:8]}.example"
    error_log = Path(server.log.name)
    before = error_log.read_text()

    for path in ("/admin/login/", "/v1/health"):
        response = httpx.get(f"{server.base_url}{path}", headers={"Host": host}, timeout=10)
        assert response.status_code == 400

    lines = wait_for_line(error_log, host)
    written = error_log.read_text()[len(before) :]
    assert len(lines) == 2, written
    assert all("django.security.DisallowedHost" in line for line in lines)
    assert "Traceback" not in written
    assert len(written.splitlines()) == 2, written


def test_the_access_log_redacts_credentials_in_urls(logged_service):
    server, access_log = logged_service
    marker = uuid.uuid4().hex
    query = (
        f"api_key={SECRETS[0]}&limit=5&marker={marker}&token={SECRETS[1]}"
        f"&X-Amz-Signature={SECRETS[2]}&clientSecret={SECRETS[3]}&password={SECRETS[4]}"
        f"&access_token={SECRETS[5]}&design=plain"
    )
    httpx.get(
        f"{server.base_url}/healthz?{query}",
        headers={"Referer": f"https://app.example/page?key={SECRETS[0]}&marker={marker}"},
        timeout=10,
    )

    (line,) = wait_for_line(access_log, marker)
    assert [secret for secret in SECRETS if secret in access_log.read_text()] == []
    assert "api_key=[redacted]&limit=5&" in line
    assert "X-Amz-Signature=[redacted]" in line
    assert "design=plain" in line
    assert "/page?key=[redacted]" in line
    assert '" 200 ' in line
