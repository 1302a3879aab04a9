"""One line-protocol peer's connection: the asyncio Protocol between a socket and the relay.

The session does the I/O and nothing else: callbacks and teardown, the read loop that
turns bytes into events (peerchat_protocol.Connection) and hands each to its command
(commands.py), flood pauses (flood.Pacer decides), liveness, and closing. What it
sends is queued by its base, :class:`~.output.Output`.
"""

from __future__ import annotations

import asyncio
from typing import cast

from peerchat_protocol import (
    NEED_DATA,
    Ack,
    Bye,
    Connection,
    ErrorCode,
    Event,
    Info,
    PeerKind,
    Ping,
    RemoteProtocolError,
    Role,
    encode_json,
    encode_plain,
)

from . import admission, commands
from . import config as defaults
from .commands import COMMANDS
from .flood import Pacer, TokenBucket
from .output import Output
from .peer import Peer
from .relay import Relay
from .resume import Resumable
from .sockets import enable_keepalive, format_addr

#: What a peer may not do before it gives the password.
_NOT_YET = RemoteProtocolError(
    ErrorCode.AUTH_REQUIRED, "give the password first: /pass PASSWORD (nothing was sent)"
)


class Session(Output, asyncio.Protocol):
    """Reads bytes into the protocol, dispatches its events, closes.

    Every callback is wrapped so that a bug while serving one peer closes that peer only.
    """

    # No per-instance __dict__: with 10,000 peers every byte of a session counts.
    __slots__ = (
        "_ack_due", "_ack_id", "_announce_timer", "_connection_key", "_last_heard", "_pacer",
        "_ping_sent", "_resume_handle", "addr", "address", "announced", "authenticated",
        "errors", "history_sent", "name", "resumable",
    )  # fmt: skip

    def __init__(self, relay: Relay) -> None:
        cfg = relay.config
        super().__init__(relay, Connection(Role.SERVER, max_line=cfg.max_line_bytes))
        self.addr = "unknown"
        self.name = "unknown"
        self.announced = False
        self.authenticated = not cfg.password  # with a password, only once it is given
        self.errors = 0
        self.history_sent = False
        self._announce_timer: asyncio.TimerHandle | None = None
        self._pacer = Pacer(TokenBucket(cfg.flood_burst, cfg.flood_rate))
        self._resume_handle: asyncio.TimerHandle | None = None
        self._last_heard = 0.0  # loop time of the last bytes from the peer
        self._ping_sent: float | None = None  # loop time of an unanswered ping
        #: The v3 session this connection serves (None for plain and older peers),
        #: and the newest ``seq`` handled since the last acknowledgement was queued.
        self.resumable: Resumable[Peer] | None = None
        self._ack_due: int | None = None
        self._ack_id: int | None = None  # the id its last acknowledged line got, if any
        self._connection_key = f"conn:{relay.registry.next_connection()}"

    @property
    def origin(self) -> str:
        """Who sent a line, for the room's log: the session (which outlives this
        connection, and whose secret the peer gives back) or else this connection."""
        record = self.resumable
        return record.digest if record is not None else self._connection_key

    @property
    def label(self) -> str:
        """How the console names this peer: the seed's address, plus the nick once set."""
        return self.addr if self.name == self.addr else f"{self.name} ({self.addr})"

    # --- asyncio.Protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.addr = self.name = format_addr(peername)
        host = str(peername[0]) if isinstance(peername, tuple) else self.addr
        relay = self.relay
        if relay.closing:
            self.transport.abort()
            return
        self.address = relay.registry.addresses.get(host)
        refusal = relay.registry.refusal(self)
        if refusal is not None:
            self._refuse(refusal)  # as cheaply as it can: a storm may be under way
            return
        enable_keepalive(transport.get_extra_info("socket"))
        relay.register(self)
        if self.authenticated:
            self.room.wait(self)  # until its first line says whether it wants JSON
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        relay.console.line("NEW CONNECTION", f"Peer {self.addr} connected.")
        relay.console.line("ACTIVE CONNECTIONS", str(len(relay.registry)))
        admission.greet(relay, self)
        if self.authenticated:
            delay, then = relay.config.announce_delay, self._announce_later
        else:
            delay, then = relay.config.auth_timeout, self._auth_timed_out
        self._announce_timer = loop.call_later(delay, then)

    def _refuse(self, why: str) -> None:
        """Turn the connection away at once: one line for people, one for programs."""
        assert self.transport is not None
        self._closing = True
        relay = self.relay
        if relay.registry.addresses.log_refusal(self.address):
            relay.console.line("REFUSED", f"Peer {self.addr}: {why}.")
        bye = Bye(f"Connection refused: {why}.", code=ErrorCode.TOO_MANY_CONNECTIONS)
        self.transport.write(encode_plain(bye) + encode_json(bye))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._last_heard = asyncio.get_running_loop().time()
        self._ping_sent = None
        try:
            # Bytes cost as they arrive, beyond the first KiB of each line (which its
            # token pays for): long lines are paced by size, and a debt pauses reading.
            per_token = defaults.FLOOD_BYTES_PER_TOKEN
            extra = len(data) - per_token * data.count(b"\n")
            if extra > 0:
                self._pacer.own.charge(extra / per_token)
                self.address.lines.charge(extra / per_token)
            self.conn.receive_data(data)
            self._process()
        except Exception:
            self.fail()

    def eof_received(self) -> bool:
        """The peer will send nothing more: it has left, once what it sent is handled."""
        try:
            self._eof = True
            self.conn.receive_data(b"")
            self._process()
            if self._resume_handle is not None:
                return True  # lines still wait behind the flood limit: close after them
            self._finish_after_eof()
        except Exception:
            self.fail()
        return False  # let the transport close once our output is written

    def _finish_after_eof(self) -> None:
        if self._leave_reason is None:
            self._leave_reason = ""  # a clean leave needs no reason
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        # Whatever happens here, the peer leaves the registry and the console says so.
        relay = self.relay
        reason = ""
        try:
            for handle in (self._announce_timer, self._resume_handle, self._linger_handle):
                if handle is not None:
                    handle.cancel()
            reason = self._why_lost(exc)
        finally:
            self._closing = True
            self._pending.clear()
            self._replay = None
            record = self.resumable
            if record is not None and record.session is self:
                relay.registry.book.lost(record, self.name, self.room.name, relay.loop_time())
            if self in relay.registry:
                relay.unregister(self, reason[:200])
                relay.console.line("DISCONNECTED", f"{self.label} removed from peers list.")
                relay.console.line("ACTIVE CONNECTIONS", str(len(relay.registry)))

    # --- reading --------------------------------------------------------------------------

    def _process(self) -> None:
        """Turn buffered bytes into events and handle each, while the flood limit allows.

        The lines handled in one go are acknowledged together, with one ``ack``.
        """
        try:
            while not self._closing:
                if self._say_together():
                    continue
                if not self._take_budget():
                    break
                event = self._next_event()
                if event is None:
                    continue  # a bad line (answered), or blank ones that stopped the read
                if event is NEED_DATA or not isinstance(event, Event):
                    return  # nothing more to read now (or the end of the stream)
                self._dispatch(event)
        finally:
            if self._ack_due is not None:
                self.send(Ack(self._ack_due, self._ack_id))
                self._ack_due = self._ack_id = None

    def _say_together(self) -> bool:
        """A plain-text peer's waiting chat lines, all at once (as far as its budget and
        its address's allow): one broadcast, operations over the whole block instead of
        a pass per line. False when there is no such block (a command, one line, lines
        that need a closer look): then read line by line."""
        conn = self.conn
        if conn.kind is not PeerKind.PLAIN or not self.authenticated:
            return False
        pacer, shared = self._pacer, self.address.lines
        allowed = pacer.take(shared, defaults.BLOCK_LINES)
        texts = conn.next_chat_lines(allowed) if allowed > 1 else None
        pacer.refund(shared, allowed - len(texts or ()))
        if texts is None:
            return False
        self.relay.say_lines(self, texts)
        return True

    def _take_budget(self) -> bool:
        """A line takes a token of the peer's budget and of its address's, or none.

        Out of budget, a peer with something waiting (a line, or bytes it has not paid
        for yet: the tail of a long line) is paused until a token is due."""
        pacer, shared = self._pacer, self.address.lines
        if pacer.take(shared):
            return True
        if self.conn.line_waiting or pacer.in_debt(shared):
            self._throttle()
        return False

    def _next_event(self) -> object:
        """The next event, NEED_DATA or CLOSED; None to go on reading (the tokens taken
        for a line that was not there are given back)."""
        conn = self.conn
        was_unknown = conn.kind is PeerKind.UNKNOWN
        skipped_before = conn.lines_skipped
        event: object
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            event = exc
        if was_unknown and conn.kind is not PeerKind.UNKNOWN:
            self.reform()  # its first line said what it is: plain text, or JSON of a version
            self.said_what_it_is()
        # Blank lines are no events, but each costs a line: else a stream of them would
        # be read for free, and each newline's KiB of credit against long lines' bytes
        # (data_received) would be free too.
        blank = conn.lines_skipped - skipped_before
        own, shared = self._pacer.own, self.address.lines
        if blank:
            own.charge(blank)
            shared.charge(blank)
        if isinstance(event, RemoteProtocolError):
            if was_unknown and conn.kind is PeerKind.PLAIN:
                self._became_plain()
            self._on_remote_error(event)
            return None
        if not isinstance(event, Event):  # NEED_DATA, or CLOSED after end of stream
            self._pacer.refund(shared)
            if event is NEED_DATA and conn.line_waiting:
                return None  # blank lines stopped the read early: more wait, paced
            return event
        if was_unknown and conn.kind is PeerKind.PLAIN:
            self._became_plain()
        return event

    def _dispatch(self, event: Event) -> None:
        handle, before_password = COMMANDS[type(event)]  # (unpacked: once per line)
        if not self.authenticated and not before_password:
            self._on_remote_error(_NOT_YET)
            return
        handle(self.relay, self, event)

    def _on_remote_error(self, exc: RemoteProtocolError) -> None:
        self.errors += 1
        commands.bad_line(self.relay, self, exc)

    def _became_plain(self) -> None:
        self._replay = None
        if self.authenticated:
            self.announce()

    # --- flood control ---------------------------------------------------------------------

    def _throttle(self) -> None:
        """Out of budget: stop reading from this peer and carry on when a token is due.

        Its lines wait (in our buffer, then in TCP's) and none is dropped; everyone
        else is served as usual meanwhile (see flood.Pacer for when it is told or kicked).
        """
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        address = self.address
        verdict = self._pacer.throttled(loop.time(), address.lines, address.key, self.relay.config)
        if verdict.bye is not None:
            self.close(verdict.bye, log_reason="flooding", linger=True)
            return
        if verdict.notice is not None:
            self.send(Info(verdict.notice))
            self.relay.console.line("FLOOD", f"Peer {self.label} is being slowed down.")
        if not self.transport.is_closing():
            self.transport.pause_reading()
        self._resume_handle = loop.call_later(verdict.wait, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        try:
            self._process()
            if self._resume_handle is not None or self._closing:
                return  # throttled again, or gone
            if self._eof:
                self._finish_after_eof()
                self.close()
            elif self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        except Exception:
            self.fail()

    # --- what the commands ask of a peer (peer.ChatPeer) ---------------------------------

    def acknowledge(self, seq: int, message_id: int | None = None) -> None:
        self._ack_due = seq
        if message_id is not None:
            self._ack_id = message_id

    def authenticate(self) -> None:
        if self._announce_timer is not None:  # the authentication deadline
            self._announce_timer.cancel()
            self._announce_timer = None
        self.authenticated = True

    def _auth_timed_out(self) -> None:
        try:
            if not self.authenticated and not self._closing:
                admission.password_timed_out(self.relay, self)
        except Exception:
            self.fail()

    def announce(self) -> None:
        """Tell the room this peer is here (once): at its first line or after a short delay."""
        if self._announce_timer is not None:
            self._announce_timer.cancel()
            self._announce_timer = None
        if self.announced or self._closing:
            return
        self.announced = True
        if self.conn.kind is PeerKind.UNKNOWN:
            # Silent so far: most likely a listener (nc), not a client with a hello in
            # flight. Nothing more is kept for a replay.
            self.drop_replay()
        self.relay.announce_join(self)

    def _announce_later(self) -> None:
        try:
            self.announce()
        except Exception:
            self.fail()

    def leave(self, reason: str, bye: Bye) -> None:
        self._leave_reason = reason
        self.close(bye)  # an ordinary leave: no [CLOSING] line

    def check_liveness(self, now: float) -> None:
        """Called by the relay's sweep: ping, drop or reap this peer if it is due."""
        if self._closing:
            return
        cfg = self.relay.config
        quiet = now - self._last_heard
        if self.conn.kind is not PeerKind.RICH:
            if cfg.idle_timeout and quiet > cfg.idle_timeout:
                why = f"idle for {cfg.idle_timeout:g} s"
                bye = Bye(f"disconnected: {why}; reconnect to chat again", code=ErrorCode.IDLE)
                self.close(bye, log_reason=why)
        elif self._ping_sent is None:
            if cfg.ping_after and quiet > cfg.ping_after:
                self._ping_sent = now
                self.send(Ping(f"{now:.0f}"))
        elif cfg.ping_timeout and now - self._ping_sent > cfg.ping_timeout:
            why = f"no answer to a ping for {cfg.ping_timeout:g} s"
            self.close(Bye(f"disconnected: {why}", code=ErrorCode.PING_TIMEOUT), log_reason=why)

    # --- going ----------------------------------------------------------------------------

    def replaced(self) -> None:
        """A new connection resumed this peer's session: go at once, unannounced."""
        self.relay.console.line("REPLACED", f"Peer {self.label}: resumed from another connection.")
        self.announced = False  # so that leaving tells nobody: the peer is still here
        self.resumable = None
        self._leave_reason = "resumed elsewhere"
        self.relay.unregister(self, "")
        self.abort()
