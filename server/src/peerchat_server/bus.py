"""The connection that carries the replicas' notes (notes.py) through Redis.

:class:`RedisBus` publishes in batches, one per channel and pass of the event loop, and
hands what it receives to a :class:`Listener`, across Redis outages (``on_split``, then
``on_joined`` when it is back). It follows the control channel and its own inbox always,
and a room's channel only while it is told to (:meth:`RedisBus.follow`): a replica with
nobody in a room receives none of its traffic. A room's messages are also appended to
its log in Redis, so a replica that starts following a room where others have been
talking gets what was said there (``on_backfill``) before what is said next.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from peerchat_protocol import backoff

from .buslinks import Link, Publication, make_link
from .notes import (
    CONTROL,
    NOTE_START,
    BadNote,
    Note,
    batch,
    decode_batch,
    encode,
    inbox,
    numbered,
    own_publication,
    room_channel,
    room_ids,
    room_log,
    room_of,
    safe_url,
)
from .stats import Stats

#: Reconnecting to Redis: the first delay, doubling up to the cap.
RETRY_FIRST = 0.25
RETRY_CAP = 5.0
#: Seconds a stopping replica waits for its last notes to be published.
FLUSH_WAIT = 2.0
#: Notes in one publication, at most (a few hundred KiB at chat sizes).
BATCH_NOTES = 500
#: Seconds a room's log may take to read; publications read from it at a time, and
#: at most (each holds one or more notes: the log is read back until ``keep`` notes).
BACKFILL_WAIT = 5.0
BACKFILL_PAGE = 100
BACKFILL_ENTRIES = 2000
#: Notes waiting for the publisher, at most (a burst larger than this within one
#: pass of the event loop is cut; the publisher normally empties it every pass).
MAX_PENDING = 100_000


class Listener(Protocol):
    """Who hears what comes off the bus (redis_replication.RedisReplication)."""

    def on_note(self, note: Note) -> None:
        """Another replica published ``note``."""
        ...

    def on_own(self, room: str, first: int, count: int) -> bool:
        """``count`` messages this replica published in ``room`` are back, numbered from
        ``first``, in the order published; False if it needs them read (``on_note``)."""
        ...

    def on_backfill(self, room: str, notes: list[Note]) -> None:
        """``room``, just followed, had these messages lately (oldest first, this
        replica's own among them); what the room's channel brings next comes after."""
        ...

    def on_split(self, why: str) -> None:
        """The connection to Redis is lost (``why``); reconnecting."""
        ...

    def on_joined(self) -> None:
        """Connected to Redis: at first, and again after each split."""
        ...


class RedisBus:
    """Publishes notes in batches and hands received ones to a :class:`Listener`."""

    def __init__(
        self,
        url: str,
        *,
        log: Callable[[str, str], None],
        keep: int = 100,
        stats: Stats | None = None,
        link: Callable[[str], Link] = make_link,
    ) -> None:
        self.url = url
        self.replica = secrets.token_hex(4)
        self._own = own_publication(self.replica)
        #: Messages a room's log in Redis keeps (what a replica can backfill).
        self.keep = keep
        self.stats = stats if stats is not None else Stats()
        #: Notes received, by room ("" for the control channel and the inbox).
        self.received: Counter[str] = Counter()
        self._log = log
        self._make_link = link
        self._listener: Listener | None = None
        self._pending: list[tuple[str, bytes]] = []  # (channel, encoded note)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set whenever the queue has been sent
        self._overflowed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._fills: set[asyncio.Task[None]] = set()  # room logs being read
        self._link: Link | None = None
        self.connected = False
        #: Redis's clock when last connected, in microseconds (Link.now), and the epoch
        #: of the replicas sharing it (Link.epoch; "" until connected).
        self.clock = 0
        self.epoch = ""
        #: Rooms followed (lower case), and those to backfill once subscribed.
        self.rooms: set[str] = set()
        self._to_fill: set[str] = set()
        self._subscribed: set[str] = set()  # room channels, on the current link
        self._heard: set[str] = set()  # rooms whose subscription Redis confirmed there
        self._resubscribe = asyncio.Event()

    # --- what the replication asks ----------------------------------------------------

    def publish(self, note: Note, channel: str = CONTROL) -> bool:
        """Queue ``note`` for ``channel``; the publisher sends everything queued at once.
        True if it was queued.

        While Redis is away nothing is queued: the chat is split and every peer has
        been told that only this server's peers get what they say. Delivering it to
        the others minutes later, out of its conversation, would be worse than not.
        (Who is where is sent again in full once Redis is back.)
        """
        if not self.connected:
            return False
        if len(self._pending) >= MAX_PENDING:
            if not self._overflowed:  # said once per overflow
                self._overflowed = True
                self._log("BUS", f"{MAX_PENDING} notes wait for Redis; later ones are dropped.")
            return False
        self._pending.append((channel, encode(note)))
        self._wake.set()
        return True

    def follow(self, room: str, *, backfill: bool) -> None:
        """Receive ``room``'s messages from now on; with ``backfill``, also what its log
        holds (``Listener.on_backfill``), once the subscription is confirmed."""
        room = room.lower()
        if room in self.rooms:
            return
        self.rooms.add(room)
        if backfill and room_channel(room) in self._subscribed and self._listener is not None:
            # Left and came back before the keeper unsubscribed: no new subscription
            # will be confirmed, and the channel was heard all along: read the log now.
            self._heard.add(room)
            self._fill(room, self._listener)
        elif backfill:
            self._to_fill.add(room)
        self._resubscribe.set()

    def unfollow(self, room: str) -> None:
        """Receive no more of ``room``'s messages."""
        room = room.lower()
        self.rooms.discard(room)
        self._to_fill.discard(room)
        self._heard.discard(room)
        self._resubscribe.set()

    def hears(self, room: str) -> bool:
        """Whether what is published in ``room`` (lower case) now comes back here: on
        its channel, or from its log, which is read once the subscription is confirmed."""
        return self.connected and (room in self._heard or room in self._to_fill)

    # --- life -------------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        """Connect (in the background, retrying) and tell ``listener`` what happens.

        Raises RuntimeError if the ``redis`` package (the ``[redis]`` extra) is missing.
        """
        self._make_link(self.url)  # fails now, not in the background, without redis
        self._listener = listener
        self._tasks = [
            asyncio.create_task(self._listen(), name="bus-listen"),
            asyncio.create_task(self._publish_loop(), name="bus-publish"),
        ]

    async def stop(self, farewell: Note | None = None) -> None:
        """Send what is queued, then ``farewell`` after it, then disconnect. The flush
        waits FLUSH_WAIT seconds at most: a Redis that is away has nothing to receive."""
        if self.connected and (farewell is not None or self._pending):
            if farewell is not None:
                self._pending.append((CONTROL, encode(farewell)))
            self._drained.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), FLUSH_WAIT)
        self.connected = False
        for task in (*self._tasks, *self._fills):
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._link is not None:
            await self._link.close()

    async def _listen(self) -> None:
        """Stay subscribed: reconnect with backoff whenever Redis goes away."""
        listener = self._listener
        assert listener is not None, "start() first"
        delays = backoff(RETRY_FIRST, RETRY_CAP, uniform=random.uniform)
        while True:  # one turn per connection to Redis; ends when cancelled
            link = self._make_link(self.url)
            keeper: asyncio.Task[None] | None = None
            try:
                await link.open()
                self.clock = await link.now()
                self.epoch = await link.epoch(secrets.token_hex(6))
                await link.subscribe([CONTROL, inbox(self.replica)])
                self._subscribed, self._heard = set(), set()
                self._link = link
                self.connected = True
                delays = backoff(RETRY_FIRST, RETRY_CAP, uniform=random.uniform)
                self._log(
                    "BUS", f"Connected to Redis at {safe_url(self.url)}; replica {self.replica}."
                )
                listener.on_joined()
                self._wake.set()
                self._resubscribe.set()
                keeper = asyncio.create_task(self._keep_subscriptions(link))
                async for kind, channel, data in link.items():
                    self._receive(kind, channel, data, listener)
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                was = self.connected
                self.connected = False
                self._link = None
                why = str(exc) or type(exc).__name__
                if was:  # a split: what was said meanwhile is not replayed
                    self._to_fill.clear()  # (else: rooms followed meanwhile are filled
                    # once connected, as the listener waits for)
                for task in self._fills:
                    task.cancel()
                if keeper is not None:
                    keeper.cancel()
                await link.close()
                if was:
                    self._log("BUS", f"Lost Redis at {safe_url(self.url)} ({why}); reconnecting.")
                    listener.on_split(why)
                await asyncio.sleep(next(delays))
            finally:
                if keeper is not None:
                    keeper.cancel()
                await link.close()

    def _receive(self, kind: str, channel: str, data: bytes, listener: Listener) -> None:
        room = room_of(channel)
        if kind != "message":
            if kind == "subscribed" and room is not None and room in self.rooms:
                self._heard.add(room)
            if kind == "subscribed" and room is not None and room in self._to_fill:
                self._to_fill.discard(room)
                self._fill(room, listener)
            return
        first, data = numbered(data) if room is not None else (None, data)
        if room is not None and first is not None and data.startswith(self._own):
            # This replica's own publication: it has its lines, which need no reading.
            count = data.count(NOTE_START)  # (a text's quotes are escaped: exact)
            self.received[room] += count
            self.stats.bus_notes += count
            if room not in self.rooms or listener.on_own(room, first, count):
                return
        notes = decode_batch(data, first)
        self.received[room or ""] += len(notes)
        self.stats.bus_notes += len(notes)
        if room is not None and room not in self.rooms:
            return  # (in flight when we stopped following it)
        for note in notes:
            if isinstance(note, BadNote):
                self._log("BUS", f"Ignored a bad note: {note}.")
            elif note.origin != self.replica or room is not None:
                # A room's messages come back to their replica too: numbered by Redis,
                # they are delivered here in the room's one order (see said).
                listener.on_note(note)

    async def _keep_subscriptions(self, link: Link) -> None:
        """Subscribe to the rooms followed and unsubscribe from the others, as told.
        If that fails, the link is closed: its reader ends, and the bus reconnects (a
        subscription that silently did not happen would leave a room deaf)."""
        try:
            while True:  # ends with its link (cancelled)
                await self._resubscribe.wait()
                self._resubscribe.clear()
                wanted = {room_channel(room) for room in self.rooms}
                if gone := sorted(self._subscribed - wanted):
                    self._heard -= {room_of(channel) or "" for channel in gone}
                    await link.unsubscribe(gone)
                    self._subscribed -= set(gone)
                if new := sorted(wanted - self._subscribed):
                    await link.subscribe(new)
                    self._subscribed |= set(new)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log("BUS", f"Could not change the subscriptions ({exc}); reconnecting.")
            await link.close()

    def _fill(self, room: str, listener: Listener) -> None:
        task = asyncio.create_task(self._backfill(room, listener))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _backfill(self, room: str, listener: Listener) -> None:
        """What ``room``'s log holds (its newest ``keep`` messages), to the listener;
        nothing if it cannot be read in BACKFILL_WAIT seconds."""
        pages: list[list[Note]] = []  # newest first
        link = self._link
        try:
            if link is not None:
                await asyncio.wait_for(self._read_log(link, room, pages), BACKFILL_WAIT)
        except Exception as exc:
            self._log("BUS", f"Could not read the log of #{room} ({exc}).")
        notes = [note for page in reversed(pages) for note in page]
        if room in self.rooms:
            listener.on_backfill(room, notes[-self.keep :])

    async def _read_log(self, link: Link, room: str, pages: list[list[Note]]) -> None:
        """Read ``room``'s log back, newest first, until ``keep`` notes or its start."""
        before: str | None = None
        got = 0
        for _ in range(BACKFILL_ENTRIES // BACKFILL_PAGE):
            entries = await link.recent(room_log(room), BACKFILL_PAGE, before)
            for key, data in entries:
                first, data = numbered(data)
                page = [n for n in decode_batch(data, first) if isinstance(n, Note)]
                pages.append(page)
                got += len(page)
                before = key
            if got >= self.keep or len(entries) < BACKFILL_PAGE:
                return

    async def _publish_loop(self) -> None:
        """Send what is queued, in order, one publication per channel and batch."""
        while True:  # one turn per pass; ends when cancelled
            await self._wake.wait()
            self._wake.clear()
            link = self._link
            if link is None or not self.connected or not self._pending:
                self._drained.set()
                continue
            pending, self._pending = self._pending, []
            try:
                await link.send(self._batches(pending), self.keep)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener notices, reconnects, and says so
                self._log("BUS", f"Could not publish {len(pending)} notes ({exc}).")
            if not self._pending:
                self._overflowed = False
                self._drained.set()

    @staticmethod
    def _batches(pending: list[tuple[str, bytes]]) -> list[Publication]:
        """``pending`` as publications, BATCH_NOTES at most in one; a room's also go to
        its log. Control notes and private ones stay where they were among the rest (a
        join before the joiner's first line, a leave after its last, a private line
        between its sender's others); between two of them, each room's notes go in one
        publication, in the order queued."""
        out: list[Publication] = []
        run: dict[str, list[bytes]] = {}  # the rooms' notes, or one other channel's

        def flush() -> None:
            for channel, encoded in run.items():
                room = room_of(channel)
                for start in range(0, len(encoded), BATCH_NOTES):
                    part = encoded[start : start + BATCH_NOTES]
                    keys = None if room is None else (room_log(room), room_ids(room), len(part))
                    out.append((channel, batch(part), keys))
            run.clear()

        rooms_run = False  # whether ``run`` holds rooms' notes
        for channel, data in pending:
            is_room = room_of(channel) is not None
            if run and not (is_room and rooms_run) and channel not in run:
                flush()  # rooms to another channel, another channel to rooms, or a third
            rooms_run = is_room
            run.setdefault(channel, []).append(data)
        flush()
        return out
