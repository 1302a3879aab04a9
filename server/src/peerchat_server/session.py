"""One peer's connection: the asyncio Protocol between a socket and the relay."""

from __future__ import annotations

import asyncio
import hmac
import socket
import traceback
from collections.abc import Callable
from typing import Any, cast

from peerchat_protocol import (
    NEED_DATA,
    Ack,
    Bye,
    ChangeNick,
    Connection,
    Error,
    ErrorCode,
    Event,
    Hello,
    Help,
    Info,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Message,
    Pass,
    PeerKind,
    Ping,
    Pong,
    Quit,
    RemoteProtocolError,
    Role,
    Say,
    Timestamps,
    Welcome,
    Who,
    encode_json,
    encode_plain,
    fold,
    plain_help,
)

from . import config as defaults
from .flood import TokenBucket
from .frames import Frames, form_of
from .peer import Peer
from .relay import Relay
from .resume import Resumable
from .rooms import Room
from .tokens import digest

#: What a peer may send before it has given the password.
_BEFORE_PASSWORD = (Hello, Pass, Quit, Ping, Pong, Help)

#: A peer throttled again within this many seconds of its last wait ending is still in
#: the same flood (it sent more at once when reading resumed).
FLOOD_EPISODE_GAP = 1.0
#: Seconds between two notices to a peer that its address's shared budget holds it back.
ADDRESS_NOTICE_EVERY = 30.0

#: How late past --flood-kick-after a flood is looked at again (so that it is past).
FLOOD_KICK_SLACK = 0.01

#: Seconds a closing connection waits for the peer's own close before it is cut.
CLOSE_LINGER = 2.0


def format_addr(peername: Any) -> str:
    """``host:port`` as the seed prints it; IPv6 hosts in brackets."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peername or "unknown")


def _enable_keepalive(sock: socket.socket | None) -> None:
    """Let the kernel find peers that vanished without a FIN or RST (half-open)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", defaults.KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", defaults.KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", defaults.KEEPALIVE_COUNT),
        ):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass  # not a TCP socket (tests may use others); keepalive is best effort


class Session(asyncio.Protocol):
    """Reads bytes into the protocol, dispatches its events, queues output.

    Output is queued and written by the relay's flush once per loop pass; the
    session never awaits a write. Every callback is wrapped so that a bug while
    serving one peer closes that peer only.
    """

    # No per-instance __dict__: with 10,000 peers every byte of a session counts.
    __slots__ = (
        "_ack_due", "_ack_id", "_address_noticed", "_announce_timer", "_bucket", "_closing",
        "_connection_key", "_dirty", "_eof", "_history_sent", "_last_heard", "_leave_reason",
        "_linger_handle", "_missed_before_hello", "_pending", "_ping_sent", "_replay",
        "_replay_overflow", "_resume_handle", "_throttled_since", "_throttled_until", "addr",
        "address", "announced", "authenticated", "conn", "errors", "host", "name", "relay",
        "resumable", "room", "transport",
    )  # fmt: skip

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        cfg = relay.config
        self.conn = Connection(Role.SERVER, max_line=cfg.max_line_bytes)
        self.transport: asyncio.Transport | None = None
        self.addr = "unknown"
        self.host = "unknown"
        self.name = "unknown"
        self.announced = False
        self.authenticated = not cfg.password  # with a password, only once it is given
        self.room: Room[Peer] = relay.lobby  # set again by Relay.register and Relay.move
        self.errors = 0
        self._pending: list[bytes] = []
        self._dirty = False
        self._closing = False
        self._leave_reason: str | None = None
        self._eof = False
        self._announce_timer: asyncio.TimerHandle | None = None
        self._bucket = TokenBucket(cfg.flood_burst, cfg.flood_rate)
        self._resume_handle: asyncio.TimerHandle | None = None
        # The flood episode under way: when it began, and when its latest wait ends.
        self._throttled_since: float | None = None
        self._throttled_until = 0.0
        self._address_noticed = 0.0  # loop time of the last notice about the address
        self._linger_handle: asyncio.TimerHandle | None = None
        self._last_heard = 0.0  # loop time of the last bytes from the peer
        self._ping_sent: float | None = None  # loop time of an unanswered ping
        # Until the first line tells the kind, remember what was sent as plain
        # text so a rich peer whose hello was in flight gets it again as JSON.
        self._replay: list[Frames] | None = []
        self._replay_overflow = 0
        self._missed_before_hello = False
        self._history_sent = False
        #: The v3 session this connection serves (None for plain and older peers),
        #: and the newest ``seq`` handled since the last acknowledgement was queued.
        self.resumable: Resumable[Peer] | None = None
        self._ack_due: int | None = None
        self._ack_id: int | None = None  # the id its last acknowledged line got, if any
        self._connection_key = f"conn:{relay.next_connection()}"

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
        self.host = str(peername[0]) if isinstance(peername, tuple) else self.addr
        relay = self.relay
        if relay.closing:
            self.transport.abort()
            return
        self.address = relay.addresses.get(self.host)
        refusal = relay.refusal(self)
        if refusal is not None:
            self._refuse(refusal)  # as cheaply as it can: a storm may be under way
            return
        _enable_keepalive(transport.get_extra_info("socket"))
        relay.register(self)
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        relay.console.line("NEW CONNECTION", f"Peer {self.addr} connected.")
        relay.console.line("ACTIVE CONNECTIONS", str(len(relay)))
        if not self.authenticated:
            self.send(
                Info(
                    f"Welcome to peerchat! You are {self.addr}.\n"
                    "This server needs a password: send /pass PASSWORD as your first line."
                )
            )
            timeout = relay.config.auth_timeout
            self._announce_timer = loop.call_later(timeout, self._auth_timed_out)
            return
        self.send(
            Info(
                f"Welcome to peerchat! You are {self.addr}; {len(relay)} online.\n"
                "Type a message and press Enter to send it to everyone; /help lists commands."
            )
        )
        self._send_history()
        self._announce_timer = loop.call_later(relay.config.announce_delay, self._announce_later)

    def _refuse(self, why: str) -> None:
        """Turn the connection away at once: one line for people, one for programs."""
        assert self.transport is not None
        self._closing = True
        relay = self.relay
        if relay.addresses.log_refusal(self.address):
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
                self._bucket.charge(extra / per_token)
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
                relay.book.lost(record, self.name, self.room.name, relay.loop_time())
            if self in relay:
                relay.unregister(self, reason[:200])
                relay.console.line("DISCONNECTED", f"{self.label} removed from peers list.")
                relay.console.line("ACTIVE CONNECTIONS", str(len(relay)))

    def _why_lost(self, exc: Exception | None) -> str:
        if self._leave_reason is not None:
            return self._leave_reason
        console = self.relay.console
        if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            console.line("CONNECTION RESET", f"Peer {self.label} forcibly closed the connection.")
            return "connection reset"
        if isinstance(exc, TimeoutError):
            console.line("CONNECTION RESET", f"Peer {self.label} stopped answering (timed out).")
            return "connection timed out"
        return "connection lost" if exc is not None else ""

    # --- reading --------------------------------------------------------------------------

    def _process(self) -> None:
        """Turn buffered bytes into events and handle each, while the flood limit allows.

        The lines handled in one go are acknowledged together, with one ``ack``.
        """
        try:
            self._handle_lines()
        finally:
            if self._ack_due is not None:
                self.send(Ack(self._ack_due, self._ack_id))
                self._ack_due = self._ack_id = None

    def _handle_lines(self) -> None:
        own, shared = self._bucket, self.address.lines
        while not self._closing:
            took_own = own.take()  # a line takes a token of each budget, or none
            if not (took_own and shared.take()):
                if took_own:
                    own.refund()  # the address's budget was short: the line waits whole
                # Out of budget. Slow down only a peer that has something waiting: a
                # line, or bytes it has not paid for yet (the tail of a long line).
                if self.conn.line_waiting or own.in_debt or shared.in_debt:
                    self._throttle()
                return
            was_unknown = self.conn.kind is PeerKind.UNKNOWN
            skipped_before = self.conn.lines_skipped
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                if was_unknown and self.conn.kind is PeerKind.PLAIN:
                    self._became_plain()
                self._on_remote_error(exc)
                continue
            finally:
                # Blank lines are no events, but each costs a line: else a stream of
                # them would be read for free, and each newline's KiB of credit against
                # long lines' bytes (data_received) would be free too.
                blank = self.conn.lines_skipped - skipped_before
                if blank:
                    own.charge(blank)
                    shared.charge(blank)
            if not isinstance(event, Event):  # NEED_DATA, or CLOSED after end of stream
                own.refund()
                shared.refund()
                if event is NEED_DATA and self.conn.line_waiting:
                    continue  # blank lines stopped the read early: more wait, paced
                return
            if was_unknown and self.conn.kind is PeerKind.PLAIN:
                self._became_plain()
            if not self.authenticated and not isinstance(event, _BEFORE_PASSWORD):
                self._on_remote_error(
                    RemoteProtocolError(
                        ErrorCode.AUTH_REQUIRED,
                        "give the password first: /pass PASSWORD (nothing was sent)",
                    )
                )
                continue
            _HANDLERS[type(event)](self, event)

    # --- flood control ---------------------------------------------------------------------

    def _throttle(self) -> None:
        """Out of budget: stop reading from this peer and carry on when a token is due.

        Its lines wait (in our buffer, then in TCP's) and none is dropped; everyone
        else is served as usual meanwhile. A flood is one episode as long as each wait
        is followed at once by another; a peer over its own rate for a whole episode of
        ``flood_kick_after`` seconds is disconnected, whether its lines are short or
        long. Held back only by its address's budget, a peer is paced, never kicked:
        an honest peer behind the same address as a flooder must not lose its connection.
        """
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        cfg = self.relay.config
        now = loop.time()
        own, shared = self._bucket, self.address.lines
        continuing = self._throttled_until > 0 and now <= self._throttled_until + FLOOD_EPISODE_GAP
        if not continuing:
            self._throttled_since = None
        if not own.ready():  # over its own rate
            if self._throttled_since is None:
                self._throttled_since = now
                self._flood_notice(f"more than {cfg.flood_rate:g} lines a second")
            elif now - self._throttled_since > cfg.flood_kick_after:
                self.close(
                    Bye(
                        f"disconnected for flooding: more than {cfg.flood_rate:g} lines a "
                        f"second (a long line counts one per KiB) for "
                        f"{cfg.flood_kick_after:g} seconds",
                        code=ErrorCode.FLOODING,
                    ),
                    log_reason="flooding",
                    linger=True,
                )
                return
        elif not self._address_noticed or now - self._address_noticed > ADDRESS_NOTICE_EVERY:
            # The budget its address's connections share ran out: said once in a while,
            # not at every line of a peer that is merely paced with the others.
            self._address_noticed = now
            self._flood_notice(
                f"more than {cfg.address_flood_rate:g} lines a second from your address "
                f"({self.address.key}, all its connections together)"
            )
        if not self.transport.is_closing():
            self.transport.pause_reading()
        wait = max(own.wait(), shared.wait())
        if cfg.flood_kick_after and self._throttled_since is not None:
            # A long line can put the peer so far in debt that its wait outlasts the
            # kick deadline: look again at the deadline, so it is kept whatever the size.
            deadline = self._throttled_since + cfg.flood_kick_after + FLOOD_KICK_SLACK
            wait = min(wait, max(0.0, deadline - now))
        self._throttled_until = now + wait
        self._resume_handle = loop.call_later(wait, self._resume)

    def _flood_notice(self, why: str) -> None:
        self.send(
            Info(
                f"You are sending {why} (a long line counts one per KiB): the rest will "
                "follow at that pace (nothing is lost)."
            )
        )
        self.relay.console.line("FLOOD", f"Peer {self.label} is being slowed down.")

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

    def _became_plain(self) -> None:
        self._replay = None
        if self.authenticated:
            self._announce()

    # --- the password ----------------------------------------------------------------------

    def _password_ok(self, given: str | None) -> bool:
        expected = self.relay.config.password.encode()
        # Constant time, so the comparison tells nothing about how much was right.
        return given is not None and hmac.compare_digest(given.encode(), expected)

    def _reject_password(self, given: str | None) -> None:
        why = "no password given" if given is None else "wrong password"
        relay = self.relay
        relay.console.line("AUTH FAILED", f"Peer {self.addr}: {why}.")  # never the secret
        # Guessing costs time: each wrong password makes the address wait longer
        # before its next connection, and too many lock it out for a while.
        wait, lockout = relay.addresses.password_failed(self.address)
        if lockout:
            relay.console.line(
                "AUTH FAILED", f"{self.address.failures} wrong passwords from "
                f"{self.address.key}: its new connections are refused for {wait:g} s."
            )  # fmt: skip
        if wait >= relay.config.auth_lockout:
            why += f"; too many from your address: try again in {wait:g} s"
        elif wait:
            why += f"; your address must wait {wait:g} s before it connects again"
        self.close(
            Bye(
                f"disconnected: {why}; this server needs its password "
                "(/pass PASSWORD, or the client's --password)",
                code=ErrorCode.BAD_PASSWORD,
            ),
            log_reason=why,
            linger=True,
        )

    def _admit(self) -> None:
        if self._announce_timer is not None:  # the authentication deadline
            self._announce_timer.cancel()
            self._announce_timer = None
        self.authenticated = True
        self.relay.admit(self)
        self.relay.console.line("AUTH", f"Peer {self.addr} gave the password.")

    def _on_pass(self, given: Pass) -> None:
        if self.authenticated:
            self.send(Info("You are already in."))
            return
        if not self._password_ok(given.password):
            self._reject_password(given.password)
            return
        self._admit()
        self.send(Info(f"Password accepted. {self.room.count()} online; /help lists commands."))
        self._send_history()
        self._announce()

    def _auth_timed_out(self) -> None:
        try:
            if self.authenticated or self._closing:
                return
            timeout = self.relay.config.auth_timeout
            self.relay.console.line(
                "AUTH FAILED", f"Peer {self.addr}: no password in {timeout:g} s."
            )
            self.close(
                Bye(
                    f"disconnected: no password within {timeout:g} s "
                    "(send /pass PASSWORD as your first line)",
                    code=ErrorCode.AUTH_TIMEOUT,
                ),
                log_reason="no password in time",
                linger=True,
            )
        except Exception:
            self.fail()

    def _on_remote_error(self, exc: RemoteProtocolError) -> None:
        self.errors += 1
        console = self.relay.console
        console.line("PROTOCOL ERROR", f"Peer {self.label}: {exc.message} ({exc.code}).")
        if exc.fatal:
            self.send(Error(exc.code, exc.message))
            self.close(
                Bye(f"disconnected: {exc.message}", code=exc.code), log_reason=exc.code, linger=True
            )
        elif self.errors > self.relay.config.max_errors:
            self.send(Error(exc.code, exc.message))
            why = (
                f"disconnected after {self.errors} bad lines: send UTF-8 text lines of at most "
                f"{self.conn.max_line} bytes"
            )
            self.close(
                Bye(why, code=ErrorCode.TOO_MANY_ERRORS),
                log_reason="too many bad lines",
                linger=True,
            )
        else:
            self.send(Error(exc.code, exc.message))

    # --- event handlers ------------------------------------------------------------------

    def _on_hello(self, hello: Hello) -> None:
        relay = self.relay
        if not self.authenticated:
            if not self._password_ok(hello.password):
                self._reject_password(hello.password)
                return
            self._admit()
        assert self.conn.version is not None
        v3 = self.conn.version >= 3
        start_room = self.room
        record = relay.book.find(hello.resume, relay.loop_time()) if v3 and hello.resume else None
        took_over = record is not None
        moved_here = False
        wanted: str | None
        room_name: str | None
        if record is not None:
            self._take_over(record)
            wanted, room_name = record.nick, record.room
        else:
            wanted, room_name = hello.nick, hello.room if v3 else None
            if v3 and wanted is not None and relay.bus is not None:
                moved_here = relay.claim_from_elsewhere(wanted, hello.resume)
        if wanted is not None and wanted != self.name:
            nick = relay.free_variant(wanted)
            was = self.label
            old = relay.rename(self, nick)
            relay.console.line("NICK", f"Peer {was} is now {nick}.")
            if self.announced:  # the others knew it by its address; the welcome tells it
                relay.announce_rename(self, old, exclude=self)
        if room_name is not None and fold(room_name) != fold(self.room.name):
            relay.move(self, room_name)
        moved = self.room is not start_room
        if v3 and record is None:
            # A session that moved here from another replica keeps its secret: it is
            # how that replica recognises the person and lets its old connection go.
            token = hello.resume if moved_here else None
            record = relay.book.open(self, self.name, self.room.name, token, self.address.key)
            relay.came_in(record)
        self.resumable = record
        # Its own lines are left out of the catch-up, even from a session the server no
        # longer keeps: the secret it gives back says which were its own.
        mine = digest(hello.resume) if hello.resume else self.origin
        # The catch-up is for a session that proves it was in this room (its secret
        # names a session of ours, or one another replica vouches for), from when it
        # came in; anyone else gets no more than a newcomer's history.
        floor: int | None = None
        if took_over and record is not None:
            floor = record.entered_id
        elif v3 and (vouch := relay.vouched(hello.resume)) is not None:
            room_there, since = vouch
            if fold(room_there) == fold(self.room.name):
                floor = since
        catch_up = (
            relay.missed(self.room, hello.epoch, hello.last_id, hello.last_ts, mine, floor=floor)
            if v3
            else None
        )
        self.send(
            Welcome(
                version=self.conn.version,
                nick=self.name,
                addr=self.addr,
                online=self.room.count(),
                peers=self.room.peers(),
                server=relay.config.name,
                max_line=self.conn.max_line,
                room=self.room.name,
                session=record.token if record is not None else None,
                epoch=relay.epoch if v3 else None,
                resumed=took_over,
                acked=record.last_seq if took_over and record is not None else None,
                missed=len(catch_up[0]) if catch_up is not None else None,
                gap=catch_up[1] if catch_up is not None else False,
            )
        )
        if wanted is not None and wanted != self.name:
            self.send(
                Error(
                    ErrorCode.NICK_TAKEN,
                    f"the nickname {wanted!r} {relay.why_taken(wanted)}, so you are "
                    f"{self.name!r}; pick another with /nick NAME",
                )
            )
        if catch_up is not None or moved:
            # What was sent as text before this hello was said in the lobby: either a
            # part of the catch-up below, or about a room the peer is no longer in.
            self._replay = None
        if catch_up is not None:
            for message in catch_up[0]:  # everything said since the peer's last message
                self.deliver(Frames(message))
        else:
            if not self._history_sent or moved:
                self._send_history()
            self._flush_replay()
        if took_over and record is not None and record.announced:
            self.announced = True  # the room never saw it leave: no join notice
        self._announce()

    def _take_over(self, record: Resumable[Peer]) -> None:
        """Become the connection of ``record``'s session."""
        relay = self.relay
        old = record.session
        record.announced = False
        if old is not None and old is not self:
            # Its earlier connection is still open here (half-open: the client saw it
            # die first). It goes without a leave notice: the peer is back already.
            record.announced = old.announced
            record.nick, record.room = old.name, old.room.name
            if old.room is not self.room:
                relay.move(self, old.room.name)  # first, so the room and its log stay
            old.replaced()
        relay.book.take_over(record, self)
        relay.console.line("RESUMED", f"Peer {self.addr} resumed the session of {record.nick}.")

    def _flush_replay(self) -> None:
        replay, self._replay = self._replay, None
        for frames in replay or ():
            event = frames.event
            if self.conn.version == 1 and isinstance(event, Message) and event.history:
                continue  # version 1 has no history mark: it would pass for new messages
            self._queue(frames.for_form(form_of(self.conn)))
        if self._replay_overflow > 0:
            self.send(
                Info(
                    f"{self._replay_overflow} messages sent before your hello "
                    "could not be repeated."
                )
            )
        elif self._missed_before_hello:
            self.send(
                Info(
                    "Your hello came late: what was said before it was sent as text "
                    "and is not repeated."
                )
            )

    def _on_say(self, say: Say) -> None:
        record = self.resumable
        if say.seq is not None and record is not None:
            self._ack_due = say.seq
            if say.seq <= record.last_seq:
                return  # sent again after a reconnect, but handled already: not twice
            record.last_seq = say.seq
        if say.to is None:
            message_id = self.relay.say(self, say)
            if say.seq is not None:
                self._ack_id = message_id
            return
        target = self.relay.find(say.to)
        elsewhere = self.relay.replicas.find(say.to) if target is None else None
        if elsewhere is not None:
            self.relay.whisper_remote(self, elsewhere, say)
        elif target is None and (away := self.relay.waiting_as(say.to)) is not None:
            self.send(
                Error(
                    ErrorCode.NO_SUCH_NICK,
                    f"{away.nick} lost their connection and may be back soon, so the message "
                    "was not sent; try again when they are back (/who lists who is here)",
                )
            )
        elif target is None:
            self.send(
                Error(
                    ErrorCode.NO_SUCH_NICK,
                    f"nobody called {say.to!r} is online, so the message was not sent; "
                    "/who lists who is in your room",
                )
            )
        elif target is self:
            self.send(Error(ErrorCode.BAD_COMMAND, "that is you: /msg is for someone else"))
        else:
            self.relay.whisper(self, target, say)

    def _on_join_room(self, join: JoinRoom) -> None:
        if fold(join.room) == fold(self.room.name):
            self.send(Info(f"You are already in #{self.room.name}."))
            return
        self._enter(join.room)

    def _on_leave_room(self, _: LeaveRoom) -> None:
        lobby = self.relay.lobby
        if self.room is lobby:
            self.send(
                Info(
                    f"You are in #{lobby.name}, the room everyone starts in; "
                    "/join ROOM goes elsewhere."
                )
            )
            return
        self._enter(lobby.name)

    def _enter(self, name: str) -> None:
        room = self.relay.move(self, name)
        self.send(self.relay.entered(room))
        self._send_history()

    def _send_history(self) -> None:
        """The room's recent messages, marked as history; framed in notices for plain peers."""
        self._history_sent = True
        history = self.relay.history(self.room)
        if not history or (self.conn.kind is PeerKind.RICH and self.conn.version == 1):
            return
        plain = self.conn.kind is not PeerKind.RICH
        if plain:
            self.send(Info(f"Last {len(history)} messages in #{self.room.name}:"))
        for message in history:
            self.deliver(Frames(message))
        if plain:
            self.send(Info("End of history."))

    def _on_list_rooms(self, _: ListRooms) -> None:
        self.send(self.relay.rooms())

    def _on_timestamps(self, choice: Timestamps) -> None:
        self.conn.timestamps = choice.on
        self.send(Info("Timestamps (UTC) are on." if choice.on else "Timestamps are off."))

    def _on_nick(self, change: ChangeNick) -> None:
        relay = self.relay
        if change.nick == self.name:
            self.send(Info(f"You are already {self.name}."))
            return
        if relay.name_taken(change.nick, by=self):
            self.send(
                Error(
                    ErrorCode.NICK_TAKEN,
                    f"the nickname {change.nick!r} {relay.why_taken(change.nick)}: choose "
                    "another with /nick NAME",
                )
            )
            return
        renames = self.address.renames
        if not renames.take():
            cfg = relay.config
            self.send(
                Error(
                    ErrorCode.FLOODING,
                    f"too many renames from your address (more than {cfg.rename_burst} at "
                    f"once, then one every {1 / cfg.rename_rate:g} s): you are still "
                    f"{self.name}; try again in {renames.wait():.0f} s",
                )
            )
            return
        was = self.label
        old = relay.rename(self, change.nick)
        relay.console.line("NICK", f"Peer {was} is now {self.name}.")
        if self.announced:
            relay.announce_rename(self, old)
        else:
            self.send(Info(f"You are now known as {self.name}."))

    def _on_who(self, _: Who) -> None:
        self.send(self.relay.roster(self.room))

    def _on_help(self, _: Help) -> None:
        self.send(Info(plain_help()))

    def _on_quit(self, quit_: Quit) -> None:
        if self.resumable is not None:
            self.relay.book.forget(self.resumable)  # a deliberate leave: nothing to resume
            self.resumable = None
        self._leave_reason = (f"quit: {quit_.reason}" if quit_.reason else "quit")[:200]
        self.close(Bye("You left the chat. Goodbye!"))  # an ordinary leave: no [CLOSING] line

    def _on_ping(self, ping: Ping) -> None:
        self.send(Pong(ping.token))

    def _on_pong(self, _: Pong) -> None:
        pass  # liveness is all a pong tells; the read itself proved it

    def check_liveness(self, now: float) -> None:
        """Called by the relay's sweep: ping, drop or reap this peer if it is due."""
        if self._closing:
            return
        cfg = self.relay.config
        quiet = now - self._last_heard
        if self.conn.kind is PeerKind.RICH:
            if self._ping_sent is not None:
                if cfg.ping_timeout and now - self._ping_sent > cfg.ping_timeout:
                    why = f"no answer to a ping for {cfg.ping_timeout:g} s"
                    self.close(Bye(f"disconnected: {why}", code=ErrorCode.PING_TIMEOUT),
                               log_reason=why)  # fmt: skip
            elif cfg.ping_after and quiet > cfg.ping_after:
                self._ping_sent = now
                self.send(Ping(f"{now:.0f}"))
        elif cfg.idle_timeout and quiet > cfg.idle_timeout:
            why = f"idle for {cfg.idle_timeout:g} s"
            self.close(Bye(f"disconnected: {why}; reconnect to chat again", code=ErrorCode.IDLE),
                       log_reason=why)  # fmt: skip

    # --- membership -------------------------------------------------------------------------

    def _announce(self) -> None:
        """Tell the room this peer is here (once): at its first line or after a short delay."""
        if self._announce_timer is not None:
            self._announce_timer.cancel()
            self._announce_timer = None
        if self.announced or self._closing:
            return
        self.announced = True
        if self.conn.kind is PeerKind.UNKNOWN and self._replay is not None:
            # Silent so far: most likely a listener (nc), not a client with a hello in
            # flight. Stop keeping copies for a replay, so it costs no more than any peer.
            self._replay = None
        self.relay.announce_join(self)

    def _announce_later(self) -> None:
        try:
            self._announce()
        except Exception:
            self.fail()

    # --- writing --------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Queue one event for this peer alone (after any broadcast it must follow)."""
        if not self._closing:
            self.relay.drain()
            self._queue(self.conn.send(event))

    def deliver(self, frames: Frames) -> None:
        """Queue an event already encoded for others (after any broadcast it must follow)."""
        self.relay.drain()
        self.deliver_now(frames)

    @property
    def wants_each_event(self) -> bool:
        """Whether fan-out must hand this peer events one by one instead of bytes."""
        return self._replay is not None and self.conn.kind is PeerKind.UNKNOWN

    def deliver_now(self, frames: Frames) -> None:
        """Queue ``frames`` in this peer's form; remember it if a hello may still come."""
        if self._closing:
            return
        self._queue(frames.for_form(form_of(self.conn)))
        if self.conn.kind is PeerKind.UNKNOWN:
            if self._replay is None:
                self._missed_before_hello = True
            elif len(self._replay) < self.relay.config.replay_limit:
                self._replay.append(frames)
            else:
                self._replay_overflow += 1

    def queue_bytes(self, data: bytes) -> None:
        """Queue bytes the fan-out prepared for this peer's form."""
        if data and not self._closing:
            self._queue(data)
            if self.conn.kind is PeerKind.UNKNOWN:
                self._missed_before_hello = True  # sent as text, not kept for a replay

    def _queue(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._dirty:
            self._dirty = True
            self.relay.mark_dirty(self)

    def flush(self) -> None:
        """Hand queued bytes to the transport; drop the peer if its backlog is over the limit."""
        self._dirty = False
        transport = self.transport
        if not self._pending or transport is None or transport.is_closing():
            self._pending.clear()
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        transport.write(data)
        backlog = transport.get_write_buffer_size()
        limit = self.relay.config.max_send_buffer
        if backlog > limit:
            self._leave_reason = "dropped: not reading its messages"
            self.relay.console.line(
                "DROPPED",
                f"Peer {self.label} stopped reading: {backlog} bytes waiting "
                f"(limit {limit}); disconnected.",
            )
            self.abort()

    # --- closing ---------------------------------------------------------------------------

    def close(self, bye: Bye | None = None, *, log_reason: str = "", linger: bool = False) -> None:
        """Send ``bye`` (if any) and everything queued before it, then close.

        ``linger``: the peer may still be sending (a flood, junk); see below.
        """
        if self._closing or self.transport is None:
            return
        if bye is not None:
            self.send(bye)
        if self._leave_reason is None:
            self._leave_reason = log_reason or "closed by the server"
        if log_reason and not self.relay.closing:
            self.relay.console.line("CLOSING", f"Peer {self.label}: {log_reason}.")
        self._closing = True
        self.flush()
        transport = self.transport
        if not linger or self._eof or not transport.can_write_eof():
            transport.close()
            return
        # A lingering close: send our FIN after what is queued, then keep reading (and
        # discarding) until the peer closes too. Closing outright while its input is
        # unread would make the kernel send a RST, which can destroy the goodbye in flight.
        transport.write_eof()
        transport.resume_reading()
        loop = asyncio.get_running_loop()
        self._linger_handle = loop.call_later(CLOSE_LINGER, transport.abort)

    def pause_reading(self) -> None:
        """Stop reading from this peer (the server is stopping)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def replaced(self) -> None:
        """A new connection resumed this peer's session: go at once, unannounced."""
        self.relay.console.line("REPLACED", f"Peer {self.label}: resumed from another connection.")
        self.announced = False  # so that leaving tells nobody: the peer is still here
        self.resumable = None
        self._leave_reason = "resumed elsewhere"
        self.relay.unregister(self, "")
        self.abort()

    def abort(self) -> None:
        """Close at once, discarding unsent output."""
        self._closing = True
        self._pending.clear()
        if self.transport is not None:
            self.transport.abort()

    def fail(self) -> None:
        """An unexpected error while serving this peer: log it, close this peer only.

        Our bug, not the peer's: logged in full here; the peer is told nothing specific.
        """
        self.relay.console.line(
            "ERROR",
            f"Internal error serving {self.label}; closing it:\n{traceback.format_exc().rstrip()}",
        )
        self._leave_reason = "server error"
        try:
            self.close(
                Bye("disconnected by a server error; please reconnect", code=ErrorCode.INTERNAL)
            )
        except Exception:
            self.abort()


#: What handles each kind of event from a peer. One table for all sessions: a dict of
#: bound methods in every session would cost each of 10,000 peers over a kilobyte.
_HANDLERS: dict[type[Event], Callable[[Session, Any], None]] = {
    Hello: Session._on_hello,
    Say: Session._on_say,
    ChangeNick: Session._on_nick,
    Who: Session._on_who,
    Help: Session._on_help,
    Quit: Session._on_quit,
    Ping: Session._on_ping,
    Pong: Session._on_pong,
    JoinRoom: Session._on_join_room,
    LeaveRoom: Session._on_leave_room,
    ListRooms: Session._on_list_rooms,
    Timestamps: Session._on_timestamps,
    Pass: Session._on_pass,
}
