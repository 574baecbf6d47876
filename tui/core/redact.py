"""Secrets out of text: listener tokens (JWTs) and ``access_token=`` query values.

The native layer's errors quote the whole JWT ("invalid token: eyJ...") and so
do some library log lines; everything that reaches a screen or a log file goes
through ``redact_secrets``.  ``RedactingFilter`` applies it to log records.
"""

from __future__ import annotations

import logging
import re

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s\"']+", re.IGNORECASE)
REDACTED = "[redacted]"

_EXCEPTION_FORMATTER = logging.Formatter()


def redact_secrets(text: str) -> str:
    """``text`` with every JWT and ``access_token=`` value replaced by ``[redacted]``."""
    return _TOKEN_PARAM.sub(r"\1" + REDACTED, _JWT.sub(REDACTED, text))


class RedactingFilter(logging.Filter):
    """Redacts a record's message, traceback and stack before any handler formats it.

    Attach it to a *handler*: a filter on a logger only sees records logged on
    that very logger, never those of its children (``livekit.rtc`` under
    ``livekit``), whereas a handler's filter sees every record it writes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatted here, once, so the traceback can be redacted too; the
            # formatter then uses exc_text as it is.
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return True
