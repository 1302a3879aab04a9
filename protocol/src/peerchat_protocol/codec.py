"""Encoding events to bytes and decoding lines to events, for both kinds of peer.

Rich peers speak JSON lines (:func:`encode_json`, :func:`decode_json`). Plain-text
peers (``nc``, ``telnet``) send lines of text and ``/commands``
(:func:`decode_plain`) and receive readable lines (:func:`encode_plain`).
These are pure functions; :class:`peerchat_protocol.Connection` applies them to a
byte stream, and a server fanning one event out to many peers calls the
encoders once and reuses the bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .events import (
    Bye,
    ChangeNick,
    Error,
    Event,
    Help,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Quit,
    Renamed,
    Roster,
    Say,
    Who,
)
from .text import sanitize

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# Fields whose text may hold newlines when sanitized (multi-line notices).
_MULTILINE_FIELDS = {(Info, "text")}


# --- JSON ------------------------------------------------------------------------------


def to_wire(event: Event) -> dict[str, Any]:
    """The JSON object for ``event``; ``None`` fields are left out."""
    obj: dict[str, Any] = {"type": event.TYPE}
    for f in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if value is None:
            continue
        if f.name == "peers":
            value = [{"nick": p.nick, "addr": p.addr} for p in value]
        obj[f.name] = value
    return obj


def encode_json(event: Event) -> bytes:
    """One JSON line (with its ``\\n``) for ``event``."""
    return (_dumps(to_wire(event)) + "\n").encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(line: bytes) -> dict[str, Any]:
    """Decode one line as a JSON object, or raise RemoteProtocolError."""
    text = decode_utf8(line)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(ErrorCode.BAD_JSON, "each line must be one JSON object")
    return obj


def from_wire(obj: Mapping[str, Any], known: Mapping[str, type[Event]]) -> Event:
    """Build the event ``obj`` describes, if its type is in ``known``.

    Unknown fields are ignored (a newer peer may add some); text is sanitized;
    a missing or invalid field raises RemoteProtocolError.
    """
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    cls = known.get(kind)
    if cls is None:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in obj:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RemoteProtocolError(
                    ErrorCode.BAD_FRAME, f"a {kind!r} frame needs the field {f.name!r}"
                )
            continue
        value = obj[f.name]
        if isinstance(value, str):
            value = sanitize(value, keep_newlines=(cls, f.name) in _MULTILINE_FIELDS)
        elif f.name == "peers":
            value = _peers_from_wire(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.message) from None


def _peers_from_wire(value: object) -> tuple[PeerInfo, ...]:
    if not isinstance(value, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "peers must be a list")
    peers = []
    for item in value:
        nick = item.get("nick") if isinstance(item, dict) else None
        addr = item.get("addr") if isinstance(item, dict) else None
        if not isinstance(nick, str) or not isinstance(addr, str):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "each peer needs a 'nick' and 'addr'")
        try:
            peers.append(PeerInfo(sanitize(nick), sanitize(addr)))
        except LocalProtocolError as exc:
            raise RemoteProtocolError(exc.code, exc.message) from None
    return tuple(peers)


def decode_utf8(line: bytes) -> str:
    """Strict UTF-8, or a RemoteProtocolError saying where it broke."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            ErrorCode.BAD_UTF8,
            f"invalid UTF-8 at byte {exc.start}: the line was discarded; send text as UTF-8",
        ) from None


# --- plain text --------------------------------------------------------------------------


def _plain_roster(online: int, peers: tuple[PeerInfo, ...]) -> str:
    lines = [f"* {online} online:"]
    lines += [f"*   {p.nick}" if p.nick == p.addr else f"*   {p.nick} ({p.addr})" for p in peers]
    if online > len(peers):
        lines.append(f"*   ... and {online - len(peers)} more")
    return "\n".join(lines)


def _plain_left(e: Left) -> str:
    why = f": {e.reason}" if e.reason else ""
    return f"* {e.nick} left{why} ({e.online} online)"


_PLAIN_RENDERERS: dict[type[Event], Callable[[Any], str]] = {
    Message: lambda e: f"<{e.nick}> {e.text}",
    Joined: lambda e: f"* {e.nick} joined ({e.online} online)",
    Left: _plain_left,
    Renamed: lambda e: f"* {e.old} is now known as {e.new}",
    Roster: lambda e: _plain_roster(e.online, e.peers),
    Info: lambda e: "\n".join(f"* {line}" for line in e.text.split("\n")),
    Error: lambda e: f"! {e.message}",
    # A bye with a code ends the connection for a fault; without one it is a plain goodbye.
    Bye: lambda e: f"! {e.reason}" if e.code else f"* {e.reason}",
}


def render_plain(event: Event) -> str:
    """The text a plain-text peer sees for ``event`` (no ANSI codes, no trailing newline)."""
    render = _PLAIN_RENDERERS.get(type(event))
    if render is None:
        raise LocalProtocolError(
            ErrorCode.UNEXPECTED, f"a {event.TYPE!r} event has no plain-text form"
        )
    return render(event)


def encode_plain(event: Event) -> bytes:
    """The bytes a plain-text peer receives for ``event``: lines ending in ``\\r\\n``.

    CRLF is what telnet expects and what ``nc`` users see as plain newlines.
    """
    return (render_plain(event).replace("\n", "\r\n") + "\r\n").encode("utf-8")


def _nick_command(args: str) -> Event:
    if not args:
        raise RemoteProtocolError(ErrorCode.BAD_COMMAND, "usage: /nick NAME")
    try:
        return ChangeNick(args)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, f"{exc.message}; try another with /nick NAME") from None


def _no_args(event: Event) -> Callable[[str], Event]:
    def build(args: str) -> Event:
        return event

    return build


def _quit_command(args: str) -> Event:
    return Quit(args[:200] or None)


#: The commands a plain-text peer can type, with their one-line help.
PLAIN_COMMANDS: dict[str, tuple[Callable[[str], Event], str]] = {
    "nick": (_nick_command, "/nick NAME    change your nickname"),
    "who": (_no_args(Who()), "/who          list who is online"),
    "help": (_no_args(Help()), "/help         show this help"),
    "quit": (_quit_command, "/quit [why]   leave the chat"),
}


def decode_plain(line: bytes) -> Event | None:
    """The event a plain-text line stands for, or ``None`` for a blank line.

    ``/name args`` is a command; ``//text`` sends ``/text`` as a message;
    anything else is a chat message.
    """
    text = sanitize(decode_utf8(line))
    if not text.strip():
        return None
    if text.startswith("//"):
        return Say(text[1:])
    if not text.startswith("/"):
        return Say(text)
    name, _, args = text[1:].partition(" ")
    command = PLAIN_COMMANDS.get(name.lower())
    if command is None:
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command /{name[:32]}: type /help for the list "
            "(start a line with // to send it as text)",
        )
    return command[0](args.strip())


def plain_help() -> str:
    """The help text listing every command, one per line."""
    lines = ["Commands:"] + [help_line for _, help_line in PLAIN_COMMANDS.values()]
    lines.append("Anything else you type is sent to everyone; start with // to send a '/'.")
    return "\n".join(lines)
