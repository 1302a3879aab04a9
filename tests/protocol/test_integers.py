"""Integers on the wire are 0 to 2^53 - 1: what every JSON reader holds exactly (PROTOCOL.md §4)."""

from __future__ import annotations

import pytest

from peerchat_protocol import CLIENT_EVENTS, ErrorCode, RemoteProtocolError, Say, from_wire
from peerchat_protocol.limits import MAX_INTEGER


def test_the_largest_integer_is_javascripts_safe_one() -> None:
    assert MAX_INTEGER == 9_007_199_254_740_991
    assert Say("x", seq=MAX_INTEGER).seq == MAX_INTEGER


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "say", "text": "x", "seq": MAX_INTEGER + 1},
        {"type": "say", "text": "x", "seq": 2**64},
        {"type": "hello", "version": 3, "last_id": 2**63},
        {"type": "hello", "version": 3, "last_ts": 10**30},
        {"type": "history", "limit": MAX_INTEGER + 1},
    ],
)
def test_a_larger_integer_is_a_bad_frame(frame: dict[str, object]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        from_wire(frame, CLIENT_EVENTS)
    assert info.value.code is ErrorCode.BAD_FRAME
    assert "an integer from" in info.value.message
