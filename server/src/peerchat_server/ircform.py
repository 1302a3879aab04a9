"""The room's broadcasts as IRC lines: one form per choice of tags, shared.

A room is a channel (``lobby`` is ``#lobby``). Everyone appears as
``nick!nick@peerchat`` in prefixes: WHOIS and WHO tell the address, as ``/who`` does.
A message too long for 512 bytes is split (never inside a character), each piece a
PRIVMSG. Tags go only to clients that enabled them: ``time`` with ``server-time``,
``msgid`` with ``message-tags`` (on the first piece of a split message only: ids are
unique).
"""

from __future__ import annotations

from datetime import UTC, datetime

from peerchat_protocol import Event, Info, Joined, Left, Message, Renamed

from .frames import Said
from .ircwire import LINE_BYTES, line, split_utf8

#: The server's name in IRC prefixes and numerics.
SERVER = "peerchat"
#: What a peer's ``user@host`` shows (the address is for WHOIS, as for /who).
HOST = "peerchat"


def source(nick: str) -> str:
    return f"{nick}!{nick}@{HOST}"


def channel(room: str | None) -> str:
    return "#" + (room or "lobby")


def room_of(name: str) -> str:
    """``#games`` → ``games`` (any of the CHANTYPES, here only ``#``)."""
    return name[1:] if name.startswith("#") else name


class IrcForm:
    """The room's broadcasts as IRC lines, with the tags a client enabled."""

    __slots__ = ("msgid", "time")

    def __init__(self, time: bool, msgid: bool) -> None:
        self.time, self.msgid = time, msgid

    def encode(self, event: Event) -> bytes:
        if isinstance(event, Message):
            return privmsg(event, self.time, self.msgid)
        if isinstance(event, Joined):
            return line("JOIN", channel(event.room), source=source(event.nick), trailing=False)
        if isinstance(event, Left):
            return departure(event)
        if isinstance(event, Renamed):
            return line("NICK", event.new, source=source(event.old), trailing=False)
        if isinstance(event, Info):
            return notice("*", event.text)
        return b""  # (nothing else is broadcast)

    def encode_said(self, said: Said) -> bytes:
        return b"".join([privmsg(m, self.time, self.msgid) for m in said.messages])


#: One form per (server-time, message-tags) choice, made once each.
FORMS = {(t, m): IrcForm(t, m) for t in (False, True) for m in (False, True)}


def form_for(caps: set[str]) -> IrcForm:
    return FORMS["server-time" in caps, "message-tags" in caps]


class _Silent:
    """Before registration an IRC peer is in no channel: it is sent nothing of the
    room (what the room says meanwhile follows its JOIN, as for any late hello)."""

    __slots__ = ()

    def encode(self, event: Event) -> bytes:
        return b""

    def encode_said(self, said: Said) -> bytes:
        return b""


SILENT = _Silent()


def privmsg(message: Message, time: bool, msgid: bool) -> bytes:
    """A message as PRIVMSG lines (split to fit 512 bytes), with its time as a
    ``server-time`` tag, or, for history without it, in the text."""
    target = message.to or channel(message.room)
    text = message.text
    when = datetime.fromtimestamp(message.ts / 1000, UTC)
    tags: dict[str, str] = {}
    if time:
        tags["time"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    elif message.history:
        text = f"[{when.strftime('%H:%M')} UTC] {text}"
    if msgid:
        tags["msgid"] = str(message.id)
    head = len(f":{source(message.nick)} PRIVMSG {target} :\r\n".encode())
    room = LINE_BYTES - head - (len("\x01ACTION \x01") if message.action else 0)
    out = []
    for piece in split_utf8(text, max(room, 16)):
        if message.action:
            piece = f"\x01ACTION {piece}\x01"
        out.append(line("PRIVMSG", target, piece, source=source(message.nick), tags=tags))
        tags = {k: v for k, v in tags.items() if k != "msgid"}  # (one piece has the id)
    return b"".join(out)


def departure(left: Left) -> bytes:
    """A member left the room: PART when it went to another room, QUIT otherwise."""
    reason = left.reason or ""
    if reason.startswith("went to "):
        return line("PART", channel(left.room), reason, source=source(left.nick))
    return line("QUIT", reason or "left", source=source(left.nick))


def notice(target: str, text: str) -> bytes:
    """Server text as NOTICE lines, one per line of it (split to fit)."""
    out = []
    for row in text.splitlines() or [""]:
        for piece in split_utf8(row, LINE_BYTES - 64 - len(target)) if row else [" "]:
            out.append(line("NOTICE", target, piece, source=SERVER))
    return b"".join(out)
