"""Named limits and constants of the protocol, with where their defaults come from."""

from __future__ import annotations

#: Versions of the wire protocol this package speaks (see PROTOCOL.md).
MIN_VERSION = 1
MAX_VERSION = 3  # 2 added rooms, private messages, actions and history; 3 resuming

#: Longest line (bytes, excluding the line ending) a peer may send to the server.
#: h11 caps an incomplete HTTP event at 16 KiB (DEFAULT_MAX_INCOMPLETE_EVENT_SIZE);
#: IRCv3 lines top out at 8191 bytes of tags plus 512 of message. 16 KiB holds any
#: chat message a person types or pastes as one line, and bounds what a peer can
#: make the server buffer before a newline arrives.
DEFAULT_MAX_LINE_BYTES = 16 * 1024

#: Clients accept at least this much per line from a server. A relayed message is
#: the sender's text plus an envelope, and JSON escaping can double the text, so a
#: client sizes its limit from the server's announced ``max_line`` (see
#: :func:`client_line_limit`) and never goes below this floor.
CLIENT_MIN_LINE_BYTES = 64 * 1024

#: At most this many peers are listed in a welcome or roster; ``online`` still
#: gives the full count. Keeps one answer well inside a peer's send buffer even
#: with thousands of peers connected.
MAX_ROSTER_ENTRIES = 100

#: Nicknames: length bound (IRC servers commonly use 30-32) and the longest name
#: the server may assign (an address such as ``[2001:db8::1]:65535`` is longer).
NICK_MAX_LENGTH = 32
NAME_MAX_LENGTH = 64

#: Blank lines a server's :meth:`Connection.next_event` skips in one call at most. They
#: are no events, but a stream of them must cost its sender like any line: past this
#: many, ``NEED_DATA`` comes early (``line_waiting`` still true) and the caller's flood
#: control gets its say before the next ones are read.
MAX_BLANK_LINES_PER_CALL = 16

#: Longest free-form text in small fields (client software name, reasons).
SHORT_TEXT_MAX_LENGTH = 200

#: Longest session secret or server epoch (v3).
TOKEN_MAX_LENGTH = 64


def client_line_limit(server_max_line: int) -> int:
    """The line limit a client should use once it knows the server's."""
    return max(CLIENT_MIN_LINE_BYTES, 2 * server_max_line + 1024)


#: Room names: length bound, and the room everyone starts in.
ROOM_MAX_LENGTH = 32
DEFAULT_ROOM = "lobby"

#: At most this many rooms are listed in a ``rooms`` answer.
MAX_ROOM_ENTRIES = 100

#: The largest integer (ids, seq, times, limits) a frame may carry: the largest every JSON
#: reader holds exactly (JavaScript's Number.MAX_SAFE_INTEGER), and within SQLite's.
MAX_INTEGER = 2**53 - 1
