"""The sans-I/O connection: bytes in, events out; events in, bytes out."""

from __future__ import annotations

from enum import Enum

from . import codec, plain
from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .events import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    Ack,
    Bye,
    Error,
    Event,
    Hello,
    Ping,
    Pong,
    Welcome,
)
from .framing import LineFramer
from .limits import (
    CLIENT_MIN_LINE_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_BLANK_LINES_PER_CALL,
    MAX_VERSION,
    MIN_VERSION,
    client_line_limit,
)


class Role(Enum):
    """Which end of the connection we are."""

    SERVER = "server"
    CLIENT = "client"


class PeerKind(Enum):
    """What the server has learnt about a peer from its first line."""

    UNKNOWN = "unknown"  # no complete line yet: receives plain text meanwhile
    RICH = "rich"  # first line was a hello: JSON both ways
    PLAIN = "plain"  # anything else: text lines and /commands


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Returned by :meth:`Connection.next_event` when more bytes are needed.
NEED_DATA = _Sentinel("NEED_DATA")
#: Returned by :meth:`Connection.next_event` once the peer's stream has ended.
CLOSED = _Sentinel("CLOSED")

_ANYTIME = (Ping, Pong)
#: Frames only rich peers get: plain-text peers are not pinged (TCP keepalive covers
#: them) and send no sequence numbers to acknowledge.
_RICH_ONLY = (Ping, Pong, Ack)


class Connection:
    """One end of a peerchat connection, with no I/O of its own.

    Feed received bytes to :meth:`receive_data` (``b""`` for end of stream) and
    call :meth:`next_event` until it returns ``NEED_DATA`` or ``CLOSED``. A
    :class:`RemoteProtocolError` raised there concerns one bad line only, unless
    its ``fatal`` flag is set; calling again carries on with the next line.
    :meth:`send` turns an event into the bytes to write.

    As a server, the first complete line decides the peer's kind: a hello makes
    it RICH (JSON), anything else PLAIN; with ``json_only``, anything else is a fatal
    error. As a client, every line received before
    the welcome that is not an error or bye is skipped: a server talks plain text
    to a peer until it knows better (PROTOCOL.md, "Connection start").
    """

    def __init__(self, role: Role, *, max_line: int | None = None, json_only: bool = False) -> None:
        self.role = role
        #: Server side: the peer speaks JSON from its first frame (a WebSocket peer, whose
        #: transport says what it is): its first line must be a hello, and what it is sent
        #: before the hello (an error, a bye) is JSON too.
        self.json_only = json_only
        if max_line is None:
            max_line = DEFAULT_MAX_LINE_BYTES if role is Role.SERVER else CLIENT_MIN_LINE_BYTES
        self._framer = LineFramer(max_line)
        self.kind = PeerKind.UNKNOWN if role is Role.SERVER else PeerKind.RICH
        #: The negotiated protocol version once the handshake is done.
        self.version: int | None = None
        self._eof = False
        self._greeted = False  # client: welcome received; server: hello received
        self._hello_sent = False
        self._bye_sent = False
        #: Server side: show the time before each message sent to a plain-text peer.
        self.timestamps = False
        #: Lines read that were no event (blank ones): flood control charges them too.
        self.lines_skipped = 0
        #: Lines to read one by one before a block is tried again (next_chat_lines).
        self._by_line = 0

    # --- receiving ---------------------------------------------------------------------

    @property
    def max_line(self) -> int:
        return self._framer.max_line

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed its side."""
        if data:
            if self._eof:
                raise LocalProtocolError(ErrorCode.UNEXPECTED, "data received after end of stream")
            self._framer.feed(data)
        else:
            self._eof = True

    @property
    def line_waiting(self) -> bool:
        """Whether a line (or an error, or the end of the stream) waits to be read by
        :meth:`next_event` without more data: what flood control must pace."""
        return self._framer.has_line() or (self._eof and self._framer.buffered > 0)

    def next_event(self) -> Event | _Sentinel:
        """The next event, ``NEED_DATA`` or ``CLOSED``; may raise RemoteProtocolError.

        Lines that are no event (blank ones) are skipped and counted in
        :attr:`lines_skipped`. As a server, at most ``MAX_BLANK_LINES_PER_CALL`` of them
        in one call: then ``NEED_DATA`` comes early, with :attr:`line_waiting` still
        true, so that one call's work is bounded and the caller can pace the rest.
        """
        skipped = 0
        while True:
            line = self._framer.next_line()
            if self._by_line and line is not None:
                self._by_line -= 1
            if line is None:
                if not self._eof:
                    return NEED_DATA
                line = self._framer.close()
                if line is None:
                    return CLOSED
            event = self._decode(line)
            if event is not None:
                return event
            self.lines_skipped += 1
            skipped += 1
            if skipped >= MAX_BLANK_LINES_PER_CALL and self.role is Role.SERVER:
                return NEED_DATA

    def chat_block_waiting(self) -> bool:
        """Whether :meth:`next_chat_lines` may give a block now: a plain-text peer on
        the server side, with two complete lines or more waiting, none of them known
        to need a closer look. Cheap: ask it before taking flood budget for a block."""
        return (
            self.kind is PeerKind.PLAIN
            and self.role is Role.SERVER
            and not self._by_line
            and self._framer.has_lines(2)
        )

    def next_chat_lines(self, limit: int) -> list[str] | None:
        """Server, plain-text peer: the texts of up to ``limit`` complete lines at once,
        when there are two or more and every one is an ordinary chat line: what
        :meth:`next_event` would give, one call each, as ``Say(text)``. Otherwise
        ``None``, and nothing is taken: read on with :meth:`next_event`.
        """
        if not self.chat_block_waiting():
            return None
        block, count = self._framer.peek_lines(limit)
        if count < 2:
            return None
        texts = plain.decode_chat_block(block, self._framer.max_line)
        if texts is None:
            # Some line of these needs a closer look: read them all one by one, rather
            # than look at the rest of the block again after each line.
            self._by_line = count
            return None
        self._framer.skip(len(block))
        return texts

    def _decode(self, line: bytes) -> Event | None:
        if self.role is Role.CLIENT:
            return self._decode_from_server(line)
        if self.kind is PeerKind.UNKNOWN:
            return self._decode_first_line(line)
        if self.kind is PeerKind.PLAIN:
            return plain.decode_plain(line)
        version = self.version or MAX_VERSION
        event = codec.from_wire(codec.parse_json_object(line), CLIENT_EVENTS, version)
        if isinstance(event, Hello):
            raise RemoteProtocolError(ErrorCode.UNEXPECTED, "hello was already received")
        return event

    def _decode_first_line(self, line: bytes) -> Event | None:
        # Cheap test first: a hello is a JSON object, so it starts with '{'.
        if line.lstrip()[:1] == b"{":
            try:
                obj = codec.parse_json_object(line)
            except RemoteProtocolError:
                obj = None
            if obj is not None and obj.get("type") == Hello.TYPE:
                self.kind = PeerKind.RICH
                return self._accept_hello(obj)
        if self.json_only:
            raise RemoteProtocolError(
                ErrorCode.UNEXPECTED,
                'the first frame must be a hello, such as {"type":"hello","version":'
                f'{MAX_VERSION},"nick":"NAME"}}; see PROTOCOL.md',
                fatal=True,
            )
        self.kind = PeerKind.PLAIN
        return plain.decode_plain(line)

    def _accept_hello(self, obj: dict[str, object]) -> Hello:
        try:
            hello = codec.from_wire(obj, CLIENT_EVENTS)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(exc.code, f"bad hello: {exc.message}", fatal=True) from None
        assert isinstance(hello, Hello)
        if hello.version < MIN_VERSION:
            raise RemoteProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {hello.version} is not supported: this server speaks "
                f"versions {MIN_VERSION} to {MAX_VERSION}; upgrade your client",
                fatal=True,
            )
        self.version = min(hello.version, MAX_VERSION)
        self._greeted = True
        return hello

    def _decode_from_server(self, line: bytes) -> Event | None:
        if not self._greeted:
            # Before the welcome, only JSON errors and byes matter; the rest is
            # text the server sends any peer it has not yet heard a hello from.
            if line.lstrip()[:1] != b"{":
                return None
            try:
                obj = codec.parse_json_object(line)
            except RemoteProtocolError:
                return None
            if obj.get("type") not in (Welcome.TYPE, Error.TYPE, Bye.TYPE):
                return None
            event = codec.from_wire(obj, SERVER_EVENTS)
            if isinstance(event, Welcome):
                self._on_welcome(event)
            return event
        version = self.version or MAX_VERSION
        return codec.from_wire(codec.parse_json_object(line), SERVER_EVENTS, version)

    def _on_welcome(self, welcome: Welcome) -> None:
        if not MIN_VERSION <= welcome.version <= MAX_VERSION:
            raise RemoteProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"the server chose protocol version {welcome.version}, "
                f"which this client does not speak ({MIN_VERSION} to {MAX_VERSION})",
                fatal=True,
            )
        self.version = welcome.version
        self._greeted = True
        if welcome.max_line:
            self._framer.max_line = max(self._framer.max_line, client_line_limit(welcome.max_line))

    # --- sending -------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """The bytes to write for ``event``; LocalProtocolError if it may not be sent now."""
        if self._bye_sent:
            raise LocalProtocolError(ErrorCode.UNEXPECTED, "nothing may be sent after bye")
        if self.role is Role.CLIENT:
            return self._send_as_client(event)
        if SERVER_EVENTS.get(event.TYPE) is not type(event):
            raise LocalProtocolError(ErrorCode.UNEXPECTED, f"a server does not send {event.TYPE!r}")
        if isinstance(event, Bye):
            self._bye_sent = True
        if self.kind is PeerKind.RICH or self.json_only:
            return codec.encode_json(event, self.version or MAX_VERSION)
        if isinstance(event, _RICH_ONLY):
            return b""
        if isinstance(event, Welcome):
            raise LocalProtocolError(ErrorCode.UNEXPECTED, "plain-text peers get no welcome")
        return plain.encode_plain(event, timestamps=self.timestamps)

    def _send_as_client(self, event: Event) -> bytes:
        if CLIENT_EVENTS.get(event.TYPE) is not type(event):
            raise LocalProtocolError(ErrorCode.UNEXPECTED, f"a client does not send {event.TYPE!r}")
        if isinstance(event, Hello):
            if self._hello_sent:
                raise LocalProtocolError(ErrorCode.UNEXPECTED, "hello was already sent")
            self._hello_sent = True
        elif not self._hello_sent:
            raise LocalProtocolError(ErrorCode.UNEXPECTED, "the first frame must be a hello")
        return codec.encode_json(event, self.version or MAX_VERSION)
