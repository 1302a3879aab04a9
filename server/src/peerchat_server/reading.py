"""The read loop of a line-protocol peer: bytes to events, flood budgets, its room's pace.

:class:`Reading` is the base of :class:`~.session.Session` (as :class:`~.output.Output`
is Reading's: one object per peer, split by concern, not by object). It turns buffered
bytes into events (peerchat_protocol.Connection) and hands each to its command
(commands.py); a plain-text peer's ordinary chat lines go as one block
(:meth:`Reading._say_together`). It reads only while the peer's budget and its
address's allow (flood.Pacer decides the pauses) and while its room takes chat
(Room.busy: Relay.pace holds a room for its slow readers, and a pass takes so much).
"""

from __future__ import annotations

import asyncio
from typing import cast

from peerchat_protocol import (
    NEED_DATA,
    Connection,
    ErrorCode,
    Event,
    Info,
    PeerKind,
    RemoteProtocolError,
)

from . import commands
from . import config as defaults
from .acks import Acks
from .addresses import Address
from .commands import COMMANDS
from .flood import Pacer, TokenBucket
from .output import Output
from .peer import ChatPeer, Peer
from .relay import Relay

#: What a peer may not do before it gives the password.
_NOT_YET = RemoteProtocolError(
    ErrorCode.AUTH_REQUIRED, "give the password first: /pass PASSWORD (nothing was sent)"
)


class Reading(Output):
    """Reads what the peer sent, as fast as its budgets and its room allow."""

    __slots__ = (
        "_acks", "_pacer", "_resume_handle", "address", "authenticated", "errors",
    )  # fmt: skip

    def __init__(self, relay: Relay, conn: Connection) -> None:
        super().__init__(relay, conn)
        cfg = relay.config
        self.address: Address  # set once connected (Session.connection_made)
        self.authenticated = not cfg.password  # with a password, only once it is given
        self.errors = 0
        self._pacer = Pacer(TokenBucket(cfg.flood_burst, cfg.flood_rate))
        self._resume_handle: asyncio.Handle | None = None  # reading goes on then
        self._acks = Acks()  # what its acknowledgements say, and when (acks.py)

    def announce(self) -> None:
        """Tell the room this peer is here (the session says how)."""
        raise NotImplementedError

    # --- reading --------------------------------------------------------------------------

    def _process(self) -> None:
        """Turn buffered bytes into events and handle each, while the flood limit allows.

        The lines handled in one go are acknowledged together, with one ``ack``.
        """
        self._acks.reading = True
        try:
            while not self._closing:
                if self.room.busy:
                    self._wait_for_room()
                    break
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
            self._acks.reading = False
            if (ack := self._acks.due()) is not None:
                self.send(ack)

    def _say_together(self) -> bool:
        """A plain-text peer's waiting chat lines, all at once (as far as its budget and
        its address's allow): one broadcast, operations over the whole block instead of
        a pass per line. False when there is no such block (a command, one line, lines
        that need a closer look): then read line by line."""
        conn = self.conn
        if not self.authenticated or not conn.chat_block_waiting():
            return False
        pacer, shared = self._pacer, self.address.lines
        allowed = pacer.take(shared, defaults.BLOCK_LINES)
        texts = conn.next_chat_lines(allowed) if allowed > 1 else None
        pacer.refund(shared, allowed - len(texts or ()))
        if texts is None:
            return False
        self.relay.say_lines(cast("Peer", self), texts)
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
        shared = self.address.lines
        if blank:
            self._pacer.charge(shared, blank)
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
        handle(self.relay, cast("ChatPeer", self), event)

    def _on_remote_error(self, exc: RemoteProtocolError) -> None:
        self.errors += 1
        commands.bad_line(self.relay, cast("ChatPeer", self), exc)

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
            self.relay.stats.flood_kicks += 1
            self.close(verdict.bye, log_reason="flooding", linger=True)
            return
        if verdict.notice is not None:
            self.relay.stats.flood_slowdowns += 1
            self.send(Info(verdict.notice))
            self.relay.console.line(
                "FLOOD", f"Peer {self.label} is being slowed down.", who=cast("Peer", self)
            )
        if not self.transport.is_closing():
            self.transport.pause_reading()
        if self._resume_handle is not None:
            self._resume_handle.cancel()  # (one put off to the next pass: this one instead)
        self._resume_handle = loop.call_later(verdict.wait, self._resume)

    def _wait_for_room(self) -> None:
        """Its room takes no more chat now (Room.busy): pause, and go on after this
        pass's fan-out, or once the room is no longer held (read_on)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        if self.room.held:
            self.room.waiting.append(cast("Peer", self))
        else:
            self.read_on()

    def read_on(self) -> None:
        if self._resume_handle is None:
            self._resume_handle = asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        try:
            self._process()
            if self._resume_handle is not None or self._closing or self.room.held:
                return  # throttled again, waiting for its room, or gone
            if self._eof:
                self._finish_after_eof()
                self.close()
            elif self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        except Exception:
            self.fail()

    def _finish_after_eof(self) -> None:
        if self._leave_reason is None:
            self._leave_reason = ""  # a clean leave needs no reason
        self.flush()

    def acknowledge(self, seq: int, message_id: int | None = None) -> None:
        self._acks.handled(seq, message_id)

    def hold_ack(self, seq: int) -> None:
        self._acks.hold(seq)

    def acknowledge_late(self, seq: int, message_id: int | None) -> None:
        if (ack := self._acks.release(seq, message_id)) is not None and not self._closing:
            self.send(ack)
