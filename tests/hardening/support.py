"""Runs `manage.py` in a fresh process with a chosen environment, as a host would start it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Settings a test controls. These are set empty unless given (empty reads as unset), so that
# neither this process's environment nor a developer's `.env` (read without overriding) can
# change the outcome...
BLANKED = (
    "DATABASE_URL",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "DEBUG",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
)
# ...and these, which an empty value would not leave at their default, are left out.
REMOVED = ("ALLOWED_HOSTS", "SECURE_HSTS_SECONDS", "TRUSTED_PROXY_COUNT")


def manage(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    inherited = {key: value for key, value in os.environ.items() if key not in BLANKED + REMOVED}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**inherited, **dict.fromkeys(BLANKED, ""), "DATA_DIR": str(data_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
