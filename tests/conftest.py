"""Shared fixtures: projects and keys, the service under gunicorn, HTTP clients."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection
from hypothesis import HealthCheck, settings

from customers.models import ApiKey, Project

ROOT = Path(__file__).resolve().parent.parent

# One fixed, bounded profile: derandomized so that a run is repeatable and its time bounded.
settings.register_profile(
    "ci",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def project(db) -> Project:
    return Project.objects.create(name=f"project-{Project.objects.count() + 1}")


@pytest.fixture
def make_key(db):
    def make(project: Project) -> str:
        _, raw_key = ApiKey.objects.create_key(project=project, name="test")
        return raw_key

    return make


@pytest.fixture
def api_key(project, make_key) -> str:
    return make_key(project)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_database_url() -> str:
    """The URL of the database pytest-django set up, for a server process to share."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Service:
    """The service under gunicorn in a subprocess, on the test database."""

    def __init__(self, workers: int):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": shared_database_url(),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_ACCESSLOG": "",
            "WHITENOISE_USE_FINDERS": "true",
        }
        self.log = open(django_settings.DATA_DIR / f"gunicorn-{self.port}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "credits_project.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def service(django_db_setup, django_db_blocker) -> Iterator[Service]:
    """gunicorn on the test database: 4 workers on PostgreSQL, 2 on SQLite."""
    with django_db_blocker.unblock():
        workers = 4 if is_postgres() else 2
        server = Service(workers)
    yield server
    server.stop()


@pytest.fixture
def http(service, api_key, transactional_db) -> Iterator[httpx.Client]:
    """An HTTP client for the service, authenticated with a fresh project's key.

    Tests using it run outside a wrapping transaction so the server sees their data.
    """
    with httpx.Client(
        base_url=service.base_url,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ) as client:
        yield client
