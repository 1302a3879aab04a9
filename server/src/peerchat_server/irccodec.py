"""peerchat's events as IRC, and IRC lines in: the sans-I/O half of the IRC peer kind.

(The room's broadcasts, shared by every IRC peer, are ircform.py's.)

:class:`IrcConnection` has the surface of :class:`peerchat_protocol.Connection` that
the session's read loop and output use, so an IRC peer is read, paced and written
like any other: bytes in, :class:`IrcLine` events out (irc.py's table of small
handlers turns each into a chat command or an IRC answer); events in, IRC lines out
(``send``). :class:`IrcForm` is how the room's broadcasts reach IRC peers, encoded
once per form (with or without ``server-time`` tags) and shared.

A room is a channel (``lobby`` is ``#lobby``); a peer is in one at a time. Everyone
appears as ``nick!nick@peerchat``: WHOIS tells the address, as ``/who`` does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from peerchat_protocol import (
    CLOSED,
    NEED_DATA,
    NICK_MAX_LENGTH,
    Ack,
    Bye,
    Entered,
    Error,
    ErrorCode,
    Event,
    Info,
    Message,
    PeerInfo,
    PeerKind,
    Ping,
    Pong,
    RemoteProtocolError,
    Renamed,
    Rooms,
    Roster,
    Welcome,
)
from peerchat_protocol.framing import LineFramer
from peerchat_protocol.limits import ROOM_MAX_LENGTH

from .ircform import HOST, SERVER, channel, form_for, notice, privmsg, source
from .ircwire import LINE_BYTES, TAG_BYTES, IrcMessage, IrcSyntaxError, line, parse

#: Capabilities offered (CAP LS 302).
CAPABILITIES = ("server-time", "message-tags")

#: Error codes of peerchat, as IRC numerics (the rest become a NOTICE).
_NUMERIC: dict[str, str] = {
    ErrorCode.NICK_TAKEN: "433",
    ErrorCode.INVALID_NICK: "432",
    ErrorCode.NO_SUCH_NICK: "401",
    ErrorCode.INVALID_ROOM: "479",
    ErrorCode.LINE_TOO_LONG: "417",
    ErrorCode.AUTH_REQUIRED: "451",
    ErrorCode.UNKNOWN_COMMAND: "421",  # (a line that is no IRC message)
}


@dataclass(frozen=True, slots=True)
class IrcLine(Event):
    """One IRC message from the peer, for irc.py's handlers."""

    TYPE: ClassVar[str] = "irc"
    message: IrcMessage


def isupport() -> tuple[str, ...]:
    """RPL_ISUPPORT tokens, each true of this server."""
    return (
        "CASEMAPPING=ascii",  # names compare case-insensitively, ASCII only
        "CHANTYPES=#",
        f"CHANNELLEN={ROOM_MAX_LENGTH + 1}",
        "CHANLIMIT=#:1",  # one room at a time
        "CHANMODES=,,,",
        f"LINELEN={LINE_BYTES}",
        "MAXTARGETS=1",
        "NETWORK=peerchat",
        f"NICKLEN={NICK_MAX_LENGTH}",
        "PREFIX=",
        "TOPICLEN=0",
    )


def irc_host(addr: str) -> str:
    """The host part of ``host:port`` as an IRC parameter (``::1`` is ``0::1``: a
    middle parameter may not start with a colon)."""
    host = addr.rsplit(":", 1)[0].strip("[]") or HOST
    return "0" + host if host.startswith(":") else host


class IrcConnection:
    """The IRC peer's side of a connection, with no I/O (after peerchat's Connection).

    ``send`` keeps what IRC needs to say an event for *this* peer: its nick (numerics
    name their target), its channel (a move is a PART and a JOIN), whether it
    negotiated ``server-time``, and which query a roster answers (WHO or NAMES).
    """

    _SAY: ClassVar[dict[type[Event], Callable[[IrcConnection, Any], bytes]]]

    def __init__(self) -> None:
        # Tags, then a line of 512 bytes: the framer's limit; a line past 512 bytes
        # without its tags gets 417 (irc.py).
        self._framer = LineFramer(TAG_BYTES + LINE_BYTES)
        self._eof = False
        self.kind = PeerKind.UNKNOWN  # RICH once registered (it is pinged as such)
        self.version: int | None = None
        self.timestamps = False  # (plain text's /timestamps: nothing to do here)
        self.lines_skipped = 0
        self.nick = "*"  # its nick (numerics say "*" until it is welcomed)
        self.welcomed = False
        self.channel: str | None = None
        self.caps: set[str] = set()
        #: What each roster to come answers: "WHO" or "NAMES" (a WHO or NAMES asked).
        self.asked: deque[str] = deque(maxlen=64)
        #: What the numeric for a peerchat error names: the target of the last
        #: message (401), the nick last asked for (432, 433).
        self.asked_about: dict[str, str] = {}

    # --- in ------------------------------------------------------------------------------

    @property
    def max_line(self) -> int:
        return LINE_BYTES

    def receive_data(self, data: bytes) -> None:
        if data:
            self._framer.feed(data)
        else:
            self._eof = True

    @property
    def line_waiting(self) -> bool:
        return self._framer.has_line() or (self._eof and self._framer.buffered > 0)

    def chat_block_waiting(self) -> bool:
        return False  # (IRC lines are read one by one)

    def next_chat_lines(self, limit: int) -> list[str] | None:
        return None

    def next_event(self) -> object:
        """The next line as an :class:`IrcLine`, NEED_DATA or CLOSED (from the protocol
        package); RemoteProtocolError for a line that is no IRC message."""
        for _ in range(100):  # (blank lines are skipped, a bounded number at a time)
            raw = self._framer.next_line()
            if raw is None:
                if not self._eof:
                    return NEED_DATA
                raw = self._framer.close()
                if raw is None:
                    return CLOSED
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                raise RemoteProtocolError(
                    ErrorCode.BAD_UTF8,
                    "not UTF-8: peerchat is UTF-8 only (set your client's charset)",
                ) from None
            if not text.strip():
                self.lines_skipped += 1
                continue
            body = text.split(" ", 1)[1] if text.startswith("@") and " " in text else text
            if len(body.encode()) + 2 > LINE_BYTES:
                raise RemoteProtocolError(
                    ErrorCode.LINE_TOO_LONG, f"line too long: at most {LINE_BYTES} bytes with CRLF"
                )
            try:
                return IrcLine(parse(text))
            except IrcSyntaxError as exc:
                raise RemoteProtocolError(ErrorCode.UNKNOWN_COMMAND, str(exc)) from None
        return NEED_DATA

    # --- out -----------------------------------------------------------------------------

    def numeric(self, code: str, *params: str) -> bytes:
        """A numeric to this peer. Parameters that came from the client and cannot be
        a middle parameter (empty, with a space, or starting with ``:``) are ``*``."""
        *middle, last = params or ("",)
        safe = [p if p and " " not in p and p[0] != ":" else "*" for p in middle]
        return line(code, self.nick if self.welcomed else "*", *safe, last, source=SERVER)

    def send(self, event: Event) -> bytes:
        """The IRC lines that say ``event`` to this peer."""
        if isinstance(event, Message):
            caps = self.caps
            return privmsg(event, "server-time" in caps, "message-tags" in caps)
        say = self._SAY.get(type(event))
        if say is not None:
            return say(self, event)
        return form_for(self.caps).encode(event)

    def _rooms(self, event: Rooms) -> bytes:
        rows = [self.numeric("321", "Channel", "Users  Name")]
        rows += [self.numeric("322", channel(r.name), str(r.online), "") for r in event.rooms]
        return b"".join([*rows, self.numeric("323", "End of /LIST")])

    def _renamed(self, event: Renamed) -> bytes:
        if event.old == self.nick:
            self.nick = event.new
        return line("NICK", event.new, source=source(event.old), trailing=False)

    def _bye(self, event: Bye) -> bytes:
        return line("ERROR", f"Closing link: {event.reason}")

    def _ping(self, event: Ping) -> bytes:
        return line("PING", event.token or SERVER)

    def _pong(self, event: Pong) -> bytes:
        return line("PONG", SERVER, event.token or SERVER, source=SERVER)

    def _info(self, event: Info) -> bytes:
        return notice(self.nick, event.text)

    def _ack(self, event: Ack) -> bytes:
        return b""

    def _entered_event(self, event: Entered) -> bytes:
        return self._entered(event.room, event.peers, event.online)

    def _welcome(self, welcome: Welcome) -> bytes:
        self.kind, self.version = PeerKind.RICH, welcome.version
        self.welcomed = True
        renamed = b""
        if welcome.nick != self.nick and self.nick != "*":
            renamed = line("NICK", welcome.nick, source=source(self.nick), trailing=False)
        self.nick = welcome.nick
        rows = [
            renamed,
            self.numeric("001", f"Welcome to the peerchat IRC network, {welcome.nick}"),
            self.numeric("002", f"Your host is {SERVER}, running {welcome.server}"),
            self.numeric("003", "This server was created with the room you are about to join"),
            self.numeric("004", SERVER, welcome.server, "i", ""),
            self.numeric("005", *isupport(), "are supported by this server"),
            *self.motd(),
        ]
        rows.append(self._entered(welcome.room or "lobby", welcome.peers, welcome.online))
        return b"".join(rows)

    def motd(self) -> list[bytes]:
        lines = [
            "Welcome to peerchat: one room for every kind of peer (nc, terminal, browsers, IRC).",
            "Rooms are channels (#lobby is where everyone starts); you are in one at a time.",
            "Channel modes, operators and services are not part of peerchat.",
        ]
        return [
            self.numeric("375", f"- {SERVER} Message of the day -"),
            *[self.numeric("372", f"- {text}") for text in lines],
            self.numeric("376", "End of /MOTD command."),
        ]

    def _entered(self, room: str, peers: tuple[PeerInfo, ...], online: int) -> bytes:
        rows = []
        if self.channel is not None and self.channel != channel(room):
            rows.append(
                line("PART", self.channel, f"went to {channel(room)}", source=source(self.nick))
            )
        self.channel = channel(room)
        rows.append(line("JOIN", self.channel, source=source(self.nick), trailing=False))
        rows.append(self._names(peers, online))
        return b"".join(rows)

    def _names(self, peers: tuple[PeerInfo, ...], online: int) -> bytes:
        chan = self.channel or channel(None)
        nicks = [peer.nick for peer in peers]
        rows: list[bytes] = []
        row: list[str] = []
        for nick in nicks:
            if sum(len(n) + 1 for n in row) + len(nick) > 400:
                rows.append(self.numeric("353", "=", chan, " ".join(row)))
                row = []
            row.append(nick)
        if row:
            rows.append(self.numeric("353", "=", chan, " ".join(row)))
        more = f" ({online - len(nicks)} more not listed)" if online > len(nicks) else ""
        rows.append(self.numeric("366", chan, f"End of /NAMES list{more}"))
        return b"".join(rows)

    def _roster(self, roster: Roster) -> bytes:
        asked = self.asked.popleft() if self.asked else "WHO"
        if asked == "NAMES":
            return self._names(roster.peers, roster.online)
        chan = channel(roster.room)
        rows = []
        for peer in roster.peers:
            host = irc_host(peer.addr)
            rows.append(
                self.numeric("352", chan, peer.nick, host, SERVER, peer.nick, "H", f"0 {peer.nick}")
            )
        rows.append(self.numeric("315", chan, "End of /WHO list"))
        return b"".join(rows)

    def _error(self, error: Error) -> bytes:
        code = _NUMERIC.get(error.code)
        if code is None:
            return notice(self.nick, f"error: {error.message}")
        subject = self.asked_about.get(code, "*" if code == "421" else None)
        if subject is not None:  # the nick or target the numeric is about
            return self.numeric(code, subject, error.message)
        return self.numeric(code, error.message)


#: What each event says to an IRC peer (Message and the broadcasts aside).
IrcConnection._SAY = {
    Welcome: IrcConnection._welcome,
    Entered: IrcConnection._entered_event,
    Roster: IrcConnection._roster,
    Rooms: IrcConnection._rooms,
    Renamed: IrcConnection._renamed,
    Error: IrcConnection._error,
    Bye: IrcConnection._bye,
    Ping: IrcConnection._ping,
    Pong: IrcConnection._pong,
    Info: IrcConnection._info,
    Ack: IrcConnection._ack,
}
