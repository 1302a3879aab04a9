"""What a line-protocol peer is sent, and how its connection ends.

Output is queued and written by the outbox's flush once per loop pass; nothing here
awaits a write. A peer whose unsent backlog passes ``--max-send-buffer`` is dropped.
Closing says goodbye after what is queued, lingering if the peer may still be sending.

A peer that has not sent its first line yet could be a plain peer (a listening
``nc``) or a client whose JSON hello is in flight: until its first line tells which,
what it is sent goes out as text and a copy is kept, so that a client whose hello then
arrives gets it again as JSON (:meth:`Output.flush_replay`).

:class:`Output` is the base of :class:`~.session.Session`, not a separate object: with
10,000 peers an object more per peer would cost memory for nothing.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import cast

from peerchat_protocol import Bye, Connection, ErrorCode, Event, Info, Message, PeerKind

from .frames import Form, Frames, form_of
from .peer import Peer
from .relay import Relay
from .room import Room
from .sockets import unsent

#: Seconds a closing connection waits for the peer's own close before it is cut.
CLOSE_LINGER = 2.0
#: A peer whose output backs up holds its room (Relay.pace) while it reads: for
#: FIRST_LOOK seconds to see whether it does (its backlog shrinks), then as long as
#: its backlog has shrunk within STALLED_AFTER seconds, and HOLD_AT_MOST seconds in
#: all (then the room goes on without it, or it could hold its room for ever). One
#: that does not read is a reader that stopped: it holds nobody. Either is dropped
#: once its backlog passes --max-send-buffer while its room does not wait for it.
FIRST_LOOK = 0.25
STALLED_AFTER = 1.0
HOLD_AT_MOST = 3.0


class Output:
    """The sending half of a peer: queue, replay, write, close."""

    __slots__ = (
        "_backlog", "_behind_since", "_closing", "_dirty", "_eof", "_leave_reason",
        "_linger_handle", "_missed_before_hello", "_pending", "_progress_at", "_replay",
        "_replay_overflow", "conn", "form", "relay", "room", "transport",
    )  # fmt: skip

    def __init__(self, relay: Relay, conn: Connection) -> None:
        self.relay = relay
        self.conn = conn
        self.room: Room[Peer] = relay.rooms.lobby  # set again by Relay.register and move
        #: How this peer gets events (frames.py): kept, not worked out per delivery,
        #: and set again whenever it may change (the first line, /timestamps).
        self.form: Form = form_of(conn)
        self.transport: asyncio.Transport | None = None
        self._closing = False
        self._eof = False  # the peer sent all it will send
        #: Why it left, for its room (None: not known yet; "": a clean leave).
        self._leave_reason: str | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._pending: list[bytes] = []
        self._dirty = False
        # Until the first line tells the kind, what was sent as plain text is kept so
        # that a rich peer whose hello was in flight gets it again as JSON: the room
        # keeps its broadcasts (Room.wait); this keeps what was for this peer alone
        # (history, private messages), each with its place among the broadcasts.
        self._replay: list[tuple[int, Frames]] | None = []
        self._replay_overflow = 0
        self._missed_before_hello = False
        self._behind_since: float | None = None  # when its own output last backed up
        self._backlog = 0  # bytes not yet sent after the last write, while behind
        self._progress_at = 0.0  # when its backlog last shrank (while behind)

    def reform(self) -> None:
        """The peer's kind, version or timestamps may have changed: so may its form."""
        self.form = form_of(self.conn)

    @property
    def version(self) -> int | None:
        """The JSON protocol version the peer speaks (None: plain text, or not known yet)."""
        conn = self.conn
        return conn.version if conn.kind is PeerKind.RICH else None

    @property
    def max_line(self) -> int:
        """The longest line the peer may send, in bytes."""
        return self.conn.max_line

    def set_timestamps(self, on: bool) -> None:
        """Put a timestamp on every line the peer is sent as plain text, or stop."""
        self.conn.timestamps = on
        self.reform()

    def send(self, event: Event) -> None:
        """Queue one event for this peer alone (after any broadcast it must follow)."""
        if not self._closing:
            self.relay.outbox.drain()
            self._queue(self.conn.send(event))

    def deliver(self, frames: Frames) -> None:
        """Queue an event already encoded for others (after any broadcast it must follow);
        remember it if a hello may still come."""
        self.relay.outbox.drain()
        if self._closing:
            return
        self._queue(frames.for_form(self.form))
        if self.conn.kind is PeerKind.UNKNOWN:
            if self._replay is None:
                self._missed_before_hello = True
            elif len(self._replay) < self.relay.config.replay_limit:
                self._replay.append((self.room.journaled, frames))
            else:
                self._replay_overflow += 1

    def queue_bytes(self, data: bytes) -> None:
        """Queue bytes the fan-out prepared for this peer's form."""
        if data and not self._closing:
            self._queue(data)
            if self.conn.kind is PeerKind.UNKNOWN and self._replay is None:
                self._missed_before_hello = True  # sent as text, kept by nobody

    def _queue(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._dirty:
            self._dirty = True
            self.relay.outbox.mark_dirty(self)

    def flush(self) -> None:
        """Hand queued bytes to the transport; drop the peer if its backlog is over the limit."""
        self._dirty = False
        transport = self.transport
        if not self._pending or transport is None or transport.is_closing():
            self._pending.clear()
            return
        if self._behind_since is not None and self._shrank(asyncio.get_running_loop().time()):
            self.relay.wait_for(cast("Peer", self))  # behind, yet it reads
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        transport.write(data)
        self.relay.stats.bytes_out += len(data)
        backlog = transport.get_write_buffer_size()
        if self._behind_since is not None:
            self._backlog = unsent(transport)  # what its progress is measured from
        if backlog > self.relay.config.max_send_buffer and not self._waited_for():
            self._drop_stopped(backlog)

    def _waited_for(self) -> bool:
        """Whether its room waits for it, and it reads: then over the limit it is kept
        (nothing more is said in its room meanwhile); else it is dropped, as ever."""
        me = cast("Peer", self)
        return me in self.room.slow and self._reading(asyncio.get_running_loop().time())

    def _reading(self, now: float) -> bool:
        """Whether it reads, as far as can be told (see FIRST_LOOK): over the limit, such
        a reader is waited for, not dropped (its room is held, so its backlog grows no
        more); one that stopped is dropped."""
        since = self._behind_since
        if since is None:
            return False
        patience = STALLED_AFTER if self._progress_at > since else FIRST_LOOK
        return now - self._progress_at <= patience

    def _shrank(self, now: float) -> bool:
        """Whether its unsent bytes are fewer than after the last write or look (it
        read): if so, that is its progress, and its new backlog."""
        assert self.transport is not None
        waiting = unsent(self.transport)
        if waiting >= self._backlog:
            return False
        self._backlog, self._progress_at = waiting, now
        return True

    def _drop_stopped(self, backlog: int) -> None:
        limit = self.relay.config.max_send_buffer
        self.relay.stats.slow_consumers += 1
        self._leave_reason = "dropped: not reading its messages"
        self.relay.console.line(
            "DROPPED",
            f"Peer {self.label} stopped reading: {backlog} bytes waiting "
            f"(limit {limit}); disconnected.",
            who=cast("Peer", self),
            backlog=backlog,
        )
        self.abort()

    # --- its room's pace (asyncio calls these two as its buffer fills and drains) --------

    def pause_writing(self) -> None:
        self._behind_since = self._progress_at = asyncio.get_running_loop().time()
        if self._closing or self.transport is None:
            return  # (its goodbye is on the way: nobody waits for it)
        self._backlog = unsent(self.transport)
        self.relay.wait_for(cast("Peer", self))  # for FIRST_LOOK s at least

    def resume_writing(self) -> None:
        self._behind_since = None
        self.relay.caught_up(cast("Peer", self))

    def keeps_up(self, now: float) -> bool:
        """Whether its room should still wait for it: behind, reading, and for less than
        HOLD_AT_MOST seconds. Once not, the room goes on without it, and a backlog over
        the limit drops it (as for any peer that is not waited for)."""
        since, transport = self._behind_since, self.transport
        if since is None or transport is None or self._closing:
            return False
        self._shrank(now)
        if now - since <= HOLD_AT_MOST and self._reading(now):
            return True
        backlog = transport.get_write_buffer_size()
        if backlog > self.relay.config.max_send_buffer:
            self._drop_stopped(backlog)  # it was waited for over the limit: no more
        return False

    def read_on(self) -> None:
        """Its room takes chat again: go on reading (what waits first; the session says)."""
        raise NotImplementedError

    # --- closing --------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How the console names this peer (the session says)."""
        raise NotImplementedError

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
            self.relay.console.line(
                "CLOSING", f"Peer {self.label}: {log_reason}.", who=cast("Peer", self)
            )
        self._closing = True
        self.flush()
        transport = self.transport
        if not linger or self._eof or not transport.can_write_eof():
            transport.close()
            return
        # A lingering close: send our FIN after what is queued, then keep reading (and
        # discarding) until the peer closes too. Closing outright while its input is
        # unread would make the kernel send a RST, which can destroy the goodbye in flight.
        try:
            transport.write_eof()
        except OSError:  # the peer is gone already (a reset): nothing to linger for
            transport.abort()
            return
        transport.resume_reading()
        loop = asyncio.get_running_loop()
        self._linger_handle = loop.call_later(CLOSE_LINGER, transport.abort)

    def _why_lost(self, exc: Exception | None) -> str:
        """Why the connection ended, for its room (and the console, for a reset)."""
        if self._leave_reason is not None:
            return self._leave_reason
        console, who = self.relay.console, cast("Peer", self)
        if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            console.line(
                "CONNECTION RESET", f"Peer {self.label} forcibly closed the connection.", who=who
            )
            return "connection reset"
        if isinstance(exc, TimeoutError):
            console.line(
                "CONNECTION RESET", f"Peer {self.label} stopped answering (timed out).", who=who
            )
            return "connection timed out"
        return "connection lost" if exc is not None else ""

    def pause_reading(self) -> None:
        """Stop reading from this peer (the server is stopping)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

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
            who=cast("Peer", self),
        )
        self._leave_reason = "server error"
        try:
            self.close(
                Bye("disconnected by a server error; please reconnect", code=ErrorCode.INTERNAL)
            )
        except Exception:
            self.abort()

    # --- the replay for a late hello ----------------------------------------------------

    def drop_replay(self) -> None:
        """No hello will need what was kept for it (the peer is plain, or silent)."""
        if self._replay is not None:
            self.room.stop_waiting(cast("Peer", self), 0)  # (a no-op once it said its kind)
        self._replay = None

    def said_what_it_is(self) -> None:
        """Its first line came: gather what it was sent before, in the order it was
        sent (the room's broadcasts and what was for it alone), should a hello want it
        again; past ``--replay-limit``, the rest is only counted."""
        if self._replay is None:
            return
        limit = self.relay.config.replay_limit
        broadcasts, sent = self.room.stop_waiting(cast("Peer", self), limit)  # a Session
        alone = self._replay
        # What was for it alone at place p came after broadcast p - 1 and before broadcast
        # p: a stable sort by place, with it first, keeps the order it was sent in.
        merged = sorted(alone + broadcasts, key=lambda item: item[0])
        self._replay = merged[:limit]
        self._replay_overflow += sent + len(alone) - len(self._replay)

    def flush_replay(self) -> None:
        """The hello came: what was sent as text before it, again in this peer's form."""
        replay, self._replay = self._replay, None
        for _, frames in replay or ():
            event = frames.event
            if self.conn.version == 1 and isinstance(event, Message) and event.history:
                continue  # version 1 has no history mark: it would pass for new messages
            self._queue(frames.for_form(self.form))
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
