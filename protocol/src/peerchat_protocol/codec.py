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
from datetime import UTC, datetime
from typing import Any

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .events import (
    Bye,
    ChangeNick,
    Entered,
    Error,
    Event,
    Help,
    Info,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    ListRooms,
    Message,
    Pass,
    PeerInfo,
    Quit,
    Renamed,
    RoomInfo,
    Rooms,
    Roster,
    Say,
    Timestamps,
    Who,
)
from .limits import DEFAULT_ROOM, MAX_VERSION
from .text import sanitize

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# Fields whose text may hold newlines when sanitized (multi-line notices).
_MULTILINE_FIELDS = {(Info, "text")}


# --- JSON ------------------------------------------------------------------------------


def to_wire(event: Event, version: int = MAX_VERSION) -> dict[str, Any]:
    """The JSON object for ``event`` as protocol ``version`` has it.

    Absent values (``None``, and ``false`` for flags) are left out, and so are
    members newer than ``version`` (``MEMBERS_SINCE``). For version 1 the members
    version 2 added are dropped, and a private message or action is
    folded into its text so an old client still shows what it is.
    """
    if version < event.SINCE:
        raise LocalProtocolError(
            ErrorCode.UNEXPECTED, f"{event.TYPE!r} does not exist in protocol version {version}"
        )
    obj: dict[str, Any] = {"type": event.TYPE}
    newer = event.MEMBERS_SINCE
    for f in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if value is None or value is False or newer.get(f.name, 0) > version:
            continue
        if f.name == "peers":
            value = [{"nick": p.nick, "addr": p.addr} for p in value]
        elif f.name == "rooms":
            value = [{"name": r.name, "online": r.online} for r in value]
        obj[f.name] = value
    if version < 2:
        _downgrade_to_v1(event, obj)
    return obj


def _downgrade_to_v1(event: Event, obj: dict[str, Any]) -> None:
    for name in ("room", "to", "action", "history"):
        obj.pop(name, None)
    if isinstance(event, Message):
        if event.to is not None:
            obj["text"] = f"(private) {event.text}"
        elif event.action:
            obj["text"] = f"* {event.nick} {event.text}"


def encode_json(event: Event, version: int = MAX_VERSION) -> bytes:
    """One JSON line (with its ``\\n``) for ``event``, in protocol ``version``."""
    return (_dumps(to_wire(event, version)) + "\n").encode("utf-8")


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


def from_wire(
    obj: Mapping[str, Any], known: Mapping[str, type[Event]], version: int = MAX_VERSION
) -> Event:
    """Build the event ``obj`` describes, if its type is in ``known`` and ``version``.

    Unknown members are ignored (a newer peer may add some), ``null`` counts as
    absent, text is sanitized; a missing or invalid member raises RemoteProtocolError.
    """
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    cls = known.get(kind)
    if cls is None or version < cls.SINCE:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}")
    kwargs: dict[str, Any] = {}
    newer = cls.MEMBERS_SINCE
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = obj.get(f.name)
        if newer.get(f.name, 0) > version:
            continue  # a member this version does not have: ignored, like unknown ones
        if value is None:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required or f.name in getattr(cls, "WIRE_REQUIRED", ()):
                raise RemoteProtocolError(
                    ErrorCode.BAD_FRAME, f"a {kind!r} frame needs the member {f.name!r}"
                )
            continue
        if isinstance(value, str):
            value = sanitize(value, keep_newlines=(cls, f.name) in _MULTILINE_FIELDS)
        elif f.name == "peers":
            value = _peers_from_wire(value)
        elif f.name == "rooms":
            value = _rooms_from_wire(value)
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


def _rooms_from_wire(value: object) -> tuple[RoomInfo, ...]:
    if not isinstance(value, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "rooms must be a list")
    rooms = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        online = item.get("online") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "each room needs a 'name' and 'online'")
        try:
            rooms.append(RoomInfo(sanitize(name), online))  # type: ignore[arg-type]
        except LocalProtocolError as exc:
            raise RemoteProtocolError(exc.code, exc.message) from None
    return tuple(rooms)


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


def _where(room: str | None) -> str:
    """`` #room`` for notices about a room other than the default one."""
    return f" #{room}" if room and room != DEFAULT_ROOM else ""


#: How every line of a server notice starts, as in ircII and most IRC clients. What
#: peers say starts otherwise: a message with "<nick> " or "[PM from nick] ", an
#: action with "* nick " (star, space), either maybe after "[HH:MM] "; and text has
#: no newline. So no peer can pass for the server: mallory's "/me is now known as
#: bob" shows as "* mallory is now known as bob", a rename as "*** old is now known
#: as new".
NOTICE = "*** "


def _plain_peers(online: int, peers: tuple[PeerInfo, ...]) -> list[str]:
    lines = [
        f"{NOTICE}  {p.nick}" if p.nick == p.addr else f"{NOTICE}  {p.nick} ({p.addr})"
        for p in peers
    ]
    if online > len(peers):
        lines.append(f"{NOTICE}  ... and {online - len(peers)} more")
    return lines


def _plain_roster(e: Roster) -> str:
    where = f"#{e.room} " if _where(e.room) else ""
    head = f"{NOTICE}{where}{e.online} online:"
    return "\n".join([head, *_plain_peers(e.online, e.peers)])


def _plain_entered(e: Entered) -> str:
    head = f"{NOTICE}You are now in #{e.room}: {e.online} online:"
    return "\n".join([head, *_plain_peers(e.online, e.peers)])


def _plain_rooms(e: Rooms) -> str:
    rows = [f"{NOTICE}  #{r.name} ({r.online} online)" for r in e.rooms]
    return "\n".join([f"{NOTICE}{len(e.rooms)} rooms:", *rows])


def _plain_left(e: Left) -> str:
    why = f": {e.reason}" if e.reason else ""
    return f"{NOTICE}{e.nick} left{_where(e.room)}{why} ({e.online} online)"


def _plain_message(e: Message) -> str:
    if e.to is not None:
        return f"[PM from {e.nick}] {e.text}"
    if e.action:
        return f"* {e.nick} {e.text}"
    return f"<{e.nick}> {e.text}"


_PLAIN_RENDERERS: dict[type[Event], Callable[[Any], str]] = {
    Message: _plain_message,
    Joined: lambda e: f"{NOTICE}{e.nick} joined{_where(e.room)} ({e.online} online)",
    Left: _plain_left,
    Renamed: lambda e: f"{NOTICE}{e.old} is now known as {e.new}",
    Roster: _plain_roster,
    Entered: _plain_entered,
    Rooms: _plain_rooms,
    Info: lambda e: "\n".join(f"{NOTICE}{line}" for line in e.text.split("\n")),
    Error: lambda e: f"! {e.message}",
    # A bye with a code ends the connection for a fault; without one it is a plain goodbye.
    Bye: lambda e: f"! {e.reason}" if e.code else f"{NOTICE}{e.reason}",
}


def clock(ts: int) -> str:
    """``HH:MM`` (UTC) of a timestamp in Unix milliseconds."""
    return datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%H:%M")


def render_plain(event: Event, *, timestamps: bool = False) -> str:
    """The text a plain-text peer sees for ``event`` (no ANSI codes, no trailing newline).

    With ``timestamps``, a message starts with its server time, ``[HH:MM]`` in UTC.
    """
    render = _PLAIN_RENDERERS.get(type(event))
    if render is None:
        raise LocalProtocolError(
            ErrorCode.UNEXPECTED, f"a {event.TYPE!r} event has no plain-text form"
        )
    text = render(event)
    if timestamps and isinstance(event, Message):
        text = f"[{clock(event.ts)}] {text}"
    return text


def encode_plain(event: Event, *, timestamps: bool = False) -> bytes:
    """The bytes a plain-text peer receives for ``event``: lines ending in ``\\r\\n``.

    CRLF is what telnet expects and what ``nc`` users see as plain newlines.
    """
    text = render_plain(event, timestamps=timestamps)
    return (text.replace("\n", "\r\n") + "\r\n").encode("utf-8")


def _usage(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.BAD_COMMAND, f"usage: {text}")


def _build(make: Callable[[], Event], hint: str) -> Event:
    """``make()``, with a validation failure turned into the peer's error plus ``hint``."""
    try:
        return make()
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, f"{exc.message}; {hint}") from None


def _nick_command(args: str) -> Event:
    if not args:
        raise _usage("/nick NAME")
    return _build(lambda: ChangeNick(args), "try another with /nick NAME")


def _join_command(args: str) -> Event:
    room = args.removeprefix("#")
    if not room or " " in room:
        raise _usage("/join ROOM")
    return _build(lambda: JoinRoom(room), "try another with /join ROOM")


def _msg_command(args: str) -> Event:
    to, _, text = args.partition(" ")
    if not to or not text.strip():
        raise _usage("/msg NICK MESSAGE")
    return _build(lambda: Say(text.strip(), to=to), "/who lists who is online")


def _me_command(args: str) -> Event:
    if not args:
        raise _usage("/me ACTION (for example: /me waves)")
    return Say(args, action=True)


def _timestamps_command(args: str) -> Event:
    choice = args.lower()
    if choice not in ("on", "off"):
        raise _usage("/timestamps on|off")
    return Timestamps(choice == "on")


def _pass_command(args: str) -> Event:
    if not args:
        raise _usage("/pass PASSWORD")
    return _build(lambda: Pass(args), "ask the server's operator for the password")


def _no_args(event: Event) -> Callable[[str], Event]:
    def build(args: str) -> Event:
        return event

    return build


def _quit_command(args: str) -> Event:
    return Quit(args[:200] or None)


#: The commands a plain-text peer can type, with their one-line help.
PLAIN_COMMANDS: dict[str, tuple[Callable[[str], Event], str]] = {
    "nick": (_nick_command, "/nick NAME          change your nickname"),
    "who": (_no_args(Who()), "/who                list who is in your room"),
    "msg": (_msg_command, "/msg NICK MESSAGE   send a private message to one person"),
    "me": (_me_command, "/me ACTION          say what you are doing: /me waves"),
    "join": (_join_command, "/join ROOM          go to a room (created if new)"),
    "leave": (_no_args(LeaveRoom()), f"/leave              go back to #{DEFAULT_ROOM}"),
    "rooms": (_no_args(ListRooms()), "/rooms              list rooms and who is in them"),
    "timestamps": (_timestamps_command, "/timestamps on|off  show the time (UTC) of messages"),
    "pass": (_pass_command, "/pass PASSWORD      give the server's password, if it has one"),
    "help": (_no_args(Help()), "/help               show this help"),
    "quit": (_quit_command, "/quit [REASON]      leave the chat"),
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
    lines.append(
        "Anything else you type goes to everyone in your room; start with // to send a '/'."
    )
    return "\n".join(lines)
