"""The HA tests run against a pg_auto_failover formation of their own (tests/ha/formation.py),
started once for the package and stopped after it. They are marked `ha` (select them with
`-m ha`) and `postgres_only`: they run in the PostgreSQL round of `make test` and are
deselected (not skipped) in the SQLite round, which has no standbys to fail over to."""

import uuid
from collections.abc import Iterator

import pytest

from tests.ha.formation import Formation
from tests.ha.support import manage


@pytest.fixture(scope="package")
def formation() -> Iterator[Formation]:
    """A monitor and three nodes, `node1` the primary, with the service's tables migrated."""
    cluster = Formation()
    try:
        cluster.start()
        manage(cluster.database_url(), "migrate", "--noinput", "-v0")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def project_key(formation) -> tuple[str, str]:
    """A fresh project on the formation, and an API key of it: (project name, raw key)."""
    name = f"ha-{uuid.uuid4().hex[:8]}"
    output = manage(formation.database_url(), "create_api_key", "--project", name)
    return name, output.strip().splitlines()[-1]
