"""Management commands: create_api_key, revoke_api_key, bootstrap_demo."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from customers.models import ApiKey, Project

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def health(raw_key: str) -> int:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}").get("/v1/health").status_code


def test_create_api_key_prints_a_working_key_alone_on_the_last_stdout_line():
    stdout, _ = run("create_api_key", "--project", "acme")

    raw_key = stdout.splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}", raw_key)
    key = ApiKey.objects.get(prefix=raw_key.split(".", 1)[0])
    assert key.project.name == "acme"
    assert raw_key not in (key.hashed_key, key.id)
    assert health(raw_key) == 200


def test_create_api_key_creates_the_project_once_and_reuses_it():
    first, _ = run("create_api_key", "--project", "acme")
    second, _ = run("create_api_key", "--project", "acme", "--name", "ci")

    assert Project.objects.filter(name="acme").count() == 1
    assert ApiKey.objects.filter(project__name="acme").count() == 2
    assert first.splitlines()[-1] != second.splitlines()[-1]
    assert ApiKey.objects.get(prefix=second.splitlines()[-1].split(".")[0]).name == "ci"


def test_create_api_key_requires_a_project():
    with pytest.raises(CommandError):
        run("create_api_key")


def test_keys_of_one_project_see_each_others_customers(project, make_key):
    first = Client(HTTP_AUTHORIZATION=f"Bearer {make_key(project)}")
    stdout, _ = run("create_api_key", "--project", project.name)
    second = Client(HTTP_AUTHORIZATION=f"Bearer {stdout.splitlines()[-1]}")

    first.post("/v1/customers/deposit", {"customer_id": "c1", "amount": 2}, "application/json")

    assert second.get("/v1/customers/c1").json()["balance"]["total"] == 2


def test_revoke_api_key_revokes_by_prefix_and_the_next_request_is_refused(project, make_key):
    raw_key = make_key(project)
    prefix = raw_key.split(".", 1)[0]
    assert health(raw_key) == 200

    stdout, _ = run("revoke_api_key", prefix)

    key = ApiKey.objects.get(prefix=prefix)
    assert (key.revoked, key.revoked_at is not None) == (True, True)
    assert prefix in stdout
    assert health(raw_key) == 401


def test_revoke_api_key_accepts_the_whole_key_and_is_idempotent(project, make_key):
    raw_key = make_key(project)
    run("revoke_api_key", raw_key)
    revoked_at = ApiKey.objects.get(prefix=raw_key.split(".", 1)[0]).revoked_at

    stdout, _ = run("revoke_api_key", raw_key)

    assert "already revoked" in stdout
    assert ApiKey.objects.get(prefix=raw_key.split(".", 1)[0]).revoked_at == revoked_at


def test_revoke_api_key_of_an_unknown_prefix_fails(project, make_key):
    raw_key = make_key(project)

    with pytest.raises(CommandError, match="No API key"):
        run("revoke_api_key", "zzzzzzzz")

    assert health(raw_key) == 200


def test_bootstrap_demo_first_run_creates_a_project_key_and_admin(client, monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9123")  # as `make run PORT=9123` sets it
    stdout, _ = run("bootstrap_demo")

    assert "http://127.0.0.1:9123/admin/" in stdout

    match = re.search(r"API key:\s+(\S+)", stdout)
    assert match, stdout
    raw_key = match[1]
    assert ApiKey.objects.get(prefix=raw_key.split(".", 1)[0]).project.name == "demo"
    assert health(raw_key) == 200
    password = re.search(r"password '([^']+)'", stdout)[1]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert client.login(username="admin", password=password)


def test_bootstrap_demo_later_runs_change_nothing():
    run("bootstrap_demo")
    counts = (Project.objects.count(), ApiKey.objects.count(), get_user_model().objects.count())

    stdout, _ = run("bootstrap_demo")

    assert "Already set up" in stdout
    assert not re.search(r"API key:\s+\S+\.\S+", stdout)
    assert (
        (
            Project.objects.count(),
            ApiKey.objects.count(),
            get_user_model().objects.count(),
        )
        == counts
        == (1, 1, 1)
    )
