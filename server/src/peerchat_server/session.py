"""One line-protocol peer's connection: the asyncio Protocol between a socket and the relay.

The session does the I/O and nothing else: callbacks and teardown, liveness, and the
hooks the commands call. Its bases hold the rest of the one object a peer is: the read
loop with its flood and room pauses (:class:`~.reading.Reading`), and what it is sent
and how it closes (:class:`~.output.Output`).
"""

from __future__ import annotations

import asyncio
from typing import cast

from peerchat_protocol import (
    Bye,
    Connection,
    ErrorCode,
    PeerKind,
    Ping,
    Role,
    encode_json,
    encode_plain,
)

from . import admission
from . import config as defaults
from .peer import Peer
from .reading import Reading
from .relay import Relay
from .resume import Resumable
from .sockets import enable_keepalive, format_addr


class Session(Reading, asyncio.Protocol):
    """Connects, reads bytes into the protocol, closes.

    Every callback is wrapped so that a bug while serving one peer closes that peer only.
    """

    # No per-instance __dict__: with 10,000 peers every byte of a session counts.
    __slots__ = (
        "_announce_timer", "_connection_key", "_last_heard", "_ping_sent", "addr", "announced",
        "history_sent", "name", "resumable",
    )  # fmt: skip

    def __init__(self, relay: Relay, conn: Connection | None = None) -> None:
        if conn is None:
            conn = Connection(Role.SERVER, max_line=relay.config.max_line_bytes)
        super().__init__(relay, conn)
        self.addr = "unknown"
        self.name = "unknown"
        self.announced = False
        self.history_sent = False
        self._announce_timer: asyncio.TimerHandle | None = None
        self._last_heard = 0.0  # loop time of the last bytes from the peer
        self._ping_sent: float | None = None  # loop time of an unanswered ping
        #: The v3 session this connection serves (None for plain and older peers).
        self.resumable: Resumable[Peer] | None = None
        self._connection_key = f"conn:{relay.registry.next_connection()}"

    @property
    def origin(self) -> str:
        """Who sent a line, for the room's log: the session (which outlives this
        connection, and whose secret the peer gives back) or else this connection."""
        record = self.resumable
        return record.digest if record is not None else self._connection_key

    @property
    def peer_kind(self) -> str:
        """What kind of peer it is, for /metrics: json, plain or unknown (yet)."""
        kind = self.conn.kind
        return "json" if kind is PeerKind.RICH else "plain" if kind is PeerKind.PLAIN else "unknown"

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
        relay.console.line("NEW CONNECTION", f"Peer {self.addr} connected.", who=self)
        count = len(relay.registry)
        relay.console.line("ACTIVE CONNECTIONS", str(count), connections=count)
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
        relay.stats.refused += 1
        if relay.registry.addresses.log_refusal(self.address):
            relay.console.line("REFUSED", f"Peer {self.addr}: {why}.", peer=self.addr)
        bye = Bye(f"Connection refused: {why}.", code=ErrorCode.TOO_MANY_CONNECTIONS)
        self.transport.write(encode_plain(bye) + encode_json(bye))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._last_heard = asyncio.get_running_loop().time()
        self._ping_sent = None
        try:
            self._received(data)
        except Exception:
            self.fail()

    def _received(self, data: bytes) -> None:
        """Lines (whole or not) from the peer: into the protocol, and handled."""
        # Bytes cost as they arrive, beyond the first KiB of each line (which its
        # token pays for): long lines are paced by size, and a debt pauses reading.
        per_token = defaults.FLOOD_BYTES_PER_TOKEN
        extra = len(data) - per_token * data.count(b"\n")
        if extra > 0:
            self._pacer.charge(self.address.lines, extra / per_token)
        self.conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        """The peer will send nothing more: it has left, once what it sent is handled."""
        try:
            self._eof = True
            self.conn.receive_data(b"")
            self._process()
            if self._resume_handle is not None or (self.room.held and self.conn.line_waiting):
                return True  # lines still wait (flood limit, busy room): close after them
            self._finish_after_eof()
        except Exception:
            self.fail()
        return False  # let the transport close once our output is written

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
                relay.console.line(
                    "DISCONNECTED", f"{self.label} removed from peers list.", who=self
                )
                count = len(relay.registry)
                relay.console.line("ACTIVE CONNECTIONS", str(count), connections=count)

    # --- what the commands ask of a peer (peer.ChatPeer) ---------------------------------

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

    #: Whether a peer of this kind that says nothing is a listener (``nc``), announced
    #: after a short delay. A kind whose peers must introduce themselves (a WebSocket's
    #: hello, IRC's registration) closes one that has not by --auth-timeout instead.
    SILENT_LISTENERS = True

    def _announce_later(self) -> None:
        try:
            if self.SILENT_LISTENERS or self.conn.kind is not PeerKind.UNKNOWN:
                self.announce()
            elif not self._closing:
                cfg = self.relay.config
                wait = max(0.0, cfg.auth_timeout - cfg.announce_delay)
                loop = asyncio.get_running_loop()
                self._announce_timer = loop.call_later(wait, self._never_introduced)
        except Exception:
            self.fail()

    def _never_introduced(self) -> None:
        """A peer of a kind that must introduce itself did not in time: close it (each
        such kind says how, and with which words)."""
        raise NotImplementedError

    def leave(self, reason: str, bye: Bye) -> None:
        self._leave_reason = reason
        self.close(bye)  # an ordinary leave: no [CLOSING] line

    def check_liveness(self, now: float) -> None:
        """Called by the relay's sweep: ping, drop or reap this peer if it is due."""
        if self._closing:
            return
        if self.room.held:  # it is not read meanwhile: its silence is the room's
            self._last_heard, self._ping_sent = now, None
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
        self.relay.console.line(
            "REPLACED", f"Peer {self.label}: resumed from another connection.", who=self
        )
        self.announced = False  # so that leaving tells nobody: the peer is still here
        self.resumable = None
        self._leave_reason = "resumed elsewhere"
        self.relay.unregister(self, "")
        self.abort()
