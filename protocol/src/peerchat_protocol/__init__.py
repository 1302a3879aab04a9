"""peerchat's wire protocol, sans-I/O: bytes in, typed events out; events in, bytes out.

No sockets, no asyncio, no clock: the server and client wrap this in their own I/O.
The format is specified in PROTOCOL.md.
"""

from __future__ import annotations

from .codec import (
    PLAIN_COMMANDS,
    decode_plain,
    encode_json,
    encode_plain,
    from_wire,
    plain_help,
    render_plain,
    to_wire,
)
from .connection import CLOSED, NEED_DATA, Connection, PeerKind, Role
from .errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    Bye,
    ChangeNick,
    Error,
    Event,
    Hello,
    Help,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Ping,
    Pong,
    Quit,
    Renamed,
    Roster,
    Say,
    Welcome,
    Who,
)
from .framing import LineFramer
from .limits import (
    CLIENT_MIN_LINE_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_ROSTER_ENTRIES,
    MAX_VERSION,
    MIN_VERSION,
    NICK_MAX_LENGTH,
)
from .text import fold, name_problem, nick_problem, sanitize

__version__ = "0.1.0"

__all__ = [
    "CLIENT_EVENTS",
    "CLIENT_MIN_LINE_BYTES",
    "CLOSED",
    "DEFAULT_MAX_LINE_BYTES",
    "MAX_ROSTER_ENTRIES",
    "MAX_VERSION",
    "MIN_VERSION",
    "NEED_DATA",
    "NICK_MAX_LENGTH",
    "PLAIN_COMMANDS",
    "SERVER_EVENTS",
    "Bye",
    "ChangeNick",
    "Connection",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "Help",
    "Info",
    "Joined",
    "Left",
    "LineFramer",
    "LocalProtocolError",
    "Message",
    "PeerInfo",
    "PeerKind",
    "Ping",
    "Pong",
    "ProtocolError",
    "Quit",
    "RemoteProtocolError",
    "Renamed",
    "Role",
    "Roster",
    "Say",
    "Welcome",
    "Who",
    "decode_plain",
    "encode_json",
    "encode_plain",
    "fold",
    "from_wire",
    "name_problem",
    "nick_problem",
    "plain_help",
    "render_plain",
    "sanitize",
    "to_wire",
]
