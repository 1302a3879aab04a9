"""Fuzzing the decoder: any bytes give events or a documented error, never anything else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerchat_protocol import (
    CLIENT_EVENTS,
    NEED_DATA,
    SERVER_EVENTS,
    Connection,
    ErrorCode,
    Event,
    Hello,
    RemoteProtocolError,
    Role,
    encode_json,
)

CODES = {code.value for code in ErrorCode}


def drain(conn: Connection, chunks: list[bytes]) -> None:
    errors: list[RemoteProtocolError] = []
    try:
        _drain(conn, chunks, errors)
    finally:
        assert all(e.code.value in CODES and e.message for e in errors), errors


def _drain(conn: Connection, chunks: list[bytes], errors: list[RemoteProtocolError]) -> None:
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        for _ in range(100_000):
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                errors.append(exc)
                continue
            if not isinstance(event, Event):
                break
            # Whatever decodes is a valid event: it survives its own encoding.
            if type(event) in SERVER_EVENTS.values() and conn.role is Role.CLIENT:
                encode_json(event)
        else:
            raise AssertionError("decoder did not settle")
        if event is not NEED_DATA:
            return


junk = st.lists(st.binary(max_size=300), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def frames(draw: st.DrawFn, types: list[str]) -> bytes:
    obj = draw(st.dictionaries(st.sampled_from(["text", "nick", "to", "room", "version", "token",
                                                 "reason", "action", "history", "peers", "online",
                                                 "rooms", "id", "ts", "addr", "code", "message"]),
                               json_values, max_size=6))  # fmt: skip
    obj["type"] = draw(st.sampled_from(types))
    return json.dumps(obj).encode() + b"\n"


FUZZ = settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@FUZZ
@given(junk)
def test_server_side_survives_any_bytes(chunks: list[bytes]) -> None:
    drain(Connection(Role.SERVER, max_line=256), chunks)


@FUZZ
@given(st.lists(frames(sorted(CLIENT_EVENTS)), max_size=8), junk)
def test_server_side_survives_any_frames_from_a_rich_peer(
    lines: list[bytes], tail: list[bytes]
) -> None:
    hello = encode_json(Hello(nick="fuzz"))
    drain(Connection(Role.SERVER), [hello, *lines, *tail])


@FUZZ
@given(st.lists(frames(sorted(SERVER_EVENTS)), max_size=8), junk)
def test_client_side_survives_any_frames_from_a_server(
    lines: list[bytes], tail: list[bytes]
) -> None:
    client = Connection(Role.CLIENT)
    client.send(Hello())
    welcome = b'{"type":"welcome","version":2,"nick":"a","addr":"x:1","online":1}\n'
    drain(client, [*lines, welcome, *lines, *tail])
