"""A WebSocket peer: a browser or a bot, one JSON event per text frame (PROTOCOL.md §9).

Another kind of peer, not a bridge: the same rooms, names, history, resume, limits,
flood control and password as a JSON-lines peer, because it *is* a session with
another transport. RFC 6455 (the opening handshake, frame parsing, unmasking, ping
and pong, the closing handshake) is the websockets library's sans-I/O
``ServerProtocol``; this asyncio protocol drives it, as :class:`~.session.Session`
drives :class:`peerchat_protocol.Connection`. So:

- each text frame goes into the peer's ``Connection`` as one JSON line (its line limit,
  UTF-8 check and error handling unchanged), and the read loop, flood budgets and room
  pace of :class:`~.reading.Reading` serve it as they serve any peer;
- what it is sent is encoded once per form as complete WebSocket frames
  (:class:`WsForm`) and shared by every recipient, like any other form's bytes: a
  fan-out to a thousand browsers frames each message once;
- a browser that stops reading backs up its transport like any slow consumer
  (``pause_writing``) and is waited for or dropped by the same rules.

Before its handshake a connection is plain HTTP (page.py answers it) and no peer: it
counts against its address's connections, and has HANDSHAKE_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import cast

from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from peerchat_protocol import (
    Bye,
    Connection,
    Error,
    ErrorCode,
    Event,
    PeerKind,
    RemoteProtocolError,
    Role,
    encode_json,
)

from .page import Site, plain_response
from .relay import Relay
from .session import Session
from .sockets import format_addr
from .wsframes import POLICY, SILENT, close_code, close_frame, text_frame, ws_form

#: Seconds a connection has to finish its HTTP request or WebSocket handshake.
HANDSHAKE_TIMEOUT = 10.0
#: A WebSocket message larger than this many times the line limit is not even buffered:
#: the connection is closed (1009). Between the two, the message is refused with
#: ``line_too_long`` and the connection goes on, as for a long line.
OVERSIZE_FACTOR = 4

#: websockets logs each connection at INFO: our console says what matters instead.
_QUIET = logging.getLogger("peerchat_server.websocket")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

_BINARY = RemoteProtocolError(
    ErrorCode.BAD_FRAME,
    "binary frames are not read here: send each event as one JSON text frame "
    "(PROTOCOL.md §9); it was discarded",
)


_NOT_HELLO = RemoteProtocolError(
    ErrorCode.UNEXPECTED,
    'the first frame must be a hello, such as {"type":"hello","version":3,"nick":"NAME"} '
    "in a text frame; see PROTOCOL.md §9",
    fatal=True,
)


class WebSocketSession(Session):
    """An HTTP request (the page) or, once upgraded, a peer that speaks JSON in frames."""

    __slots__ = (
        "_binary", "_close_received", "_close_sent", "_controls", "_counted", "_handshake",
        "_open", "_site", "_ws",
    )  # fmt: skip

    def __init__(self, relay: Relay, site: Site) -> None:
        cfg = relay.config
        conn = Connection(Role.SERVER, max_line=cfg.max_line_bytes, json_only=True)
        super().__init__(relay, conn)
        self._site = site
        self._ws = ServerProtocol(max_size=OVERSIZE_FACTOR * cfg.max_line_bytes, logger=_QUIET)
        self._open = False  # the handshake is done: a peer
        self._binary = False  # inside a fragmented binary message (skipped)
        self._close_received = False
        self._close_sent = False
        self._controls = 0  # pings, pongs and empty fragments in this read: they cost too
        self._counted = False  # it holds one of its address's connections, unregistered
        self._handshake: asyncio.TimerHandle | None = None
        self.form = SILENT

    peer_kind = "websocket"

    def reform(self) -> None:
        conn = self.conn
        self.form = ws_form(conn.version or 0) if conn.kind is PeerKind.RICH else SILENT

    # --- HTTP, until the handshake ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.addr = self.name = format_addr(peername)
        relay = self.relay
        if relay.closing:
            self._closing = True
            self.transport.abort()
            return
        host = str(peername[0]) if isinstance(peername, tuple) else self.addr
        self.address = relay.registry.addresses.get(host)
        cfg = relay.config
        if cfg.max_per_address and self.address.connections >= cfg.max_per_address:
            self._closing = True  # (so that it is not counted when it goes)
            self.relay.stats.refused += 1
            why = f"too many connections from {self.address.key}; close one and try again"
            self._answer(plain_response(503, "Service Unavailable", f"Refused: {why}.\n"))
            return
        # Until it is a peer, it takes one of its address's connections (an attacker
        # opening many and sending nothing gets no more than from the chat port).
        self.address.connections += 1
        self._counted = True
        loop = asyncio.get_running_loop()
        self._handshake = loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timed_out)

    SILENT_LISTENERS = False  # its first frame is a hello (Session._announce_later)

    def _never_introduced(self) -> None:
        if self.conn.kind is PeerKind.UNKNOWN and not self._closing:
            timeout = self.relay.config.auth_timeout
            why = f"no hello in {timeout:g} s"
            text = f"disconnected: {why}; a WebSocket peer's first frame is its JSON hello"
            self.close(Bye(text, code=ErrorCode.AUTH_TIMEOUT), log_reason=why)

    def _handshake_timed_out(self) -> None:
        self._handshake = None
        if not self._open and self.transport is not None:
            self.transport.abort()

    def _on_request(self, request: Request) -> None:
        ws = self._ws
        response = self._site.respond(request)
        if response is None:
            response = ws.accept(request)  # or a 4xx: not a valid handshake
        ws.send_response(response)
        self._write_handshake()
        if response.status_code == 101:
            self._upgraded()

    def _answer(self, response: Response) -> None:
        self._ws.send_response(response)
        self._write_handshake()

    def _write_handshake(self) -> None:
        transport = self.transport
        assert transport is not None
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            elif not transport.is_closing():
                transport.close()  # after what was written: the end of an HTTP answer

    def _upgraded(self) -> None:
        """The handshake is done: from now on a peer, in the lobby, like any other."""
        if self._handshake is not None:
            self._handshake.cancel()
            self._handshake = None
        self._open = True
        self._uncount()  # the registry counts it from now on
        assert self.transport is not None
        super().connection_made(self.transport)

    def _refuse(self, why: str) -> None:
        assert self.transport is not None
        self._closing = True
        self.relay.stats.refused += 1
        if self.relay.registry.addresses.log_refusal(self.address):
            self.relay.console.line(
                "REFUSED", f"Peer {self.addr} (WebSocket): {why}.", peer=self.addr
            )
        bye = Bye(f"Connection refused: {why}.", code=ErrorCode.TOO_MANY_CONNECTIONS)
        self.transport.write(text_frame(encode_json(bye)) + close_frame(POLICY, "refused"))
        self._close_sent = True
        self.transport.close()

    # --- frames ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._ws.receive_data(data)
            lines = self._take_events()
            if not self._open:
                self._write_handshake()  # (the answer to a request it could not use)
                return
            self._last_heard = asyncio.get_running_loop().time()
            self._ping_sent = None
            self._handle(lines)
        except Exception:
            self.fail()

    def _take_events(self) -> list[bytes]:
        """The HTTP request, or the text of the frames that came (as JSON lines)."""
        lines: list[bytes] = []
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame) and self._open and not self._closing:
                self._on_frame(event, lines)
        return lines

    def _handle(self, lines: list[bytes]) -> None:
        ws = self._ws
        if self._closing:
            return
        if ws.state is State.OPEN:
            for control in ws.data_to_send():  # pongs, after what is queued
                self._queue(control)
        data = b"".join(lines)
        if data:  # (b"" would say the stream ended)
            self._received(data)
        if self._controls:
            # A control frame costs a line's token, or a flood of pings would be free.
            self._pacer.charge(self.address.lines, self._controls)
            self._controls = 0
            self._process()
        if self._closing:
            return
        if ws.parser_exc is not None:
            self._protocol_failed(ws.parser_exc)
        elif self._close_received:
            self._left()

    def _on_frame(self, frame: Frame, lines: list[bytes]) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING or opcode is Opcode.PONG or not (frame.data or frame.fin):
            self._controls += 1
        if opcode is Opcode.TEXT or (opcode is Opcode.CONT and not self._binary):
            payload = bytes(frame.data)
            if b"\n" in payload or b"\r" in payload:
                # One frame is one line. In JSON a raw line break can only be whitespace
                # between tokens (inside a string it is invalid anyway), so a blank does.
                payload = payload.replace(b"\r", b" ").replace(b"\n", b" ")
            lines.append(payload)
            if frame.fin:
                lines.append(b"\n")
        elif opcode is Opcode.BINARY:
            self._binary = not frame.fin
            self._on_binary(lines)
        elif opcode is Opcode.CONT:  # the rest of a binary message
            self._binary = not frame.fin
        elif opcode is Opcode.CLOSE:
            self._close_received = True

    def _on_binary(self, lines: list[bytes]) -> None:
        """A binary frame: an error, after what came before it is handled."""
        if lines:
            self._received(b"".join(lines))
            lines.clear()
        if not self._closing:
            unknown = self.conn.kind is PeerKind.UNKNOWN  # (its first frame: not a hello)
            self._on_remote_error(_NOT_HELLO if unknown else _BINARY)

    def _protocol_failed(self, exc: Exception) -> None:
        """The websockets library failed the connection (a frame too big, broken framing)."""
        if isinstance(exc, PayloadTooBig):
            limit = self.conn.max_line
            why = f"a WebSocket message far over the limit ({limit} bytes per event)"
            bye = Bye(f"disconnected: {why}", code=ErrorCode.LINE_TOO_LONG)
        else:
            why = f"broken WebSocket framing ({exc})"
            bye = Bye(f"disconnected: {why}", code=ErrorCode.BAD_FRAME)
        self.close(bye, log_reason=why)

    def _left(self) -> None:
        """Its close frame: it leaves, once what it sent before is handled (as at EOF)."""
        self._eof = True
        self.conn.receive_data(b"")
        self._process()
        if self._resume_handle is not None or (self.room.held and self.conn.line_waiting):
            return  # lines still wait: Reading._resume closes after them
        self._finish_after_eof()
        self.close()

    def eof_received(self) -> bool:
        if not self._open:
            return False
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None:
            self._handshake.cancel()
            self._handshake = None
        self._uncount()
        if self._open:
            super().connection_lost(exc)
        self._closing = True

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.address.connections -= 1

    def fail(self) -> None:
        if self._open:
            super().fail()
            return
        # Before the handshake there is no peer to tell: log it, and cut the connection.
        self.relay.console.line(
            "ERROR",
            f"Internal error serving {self.addr} (HTTP):\n{traceback.format_exc().rstrip()}",
            peer=self.addr,
        )
        self._uncount()
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # --- what it is sent ------------------------------------------------------------------

    def send(self, event: Event) -> None:
        if self._closing or (self.conn.kind is PeerKind.UNKNOWN and not _early(event)):
            return  # before the hello only an error or a goodbye is said (in JSON)
        self.relay.outbox.drain()
        self._queue(text_frame(self.conn.send(event)))

    def close(self, bye: Bye | None = None, *, log_reason: str = "", linger: bool = False) -> None:
        if self._closing or self.transport is None:
            return
        if bye is not None:
            self.send(bye)
        if self._open and not self._close_sent:
            self._close_sent = True
            self._queue(close_frame(close_code(bye), "" if bye is None else bye.reason))
        super().close(log_reason=log_reason, linger=linger and not self._close_received)


def _early(event: Event) -> bool:
    return isinstance(event, Error | Bye)
