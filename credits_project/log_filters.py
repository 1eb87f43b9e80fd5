"""Logging filters named in `settings.LOGGING`."""

import logging


class WithoutTraceback(logging.Filter):
    """Drops a record's traceback, so that an expected, client-caused error logs one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
