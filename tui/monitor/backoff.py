"""Exponential backoff with full jitter, for reconnects and room-not-ready retries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that grow ``initial * factor**n`` up to ``maximum``, jittered.

    Jitter keeps many panes that lost the same server from hammering it in
    lock-step when it comes back.
    """

    initial: float = 0.5
    maximum: float = 15.0
    factor: float = 2.0
    jitter: float = 0.5  # fraction of the delay that is randomised
    attempts: int = field(default=0, init=False)

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return base * (1 - self.jitter) + random.uniform(0, base * self.jitter)

    def reset(self) -> None:
        self.attempts = 0
