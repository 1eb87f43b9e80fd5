"""Fuzzing every operation of `/v1/openapi.json` with schemathesis against the running service."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
]
# Bounded by the number of examples, not by time, so a slow machine tests just as much; the
# timeout only stops a hung run.
MAX_EXAMPLES = 50
HANG_TIMEOUT_SECONDS = 900


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_contract_violation(service, api_key, tmp_path: Path):
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [
        st,
        "run",
        f"{service.base_url}/v1/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261126",
        "--generation-deterministic",
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {api_key}",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=HANG_TIMEOUT_SECONDS, cwd=tmp_path
    )
    report = result.stdout + result.stderr
    print(report)
    assert result.returncode == 0, report[-6000:]
    assert "No issues found" in report or "passed" in report.lower()
