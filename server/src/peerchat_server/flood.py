"""Flood control: token buckets, counted in lines (a long line counts more than one).

One bucket per peer and one per address (see addresses.py); a line takes a token from
both. What a peer sends also costs one token per KiB as it arrives (:meth:`charge`), which
may leave a bucket in debt: long lines and junk are paced by their size, not their count.
"""

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

    def ready(self) -> bool:
        """Whether a token is there to take (without taking it)."""
        if self.rate <= 0:
            return True
        self._refill()
        return self._tokens >= 1

    def charge(self, tokens: float) -> None:
        """Take ``tokens`` now, even if that leaves the bucket in debt (repaid at the rate)."""
        if self.rate > 0:
            self._refill()
            self._tokens -= tokens

    @property
    def in_debt(self) -> bool:
        """Whether more was charged than the bucket held (nothing may be taken until repaid)."""
        if self.rate <= 0:
            return False
        self._refill()
        return self._tokens < 0

    def full(self) -> bool:
        """Whether the bucket is back to its burst: as if it had never been used."""
        if self.rate <= 0:
            return True
        self._refill()
        return self._tokens >= self.burst

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
