"""Flood control: token buckets, counted in lines (a long line counts more than one).

One bucket per peer and one per address (see addresses.py); a line takes a token from
both. What a peer sends also costs one token per KiB as it arrives (:meth:`charge`), which
may leave a bucket in debt: long lines and junk are paced by their size, not their count.
A :class:`Pacer` decides, when a peer runs out, how long it waits, whether it is told,
and whether it has flooded long enough to be disconnected (no I/O here: the session
pauses and resumes reading as told).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from peerchat_protocol import Bye, ErrorCode

from .config import ServerConfig

#: A peer throttled again within this many seconds of its last wait ending is still in
#: the same flood (it sent more at once when reading resumed).
FLOOD_EPISODE_GAP = 1.0
#: Seconds between two notices to a peer that its address's shared budget holds it back.
ADDRESS_NOTICE_EVERY = 30.0
#: How late past --flood-kick-after a flood is looked at again (so that it is past).
FLOOD_KICK_SLACK = 0.01


class TokenBucket:
    """``burst`` lines at once, then ``rate`` lines a second; ``rate`` 0 means no limit.

    Each line takes a token; tokens come back at ``rate`` a second up to ``burst``.
    The clock is injectable so tests need not wait.
    """

    # No per-instance __dict__: every peer and every address has one.
    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

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

    def take_up_to(self, n: int) -> int:
        """Take as many tokens as there are, at most ``n``; how many were taken."""
        if self.rate <= 0:
            return n
        self._refill()
        took = max(0, min(n, int(self._tokens)))
        self._tokens -= took
        return took

    def refund(self, n: int = 1) -> None:
        """Give back tokens taken for lines that were not there after all."""
        if self.rate > 0:
            self._tokens = min(self.burst, self._tokens + n)

    def wait(self) -> float:
        """Seconds until the next token."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)


class Verdict(NamedTuple):
    """What to do with a peer that ran out of budget."""

    wait: float  # seconds until reading resumes
    bye: Bye | None = None  # flooded for a whole episode: disconnect it with this
    notice: str | None = None  # tell it this, now


class Pacer:
    """One peer's floods: its own bucket, and the episode under way.

    A flood is one episode as long as each wait is followed at once by another; a peer
    over its own rate for a whole episode of ``--flood-kick-after`` seconds is
    disconnected, whether its lines are short or long. Held back only by its address's
    budget, a peer is paced, never kicked (and told so once in a while): an honest peer
    behind the same address as a flooder must not lose its connection.
    """

    __slots__ = ("_address_noticed", "_since", "_until", "own")

    def __init__(self, own: TokenBucket) -> None:
        self.own = own
        self._since: float | None = None  # when the episode under way began
        self._until = 0.0  # when its latest wait ends
        self._address_noticed = 0.0  # when the peer was last told of its address

    def take(self, shared: TokenBucket, n: int = 1) -> int:
        """Tokens for up to ``n`` lines, each from the peer's own bucket and from
        ``shared`` (its address's) alike; how many lines that is."""
        own = self.own
        granted = own.take_up_to(n)
        allowed = shared.take_up_to(granted)
        own.refund(granted - allowed)  # the address's budget was short: they wait
        return allowed

    def refund(self, shared: TokenBucket, n: int = 1) -> None:
        """Give back what :meth:`take` took for ``n`` lines that were not there."""
        self.own.refund(n)
        shared.refund(n)

    def charge(self, shared: TokenBucket, tokens: float) -> None:
        """Charge ``tokens`` to the peer's own bucket and to ``shared`` alike."""
        self.own.charge(tokens)
        shared.charge(tokens)

    def in_debt(self, shared: TokenBucket) -> bool:
        """Whether either bucket was charged more than it held (reading must wait)."""
        return self.own.in_debt or shared.in_debt

    def throttled(
        self, now: float, shared: TokenBucket, address: str, cfg: ServerConfig
    ) -> Verdict:
        """The peer is out of budget at ``now`` (``shared``: the bucket of its
        ``address``, which all that address's connections share)."""
        own, kick_after = self.own, cfg.flood_kick_after
        if not (self._until > 0 and now <= self._until + FLOOD_EPISODE_GAP):
            self._since = None  # a new episode
        notice = None
        if not own.ready():  # over its own rate
            if self._since is None:
                self._since = now
                notice = _notice(f"more than {cfg.flood_rate:g} lines a second")
            elif now - self._since > kick_after:
                return Verdict(0.0, bye=Bye(
                    f"disconnected for flooding: more than {cfg.flood_rate:g} lines a second "
                    f"(a long line counts one per KiB) for {kick_after:g} seconds",
                    code=ErrorCode.FLOODING,
                ))  # fmt: skip
        elif not self._address_noticed or now - self._address_noticed > ADDRESS_NOTICE_EVERY:
            self._address_noticed = now
            notice = _notice(
                f"more than {cfg.address_flood_rate:g} lines a second from your address "
                f"({address}, all its connections together)"
            )
        wait = max(own.wait(), shared.wait())
        if kick_after and self._since is not None:
            # A long line can put the peer so far in debt that its wait outlasts the
            # kick deadline: look again at the deadline, so it is kept whatever the size.
            deadline = self._since + kick_after + FLOOD_KICK_SLACK
            wait = min(wait, max(0.0, deadline - now))
        self._until = now + wait
        return Verdict(wait, notice=notice)


def _notice(why: str) -> str:
    return (
        f"You are sending {why} (a long line counts one per KiB): the rest will "
        "follow at that pace (nothing is lost)."
    )
