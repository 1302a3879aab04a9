"""Plain-text peers' form: readable lines out, lines of text and ``/commands`` in.

Plain-text peers (``nc``, ``telnet``) send lines of text and ``/commands``
(:func:`decode_plain`) and receive readable lines (:func:`encode_plain`). Pure
functions, like :mod:`.codec` for JSON lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .codec import decode_utf8
from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .events import (
    Bye,
    ChangeNick,
    Entered,
    Error,
    Event,
    Help,
    History,
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
    Rooms,
    Roster,
    Say,
    Timestamps,
    Who,
)
from .limits import DEFAULT_ROOM
from .text import lines_clean, sanitize


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


def _history_command(args: str) -> Event:
    if not args:
        return History()
    if not (args.isascii() and args.isdigit()) or int(args) < 1 or len(args) > 9:
        raise _usage("/history [N] (N: how many messages, 1 or more)")
    return History(int(args))


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
    "history": (_history_command, "/history [N]        show the last N messages of your room"),
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


def decode_chat_block(block: bytes, max_line: int) -> list[str] | None:
    """The texts of a block of complete lines (each ending in ``\n``) when every line
    is one that :func:`decode_plain` turns into ``Say(line)`` as it is, else ``None``
    (a command, a blank line or one starting with a space, invalid UTF-8, text that
    :func:`~.text.sanitize` would change, a line over ``max_line`` bytes): then decode
    them one by one. A few operations over the whole block, none per line in Python:
    the busy plain-text sender's path.
    """
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")  # a lone \r left fails the check below
    body = block[:-1]
    if len(body) > max_line and max(map(len, body.split(b"\n"))) > max_line:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Each line's first character (the text's, and every one after a newline) must be
    # none of: '/' (a command), ' ' (maybe all spaces), '\n' (a blank line).
    if text[:1] in ("/", " ", "\n", "") or "\n/" in text or "\n " in text:
        return None
    if "\n\n" in text or text.endswith("\n") or not lines_clean(text):
        return None
    return text.split("\n")


def encode_plain_said(nick: str, texts: Sequence[str]) -> bytes:
    """What a plain-text peer gets (without timestamps) for the chat lines ``texts`` that
    ``nick`` said in its room: :func:`encode_plain` of each such message, joined, made
    with one join over all of them."""
    prefix = f"<{nick}> "
    return (prefix + ("\r\n" + prefix).join(texts) + "\r\n").encode("utf-8")


def plain_help() -> str:
    """The help text listing every command, one per line."""
    lines = ["Commands:"] + [help_line for _, help_line in PLAIN_COMMANDS.values()]
    lines.append(
        "Anything else you type goes to everyone in your room; start with // to send a '/'."
    )
    return "\n".join(lines)
