"""gunicorn's gevent workers stopped as a terminal stops them: Ctrl-C sends SIGINT to the
master and every worker at once (one process group)."""

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.server import Service


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_gunicorn_cleanly_without_a_traceback():
    service = Service(2, session=True)
    assert httpx.get(f"{service.base_url}/healthz", timeout=10).status_code == 200

    os.killpg(service.process.pid, signal.SIGINT)
    status = service.process.wait(timeout=40)
    service.log.close()

    log = Path(service.log.name).read_text()
    assert status == 0, log
    assert "Worker exiting" in log and "Shutting down: Master" in log, log
    assert "Traceback" not in log and "SystemExit" not in log, log
