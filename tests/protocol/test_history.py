"""The history request (protocol v3): ``{"type": "history", "limit": N}`` and ``/history [N]``."""

from __future__ import annotations

import pytest

from peerchat_protocol import (
    CLIENT_EVENTS,
    ErrorCode,
    History,
    LocalProtocolError,
    RemoteProtocolError,
    decode_plain,
    encode_json,
    from_wire,
    plain_help,
)
from peerchat_protocol.codec import parse_json_object


def test_history_round_trips_with_and_without_a_limit() -> None:
    for event in (History(), History(50)):
        line = encode_json(event)
        assert from_wire(parse_json_object(line.rstrip(b"\n")), CLIENT_EVENTS) == event
    assert encode_json(History()) == b'{"type":"history"}\n'
    assert encode_json(History(5)) == b'{"type":"history","limit":5}\n'


def test_history_is_version_3() -> None:
    assert History.SINCE == 3
    with pytest.raises(RemoteProtocolError) as info:
        from_wire({"type": "history"}, CLIENT_EVENTS, 2)
    assert info.value.code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize("limit", [0, -1, "5", True, 1.5])
def test_a_limit_must_be_a_positive_integer(limit: object) -> None:
    with pytest.raises(LocalProtocolError):
        History(limit)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError) as info:
        from_wire({"type": "history", "limit": limit}, CLIENT_EVENTS)
    assert info.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("line", "event"),
    [(b"/history", History()), (b"/history 20", History(20)), (b"/HISTORY 1", History(1))],
)
def test_plain_history_commands(line: bytes, event: History) -> None:
    assert decode_plain(line) == event


@pytest.mark.parametrize("line", [b"/history 0", b"/history x", b"/history -3",
                                  "/history ²".encode(), b"/history 1234567890"])  # fmt: skip
def test_plain_history_command_errors_say_the_usage(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_plain(line)
    assert info.value.code is ErrorCode.BAD_COMMAND
    assert "/history [N]" in info.value.message


def test_help_lists_history() -> None:
    assert any(line.startswith("/history [N]") for line in plain_help().splitlines())
