"""The one backoff of the project: HTTP retries and rejoining a call both wait with it.

Delays grow exponentially, ``initial * factor**n`` capped at ``maximum``, with
*equal jitter*: each delay is drawn uniformly from the upper half of its step,
``[step / 2, step]``.  Half the step is random, so many dashboards that lost
the same server (or API) do not come back in lock-step; the other half is
kept, so a retry never fires at once and a failing peer is never hammered.
(AWS's "full jitter", ``[0, step]``, spreads load slightly better but can
retry immediately; for a handful of clients the floor matters more.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """A series of delays; ``reset()`` after a success starts the series again."""

    initial: float = 0.5
    maximum: float = 15.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = field(default=0, init=False)

    def step(self, attempt: int) -> float:
        """The un-jittered ceiling of delay number ``attempt`` (0-based)."""
        return min(self.maximum, self.initial * self.factor**attempt)

    def next_delay(self) -> float:
        ceiling = self.step(self.attempts)
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
