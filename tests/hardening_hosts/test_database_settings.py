"""How the database settings follow the deployment: a bounded pool per gevent worker, and no
prepared statements behind a transaction-pooling pgbouncer. Read in fresh processes, since
settings are read once per process (no database is contacted)."""

import json
import os
import subprocess
import sys

import pytest

from tests.server import ROOT

POSTGRES_URL = "postgres://credits@127.0.0.1:5432/credits"
SHOW_DATABASE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'options': db['OPTIONS'], 'max_age': db['CONN_MAX_AGE'], "
    "'checked': db['CONN_HEALTH_CHECKS']}))"
)
AS_GEVENT_WORKER = "from gevent import monkey; monkey.patch_all(); "


def database_settings(
    env: dict[str, str], prelude: str = "", show: str = SHOW_DATABASE
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", prelude + show],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
            "DJANGO_SETTINGS_MODULE": "credits_project.settings",
            "DATABASE_URL": POSTGRES_URL,
            # A database server needs a shared secret key (the test runs may not set one).
            "SECRET_KEY": "a-secret-key-for-reading-settings-in-a-test-" + "x" * 20,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def shown(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_gevent_worker_keeps_a_bounded_pool_and_other_processes_persistent_connections():
    worker = shown(database_settings({}, prelude=AS_GEVENT_WORKER))
    command = shown(database_settings({}))

    assert worker["options"]["pool"] == {
        "min_size": 2,
        "max_size": 8,
        "timeout": 3.0,
        "reconnect_timeout": 0.5,
    }
    assert worker["max_age"] == 0
    assert worker["checked"] is False
    assert "pool" not in command["options"]
    assert command["max_age"] == 60
    assert command["checked"] is False


def test_the_pool_size_and_wait_are_settable():
    worker = shown(
        database_settings(
            {
                "DATABASE_POOL_SIZE": "3",
                "DATABASE_POOL_TIMEOUT_SECONDS": "1.5",
                "DATABASE_POOL_RECONNECT_SECONDS": "2",
            },
            prelude=AS_GEVENT_WORKER,
        )
    )

    assert worker["options"]["pool"] == {
        "min_size": 2,
        "max_size": 3,
        "timeout": 1.5,
        "reconnect_timeout": 2.0,
    }


def test_behind_a_transaction_pooler_nothing_is_prepared_on_the_server():
    direct = shown(database_settings({}))
    pooled = shown(database_settings({"DATABASE_POOLER": "transaction"}))

    assert direct["options"]["prepare_threshold"] == 2
    assert "prepare_threshold" not in pooled["options"]
    assert "server_side_binding" not in pooled["options"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_POOLER": "transaction", "DATABASE_PREPARED_STATEMENTS": "true"},
            "DATABASE_PREPARED_STATEMENTS cannot be on with DATABASE_POOLER=transaction",
        ),
        ({"DATABASE_POOLER": "statement"}, "DATABASE_POOLER must be empty"),
    ],
)
def test_contradictory_database_settings_stop_the_start(env, message):
    result = database_settings(env)

    assert result.returncode != 0
    assert message in result.stderr


def test_standbys_for_reads_take_the_primarys_pool_and_route_through_the_router():
    replica_url = "postgres://credits@127.0.0.1:5433,127.0.0.1:5434/credits"
    shown_replica = (
        "import json, django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['replica']; "
        "print(json.dumps({'hosts': db['HOST'], 'options': db['OPTIONS'], "
        "'routers': settings.DATABASE_ROUTERS}))"
    )
    result = database_settings(
        {"DATABASE_REPLICA_URL": replica_url + "?target_session_attrs=prefer-standby"},
        prelude=AS_GEVENT_WORKER,
        show=shown_replica,
    )
    replica = shown(result)

    assert replica["hosts"] == "127.0.0.1,127.0.0.1"
    assert replica["options"]["target_session_attrs"] == "prefer-standby"
    assert replica["options"]["pool"]["max_size"] == 8
    assert replica["routers"] == ["credits_project.replicas.StandbyRouter"]
