"""Waiting between attempts: one capped exponential backoff for clients and servers.

Pure computation (no clock, no randomness of its own, no sleeping): callers sleep
for what it yields, and pass their random source for jitter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator


def backoff(
    first: float, cap: float, *, uniform: Callable[[float, float], float] | None = None
) -> Iterator[float]:
    """Delays before successive attempts: ``first``, doubling each time up to ``cap``.

    With ``uniform`` (such as ``random.uniform``), each is drawn between half and all
    of its step ("equal jitter"), so that many clients cut off at the same moment do
    not all come back at the same moment. Endless: the caller bounds the attempts.
    """
    step = first
    while True:
        yield step / 2 + uniform(0, step / 2) if uniform is not None else step
        step = min(step * 2, cap)
