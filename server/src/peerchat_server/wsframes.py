"""WebSocket frames as the server writes them: each event one final, unmasked text
frame (RFC 6455 §5), encoded once per form and shared by every recipient; close frames.

A leaf: the frames are a few bytes of header before the JSON line, made here rather
than through the websockets library, whose ``Frame`` would cost an object per event.
"""

from __future__ import annotations

import struct

from peerchat_protocol import Bye, ErrorCode, Event, encode_json

from .frames import Said

#: Close codes (RFC 6455 §7.4.1) for the reasons a server closes a peer.
NORMAL, GOING_AWAY, PROTOCOL_ERROR, POLICY, TOO_BIG, INTERNAL = 1000, 1001, 1002, 1008, 1009, 1011
_CLOSE_CODES: dict[str, int] = {
    ErrorCode.SHUTDOWN: GOING_AWAY,
    ErrorCode.INTERNAL: INTERNAL,
    ErrorCode.BAD_FRAME: PROTOCOL_ERROR,
    ErrorCode.LINE_TOO_LONG: TOO_BIG,
}


def close_code(bye: Bye | None) -> int:
    """The close code for a connection the server closes after ``bye`` (or none)."""
    if bye is None or bye.code is None:
        return NORMAL
    return _CLOSE_CODES.get(bye.code, POLICY)


def text_frame(line: bytes) -> bytes:
    """A JSON line (its newline dropped) as one final, unmasked text frame."""
    payload = line[:-1] if line.endswith(b"\n") else line
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with ``code`` and a reason cut to fit (123 bytes at most)."""
    data = reason.encode()[:123].decode(errors="ignore").encode()
    return struct.pack("!BBH", 0x88, 2 + len(data), code) + data


class WsForm:
    """JSON of one protocol version, one event per text frame."""

    __slots__ = ("version",)

    def __init__(self, version: int) -> None:
        self.version = version

    def encode(self, event: Event) -> bytes:
        return text_frame(encode_json(event, self.version))

    def encode_said(self, said: Said) -> bytes:
        version = self.version
        return b"".join([text_frame(encode_json(m, version)) for m in said.messages])


class Silent:
    """Before its hello a WebSocket peer is sent nothing: what its room says meanwhile
    is kept for it (Output's replay) and sent, as frames, after the welcome."""

    __slots__ = ()

    def encode(self, event: Event) -> bytes:
        return b""

    def encode_said(self, said: Said) -> bytes:
        return b""


SILENT = Silent()
_FORMS: dict[int, WsForm] = {}


def ws_form(version: int) -> WsForm:
    form = _FORMS.get(version)
    if form is None:
        form = _FORMS[version] = WsForm(version)
    return form
