"""The closed family of events: one frozen dataclass per kind of frame.

Every event validates itself on construction, so an invalid event cannot exist:
building one with a bad field raises :class:`LocalProtocolError`. Decoders turn
that into :class:`RemoteProtocolError` when the bad value came off the wire.
Text fields must already be clean (see :func:`peerchat_protocol.text.sanitize`);
the decoders sanitize what peers send before building events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ErrorCode, LocalProtocolError
from .limits import (
    MAX_INTEGER,
    MAX_ROOM_ENTRIES,
    MAX_ROSTER_ENTRIES,
    MAX_VERSION,
    SHORT_TEXT_MAX_LENGTH,
    TOKEN_MAX_LENGTH,
)
from .text import is_clean, name_problem, nick_problem, room_problem


def _require(condition: bool, message: str, code: ErrorCode = ErrorCode.BAD_FRAME) -> None:
    if not condition:
        raise LocalProtocolError(code, message)


def _check_int(value: object, what: str, minimum: int = 0) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_INTEGER,
        f"{what} must be an integer from {minimum} to {MAX_INTEGER}",
    )


def _check_text(
    value: object, what: str, *, empty_ok: bool = False, newlines: bool = False
) -> None:
    _require(isinstance(value, str), f"{what} must be a string")
    assert isinstance(value, str)
    _require(empty_ok or value != "", f"{what} must not be empty")
    _require(is_clean(value, keep_newlines=newlines), f"{what} contains control characters")


def _check_short(value: object, what: str, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    _check_text(value, what)
    assert isinstance(value, str)
    _require(
        len(value) <= SHORT_TEXT_MAX_LENGTH,
        f"{what} has at most {SHORT_TEXT_MAX_LENGTH} characters",
    )


def _check_name(value: object, what: str) -> None:
    _require(isinstance(value, str), f"{what} must be a string")
    assert isinstance(value, str)
    problem = name_problem(value)
    _require(problem is None, f"{what}: {problem}")


def _check_bool(value: object, what: str) -> None:
    _require(isinstance(value, bool), f"{what} must be true or false")


def _check_room(value: object, what: str = "room", *, optional: bool = True) -> None:
    if value is None and optional:
        return
    _require(isinstance(value, str), f"{what} must be a string", ErrorCode.INVALID_ROOM)
    assert isinstance(value, str)
    problem = room_problem(value)
    _require(
        problem is None, f"invalid room name {value[:40]!r}: {problem}", ErrorCode.INVALID_ROOM
    )


def _check_token(value: object, what: str) -> None:
    if value is None:
        return
    _check_text(value, what)
    assert isinstance(value, str)
    _require(len(value) <= TOKEN_MAX_LENGTH, f"{what} has at most {TOKEN_MAX_LENGTH} characters")


def _check_optional_int(value: object, what: str) -> None:
    if value is not None:
        _check_int(value, what)


def _check_nick(value: object) -> None:
    _require(isinstance(value, str), "nick must be a string", ErrorCode.INVALID_NICK)
    assert isinstance(value, str)
    problem = nick_problem(value)
    _require(problem is None, f"invalid nickname {value[:40]!r}: {problem}", ErrorCode.INVALID_NICK)


class Event:
    """Base of every event. ``TYPE`` is the frame's ``type`` on the wire;
    ``SINCE`` the protocol version that introduced it."""

    __slots__ = ()
    TYPE: ClassVar[str]
    SINCE: ClassVar[int] = 1
    #: Members added after ``SINCE``, with the version that added each: they are
    #: left out when talking to an older peer, and ignored when one sends them.
    MEMBERS_SINCE: ClassVar[dict[str, int]] = {}


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One entry of a roster: a peer's name and the address the server sees."""

    nick: str
    addr: str

    def __post_init__(self) -> None:
        _check_name(self.nick, "nick")
        _check_short(self.addr, "addr", optional=False)


def _check_peers(peers: object, online: object) -> None:
    _require(isinstance(peers, tuple), "peers must be a tuple of PeerInfo")
    assert isinstance(peers, tuple)
    _require(all(isinstance(p, PeerInfo) for p in peers), "peers must hold PeerInfo entries")
    _require(len(peers) <= MAX_ROSTER_ENTRIES, f"at most {MAX_ROSTER_ENTRIES} peers are listed")
    _check_int(online, "online")
    assert isinstance(online, int)
    _require(online >= len(peers), "online counts at least the listed peers")


# --- sent by peers (clients) to the server ----------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Event):
    """First frame of a rich peer: the newest protocol version it speaks, a wanted nick.

    A peer coming back after losing its connection (v3) also gives ``resume`` (the
    ``session`` of its last welcome), the ``room`` it was in, and the ``epoch`` and
    id of the newest message it saw (``last_id``) and that message's time
    (``last_ts``, for a server of another epoch), so that the server can give it back
    its name and room and replay what it missed.
    """

    TYPE: ClassVar[str] = "hello"
    MEMBERS_SINCE: ClassVar[dict[str, int]] = {
        "resume": 3, "room": 3, "epoch": 3, "last_id": 3, "last_ts": 3,
    }  # fmt: skip
    #: Members a peer must send even though this class gives them a default.
    WIRE_REQUIRED: ClassVar[tuple[str, ...]] = ("version",)
    version: int = MAX_VERSION
    nick: str | None = None
    client: str | None = None
    password: str | None = None
    resume: str | None = None
    room: str | None = None
    epoch: str | None = None
    last_id: int | None = None
    last_ts: int | None = None

    def __repr__(self) -> str:  # never print a secret (logs, tracebacks)
        password = "None" if self.password is None else "'***'"
        resume = "None" if self.resume is None else "'***'"
        return (
            f"Hello(version={self.version!r}, nick={self.nick!r}, "
            f"client={self.client!r}, password={password}, resume={resume}, "
            f"room={self.room!r}, epoch={self.epoch!r}, last_id={self.last_id!r}, "
            f"last_ts={self.last_ts!r})"
        )

    def __post_init__(self) -> None:
        # Any version number is a valid hello; negotiation decides if it is spoken.
        _check_int(self.version, "version")
        if self.nick is not None:
            _check_nick(self.nick)
        _check_short(self.client, "client")
        _check_short(self.password, "password")
        _check_token(self.resume, "resume")
        _check_room(self.room)
        _check_token(self.epoch, "epoch")
        _check_optional_int(self.last_id, "last_id")
        _check_optional_int(self.last_ts, "last_ts")


@dataclass(frozen=True, repr=False, slots=True)
class Pass(Event):
    """The server's password, from a peer that has not given it yet (``/pass SECRET``)."""

    TYPE: ClassVar[str] = "pass"
    SINCE: ClassVar[int] = 2
    password: str

    def __repr__(self) -> str:
        return "Pass(password='***')"

    def __post_init__(self) -> None:
        _check_short(self.password, "password", optional=False)


@dataclass(frozen=True, slots=True)
class Say(Event):
    """A chat line for everyone else in your room; with ``to``, for that peer alone
    (a private message); with ``action``, an action such as ``/me waves``."""

    TYPE: ClassVar[str] = "say"
    #: ``seq`` (v3): the sender's own number for this line, increasing by one per
    #: line; the server acknowledges it (:class:`Ack`) and ignores a repeat.
    MEMBERS_SINCE: ClassVar[dict[str, int]] = {"seq": 3}
    text: str
    to: str | None = None
    action: bool = False
    seq: int | None = None

    def __post_init__(self) -> None:
        _check_text(self.text, "text")
        _require(not self.text.isspace(), "text must not be blank")
        if self.to is not None:
            _check_name(self.to, "to")
        _check_bool(self.action, "action")
        _check_optional_int(self.seq, "seq")
        _require(not (self.action and self.to), "a private message cannot be an action")


@dataclass(frozen=True, slots=True)
class JoinRoom(Event):
    """Move to another room (created on first join); answered by :class:`Entered`."""

    TYPE: ClassVar[str] = "join_room"
    SINCE: ClassVar[int] = 2
    room: str

    def __post_init__(self) -> None:
        _check_room(self.room, optional=False)


@dataclass(frozen=True, slots=True)
class LeaveRoom(Event):
    """Go back to the default room."""

    TYPE: ClassVar[str] = "leave_room"
    SINCE: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class ListRooms(Event):
    """Ask which rooms exist; answered by :class:`Rooms`."""

    TYPE: ClassVar[str] = "list_rooms"
    SINCE: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class History(Event):
    """Ask for what was said in one's room before, up to ``limit`` messages (None: as
    many as the server keeps); answered by :class:`Message` frames marked ``history``,
    oldest first, then an :class:`Info` that says how many."""

    TYPE: ClassVar[str] = "history"
    SINCE: ClassVar[int] = 3
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            _check_int(self.limit, "limit", 1)


@dataclass(frozen=True, slots=True)
class Timestamps(Event):
    """Show (or stop showing) the time before each message: for plain-text peers."""

    TYPE: ClassVar[str] = "timestamps"
    SINCE: ClassVar[int] = 2
    on: bool

    def __post_init__(self) -> None:
        _check_bool(self.on, "on")


@dataclass(frozen=True, slots=True)
class ChangeNick(Event):
    """Ask to be known by another nickname."""

    TYPE: ClassVar[str] = "nick"
    nick: str

    def __post_init__(self) -> None:
        _check_nick(self.nick)


@dataclass(frozen=True, slots=True)
class Who(Event):
    """Ask who is online; answered by :class:`Roster`."""

    TYPE: ClassVar[str] = "who"


@dataclass(frozen=True, slots=True)
class Help(Event):
    """Ask for the list of commands; answered by :class:`Info`."""

    TYPE: ClassVar[str] = "help"


@dataclass(frozen=True, slots=True)
class Quit(Event):
    """Leave the chat, optionally saying why."""

    TYPE: ClassVar[str] = "quit"
    reason: str | None = None

    def __post_init__(self) -> None:
        _check_short(self.reason, "reason")


# --- sent both ways -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping(Event):
    """Are you there? The receiver answers with a :class:`Pong` carrying the same token."""

    TYPE: ClassVar[str] = "ping"
    token: str = ""

    def __post_init__(self) -> None:
        _check_text(self.token, "token", empty_ok=True)
        _require(len(self.token) <= 64, "token has at most 64 characters")


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """The answer to a :class:`Ping`."""

    TYPE: ClassVar[str] = "pong"
    token: str = ""

    def __post_init__(self) -> None:
        _check_text(self.token, "token", empty_ok=True)
        _require(len(self.token) <= 64, "token has at most 64 characters")


# --- sent by the server ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """The server's answer to a hello: the negotiated version, your name, who is here.

    Since v3 it also gives ``session``, the secret to resume this session after a
    lost connection, and ``epoch``, which names this run of the server (message ids
    compare only within one). Answering a resuming hello: ``resumed`` when the
    session was found (name and room given back; ``acked`` is the last ``seq``
    accepted from it), ``missed`` messages follow as catch-up, and ``gap`` says
    more were said than the server kept.
    """

    TYPE: ClassVar[str] = "welcome"
    MEMBERS_SINCE: ClassVar[dict[str, int]] = {
        "session": 3, "epoch": 3, "resumed": 3, "acked": 3, "missed": 3, "gap": 3,
    }  # fmt: skip
    version: int
    nick: str
    addr: str
    online: int
    peers: tuple[PeerInfo, ...] = ()
    server: str = "peerchat"
    max_line: int = 0
    room: str | None = None
    session: str | None = None
    epoch: str | None = None
    resumed: bool = False
    acked: int | None = None
    missed: int | None = None
    gap: bool = False

    def __repr__(self) -> str:  # the session is a secret: never in logs
        session = "None" if self.session is None else "'***'"
        return (
            f"Welcome(version={self.version!r}, nick={self.nick!r}, addr={self.addr!r}, "
            f"online={self.online!r}, room={self.room!r}, session={session}, "
            f"epoch={self.epoch!r}, resumed={self.resumed!r}, acked={self.acked!r}, "
            f"missed={self.missed!r}, gap={self.gap!r})"
        )

    def __post_init__(self) -> None:
        _check_int(self.version, "version", minimum=1)
        _check_name(self.nick, "nick")
        _check_short(self.addr, "addr", optional=False)
        _check_peers(self.peers, self.online)
        _check_short(self.server, "server", optional=False)
        _check_int(self.max_line, "max_line")
        _check_room(self.room)
        _check_token(self.session, "session")
        _check_token(self.epoch, "epoch")
        _check_bool(self.resumed, "resumed")
        _check_optional_int(self.acked, "acked")
        _check_optional_int(self.missed, "missed")
        _check_bool(self.gap, "gap")


@dataclass(frozen=True, slots=True)
class Message(Event):
    """A chat line relayed by the server: who said it, when (Unix ms), and its id.

    ``room``: the room it was said in; ``to``: set on a private message (your
    nick); ``action``: ``/me`` text; ``history``: said before you joined, replayed.
    """

    TYPE: ClassVar[str] = "message"
    id: int
    nick: str
    text: str
    ts: int
    room: str | None = None
    to: str | None = None
    action: bool = False
    history: bool = False

    def __post_init__(self) -> None:
        _check_int(self.id, "id")
        _check_name(self.nick, "nick")
        _check_text(self.text, "text")
        _check_int(self.ts, "ts")
        _check_room(self.room)
        if self.to is not None:
            _check_name(self.to, "to")
        _check_bool(self.action, "action")
        _check_bool(self.history, "history")

    @classmethod
    def relay(
        cls, id: int, say: Say, nick: str, ts: int, room: str | None, to: str | None = None
    ) -> Message:
        """The message a server relays for ``say``, built without checking again.

        Every part is already valid: the text and flags come from a ``Say`` (checked
        when it was built), the names and room are ones the server accepted earlier,
        and ``id``/``ts`` are its own counters. On the hot path of a relay, checking
        them again per message was a quarter of the time spent on it.
        """
        return _unchecked_message(id, nick, say.text, ts, room, to, say.action)

    @classmethod
    def said(cls, id: int, text: str, nick: str, ts: int, room: str | None) -> Message:
        """The message a server relays for the chat line ``text`` said in ``room``, built
        without checking again (see :meth:`relay`): ``text`` passed the same checks as
        a ``Say``'s (a block of plain-text lines, ``decode_chat_block``)."""
        return _unchecked_message(id, nick, text, ts, room, None, False)

    def renumbered(self, id: int) -> Message:
        """This message with another ``id``, built without checking again (see relay).

        A server that relays a message another server accepted gives it an id of its
        own, so that the ids its peers see keep increasing.
        """
        message = object.__new__(Message)
        for name in ("nick", "text", "ts", "room", "to", "action", "history"):
            object.__setattr__(message, name, getattr(self, name))
        object.__setattr__(message, "id", id)
        return message


_set = object.__setattr__


def _unchecked_message(
    id: int, nick: str, text: str, ts: int, room: str | None, to: str | None, action: bool
) -> Message:
    message = object.__new__(Message)
    _set(message, "id", id)
    _set(message, "nick", nick)
    _set(message, "text", text)
    _set(message, "ts", ts)
    _set(message, "room", room)
    _set(message, "to", to)
    _set(message, "action", action)
    _set(message, "history", False)
    return message


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """Someone joined ``room``; ``online`` counts who is in it now."""

    TYPE: ClassVar[str] = "join"
    nick: str
    online: int
    room: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.nick, "nick")
        _check_int(self.online, "online")
        _check_room(self.room)


@dataclass(frozen=True, slots=True)
class Left(Event):
    """Someone left ``room`` (or the chat), and why when known."""

    TYPE: ClassVar[str] = "leave"
    nick: str
    online: int
    reason: str | None = None
    room: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.nick, "nick")
        _check_int(self.online, "online")
        _check_short(self.reason, "reason")
        _check_room(self.room)


@dataclass(frozen=True, slots=True)
class Renamed(Event):
    """Someone changed nickname (possibly you)."""

    TYPE: ClassVar[str] = "renamed"
    old: str
    new: str

    def __post_init__(self) -> None:
        _check_name(self.old, "old")
        _check_name(self.new, "new")


@dataclass(frozen=True, slots=True)
class Roster(Event):
    """The answer to :class:`Who`: up to MAX_ROSTER_ENTRIES peers, and the full count."""

    TYPE: ClassVar[str] = "roster"
    online: int
    peers: tuple[PeerInfo, ...] = field(default=())
    room: str | None = None

    def __post_init__(self) -> None:
        _check_peers(self.peers, self.online)
        _check_room(self.room)


@dataclass(frozen=True, slots=True)
class Entered(Event):
    """You are now in ``room``: who is there (as in :class:`Roster`)."""

    TYPE: ClassVar[str] = "entered"
    SINCE: ClassVar[int] = 2
    room: str
    online: int
    peers: tuple[PeerInfo, ...] = ()

    def __post_init__(self) -> None:
        _check_room(self.room, optional=False)
        _check_peers(self.peers, self.online)


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """One entry of a :class:`Rooms` answer."""

    name: str
    online: int

    def __post_init__(self) -> None:
        _check_room(self.name, "name", optional=False)
        _check_int(self.online, "online")


@dataclass(frozen=True, slots=True)
class Rooms(Event):
    """The answer to :class:`ListRooms`: rooms and head counts, busiest first."""

    TYPE: ClassVar[str] = "rooms"
    SINCE: ClassVar[int] = 2
    rooms: tuple[RoomInfo, ...] = ()

    def __post_init__(self) -> None:
        _require(
            isinstance(self.rooms, tuple) and all(isinstance(r, RoomInfo) for r in self.rooms),
            "rooms must be a tuple of RoomInfo",
        )
        _require(
            len(self.rooms) <= MAX_ROOM_ENTRIES, f"at most {MAX_ROOM_ENTRIES} rooms are listed"
        )


@dataclass(frozen=True, slots=True)
class Info(Event):
    """Human-readable text from the server (help, notices). May span several lines."""

    TYPE: ClassVar[str] = "info"
    text: str

    def __post_init__(self) -> None:
        _check_text(self.text, "text", newlines=True)


@dataclass(frozen=True, slots=True)
class Error(Event):
    """Something you sent was refused. ``code`` is an :class:`ErrorCode` value
    (kept as a plain string so codes from newer servers still decode)."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    def __post_init__(self) -> None:
        _check_short(self.code, "code", optional=False)
        _check_text(self.message, "message")


@dataclass(frozen=True, slots=True)
class Ack(Event):
    """(v3) Every ``say`` up to ``seq`` has been handled: relayed, or refused with an error.

    ``id``: the message id the last of them got, if it was a room message; a client
    counts it as seen (its own lines never come back to it), so that a catch-up after
    a reconnect starts after it.
    """

    TYPE: ClassVar[str] = "ack"
    SINCE: ClassVar[int] = 3
    seq: int
    id: int | None = None

    def __post_init__(self) -> None:
        _check_int(self.seq, "seq")
        _check_optional_int(self.id, "id")


@dataclass(frozen=True, slots=True)
class Bye(Event):
    """The server is closing this connection, and why. Nothing follows it."""

    TYPE: ClassVar[str] = "bye"
    reason: str
    code: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.reason, "reason")
        _check_short(self.code, "code")


#: Frames a client may send, and frames a server may send, by wire type.
CLIENT_EVENTS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Say, ChangeNick, Who, Help, Quit, Ping, Pong,
        JoinRoom, LeaveRoom, ListRooms, Timestamps, Pass, History,
    )
}  # fmt: skip
SERVER_EVENTS: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        Welcome, Message, Joined, Left, Renamed, Roster, Info, Error, Bye, Ping, Pong,
        Entered, Rooms, Ack,
    )
}  # fmt: skip
