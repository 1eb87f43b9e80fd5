"""Shared fixtures: projects and keys, the service under gunicorn, HTTP clients."""

import os
from collections.abc import Iterator

import httpx
import pytest
from django.db import connection
from hypothesis import HealthCheck, settings

from customers.models import Project
from tests.server import Service

# The shared helpers' assertions explain their failures like the tests' own.
pytest.register_assert_rewrite("tests.support", "tests.ledger.support")

from tests.support import ApiKeyFactory, ProjectFactory  # noqa: E402

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres_only` (row locks, standbys, pgbouncer) are deselected, not
    skipped, on SQLite."""
    if is_postgres():
        return
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("postgres_only") else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture
def project(db) -> Project:
    return ProjectFactory()


@pytest.fixture
def make_key(db):
    def make(project: Project) -> str:
        return ApiKeyFactory(project=project).raw_key

    return make


@pytest.fixture
def api_key(project, make_key) -> str:
    return make_key(project)


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
