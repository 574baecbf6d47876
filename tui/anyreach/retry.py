"""When and how long to wait before retrying a failed request.

Transient failures (429, 5xx, connection errors, timeouts) are retried with
exponential backoff and full jitter, so many dashboards restarting together do
not hammer the API in lock-step.  A server's ``Retry-After`` is honoured as a
minimum.  The whole call, waits included, stays within ``budget`` seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget: float = 30.0  # seconds for one call, every attempt and wait included

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Delay before retry ``retry_number`` (1-based): jittered exponential backoff."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        # "Equal jitter": at least half the step, so a retry never fires instantly.
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)

    def delay(
        self, retry_number: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        backoff = self.backoff(retry_number, rng)
        return max(backoff, retry_after) if retry_after is not None else backoff


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
