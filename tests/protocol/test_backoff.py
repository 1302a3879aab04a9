"""The one backoff client and server share: capped doubling, with or without jitter."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from peerchat_protocol import backoff


def test_without_jitter_it_doubles_up_to_the_cap() -> None:
    delays = list(itertools.islice(backoff(0.1, 2.0), 8))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_with_jitter_each_delay_is_between_half_and_all_of_its_step() -> None:
    delays = backoff(0.25, 8.0, uniform=random.Random(7).uniform)
    for step in [0.25, 0.5, 1, 2, 4, 8, 8, 8]:
        assert step / 2 <= next(delays) <= step


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_jitter_spreads_the_delays(seed: int) -> None:
    # Two clients cut off at once: their first ten delays are not all equal.
    first = list(itertools.islice(backoff(1, 8, uniform=random.Random(seed).uniform), 10))
    other = list(itertools.islice(backoff(1, 8, uniform=random.Random(seed + 1).uniform), 10))
    assert first != other
