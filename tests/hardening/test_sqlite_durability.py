"""The embedded SQLite database: commits synced before they are acknowledged, files private."""

import json
import stat

from tests.hardening.support import manage

# Run inside a service process: write once (so the WAL and shared-memory files exist, while
# this connection holds them open), then report the connection's pragmas and the files' modes.
PROBE = """
import json, os
from django.contrib.auth.models import Group
from django.db import connection
Group.objects.create(name="probe")
with connection.cursor() as cursor:
    cursor.execute("PRAGMA synchronous")
    synchronous = cursor.fetchone()[0]
    cursor.execute("PRAGMA journal_mode")
    journal_mode = cursor.fetchone()[0]
name = connection.settings_dict["NAME"]
modes = {suffix: os.stat(name + suffix).st_mode for suffix in ("", "-wal", "-shm")}
print(json.dumps({"synchronous": synchronous, "journal_mode": journal_mode, "modes": modes}))
"""
FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def probe(data_dir) -> dict:
    assert manage("migrate", "--noinput", "-v0", data_dir=data_dir).returncode == 0
    result = manage("shell", "-c", PROBE, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_each_connection_commits_with_synchronous_full_in_wal_mode(tmp_path):
    found = probe(tmp_path)

    assert (found["synchronous"], found["journal_mode"]) == (FULL, "wal")


def test_the_database_and_its_wal_and_shm_files_are_readable_by_their_owner_alone(tmp_path):
    found = probe(tmp_path)

    assert {suffix: stat.S_IMODE(mode) for suffix, mode in found["modes"].items()} == {
        "": 0o600,
        "-wal": 0o600,
        "-shm": 0o600,
    }
