"""When and how long to wait before retrying a failed request.

Transient failures (429, 5xx, connection errors, timeouts) are retried with
the project's one backoff (``tui.core.backoff``: exponential, equal jitter),
so many dashboards restarting together do not hammer the API in lock-step.
A server's ``Retry-After`` is honoured as a minimum.  The whole call, waits
included, stays within ``budget`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tui.core.backoff import Backoff

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget: float = 30.0  # seconds for one call, every attempt and wait included

    def backoff(self) -> Backoff:
        """The delays of one call's retries (a new series per call)."""
        return Backoff(initial=self.base_delay, maximum=self.max_delay)


def retry_delay(backoff: Backoff, retry_after: float | None) -> float:
    """The next delay of ``backoff``, but never shorter than the server's ``Retry-After``."""
    delay = backoff.next_delay()
    return max(delay, retry_after) if retry_after is not None else delay


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
