"""Files uploaded to the console and kept between a dry run and its confirmation, privately,
under `DATA_DIR/uploads`. One left unconfirmed (the page closed, the operator gone) is removed
after a day, by the next upload or the scheduler's next pass, whichever comes first; its
confirmation's token expires with it."""

import time
from pathlib import Path

from django.conf import settings

LIFETIME_SECONDS = 24 * 3600


def uploads_dir() -> Path:
    return Path(settings.DATA_DIR) / "uploads"


def remove_abandoned(*, now: float | None = None) -> int:
    """Delete the uploads last written more than a day before `now` (a Unix time), and any
    confirmation that died half-way (`.granting`) as old; the number deleted."""
    cutoff = (time.time() if now is None else now) - LIFETIME_SECONDS
    removed = 0
    try:
        stored = list(uploads_dir().iterdir())
    except FileNotFoundError:
        return 0
    for path in stored:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # confirmed or removed meanwhile
            continue
    return removed
