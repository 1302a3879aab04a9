"""Flood control: a token bucket per peer, counted in lines."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines a second; ``rate`` 0 means no limit.

    Each line takes a token; tokens come back at ``rate`` a second up to ``burst``.
    The clock is injectable so tests need not wait.
    """

    def __init__(
        self, burst: int, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = max(1, burst)
        self.rate = rate
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        """Take a token if there is one."""
        if self.rate <= 0:
            return True
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def refund(self) -> None:
        """Give back a token taken for a line that was not there after all."""
        if self.rate > 0:
            self._tokens = min(self.burst, self._tokens + 1)

    def wait(self) -> float:
        """Seconds until the next token."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)
