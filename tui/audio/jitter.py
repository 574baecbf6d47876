"""A per-session jitter buffer of int16 samples.

Frames arrive from the network in bursts; the sound card pulls at its own
steady clock.  The buffer waits until it holds ``prime`` samples before it
plays (so a late packet does not cause a gap at once), plays silence and counts
an underrun when it runs dry, and drops its oldest audio beyond ``limit`` so the
latency stays small when the sender's clock runs a little fast.
"""

from __future__ import annotations

from collections import deque

import numpy as np

SAMPLE_RATE = 48_000


def ms_to_samples(ms: float) -> int:
    return round(SAMPLE_RATE * ms / 1000)


class JitterBuffer:
    def __init__(self, prime_ms: float = 20.0, limit_ms: float = 60.0) -> None:
        self.prime = ms_to_samples(prime_ms)
        self.limit = ms_to_samples(limit_ms)
        self._chunks: deque[np.ndarray] = deque()
        self._size = 0
        self.playing = False
        self.underruns = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._size

    def push(self, samples: np.ndarray, limit: int | None = None) -> None:
        """Append samples; beyond ``limit`` (default ``self.limit``) the oldest are dropped."""
        if samples.size == 0:
            return
        self._chunks.append(samples)
        self._size += samples.size
        excess = self._size - (self.limit if limit is None else limit)
        if excess > 0:
            self._discard(excess)
            self.dropped += excess

    def trim(self, keep: int) -> None:
        """Drop all but the newest ``keep`` samples."""
        if self._size > keep:
            self._discard(self._size - keep)

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0
        self.playing = False

    def peek_take(self, n: int) -> np.ndarray:
        """Take up to ``n`` samples regardless of priming (used for fade-out tails)."""
        return self._take(min(n, self._size))

    def pull(self, n: int) -> np.ndarray:
        """Exactly ``n`` samples to play: real audio, zero-filled where there is none."""
        if not self.playing:
            if self._size < self.prime:
                return np.zeros(n, dtype=np.int16)
            self.playing = True
        if self._size >= n:
            return self._take(n)
        # Ran dry while playing: play what there is, then silence, and re-prime.
        out = np.zeros(n, dtype=np.int16)
        have = self._size
        out[:have] = self._take(have)
        self.playing = False
        self.underruns += 1
        return out

    def _take(self, n: int) -> np.ndarray:
        parts: list[np.ndarray] = []
        need = n
        while need > 0:
            head = self._chunks[0]
            if head.size <= need:
                parts.append(self._chunks.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                self._chunks[0] = head[need:]
                need = 0
        self._size -= n
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _discard(self, n: int) -> None:
        self._take(min(n, self._size))
