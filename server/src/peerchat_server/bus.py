"""What replicas tell each other through Redis pub/sub, and the connection that carries it.

Several servers ("replicas") can share one chat: each publishes what happens to its own
peers (a message, a join, a leave, a rename, a private message for someone elsewhere)
on one Redis channel, and each delivers what the others publish to its own peers. Redis
keeps the order of one publisher's messages, so one sender's lines arrive everywhere in
the order sent; every replica gets every publication once, so nobody gets a line twice.

:func:`encode` and :func:`decode` are pure (bytes in, :class:`Note` out); :class:`RedisBus`
is the I/O: one connection publishing in batches, one subscribed, both reconnecting
with backoff when Redis goes away. It needs the ``redis`` package
(``pip install 'peerchat-server[redis]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from peerchat_protocol import Message, backoff

#: The one channel every replica publishes on and listens to.
CHANNEL = "peerchat:chat"
#: Bus format version: a replica ignores notes of a version it does not know.
FORMAT = 1
#: Seconds between a replica's heartbeats, and how long another waits before it
#: forgets a silent replica's peers (a replica killed without a goodbye).
HEARTBEAT = 1.0
FORGET_AFTER = 4.0
#: Reconnecting to Redis: the first delay, doubling up to the cap.
RETRY_FIRST = 0.25
RETRY_CAP = 5.0
#: Seconds a stopping replica waits for its last notes to be published.
FLUSH_WAIT = 2.0
#: Notes in one publication, at most (a few hundred KiB at chat sizes).
BATCH_NOTES = 500
#: Notes waiting for the publisher, at most (a burst larger than this within one
#: pass of the event loop is cut; the publisher normally empties it every pass).
MAX_PENDING = 100_000


@dataclass(frozen=True, slots=True)
class Note:
    """One thing a replica tells the others.

    ``kind``: ``message`` (room message or, with ``to``, private), ``join``,
    ``leave``, ``rename``, ``roster`` (every peer of the sender, after a ``sync``),
    ``sync`` (please send your roster), ``beat`` (still here), ``bye`` (going away).
    """

    kind: str
    origin: str  # the publishing replica's id
    room: str | None = None
    nick: str | None = None
    addr: str | None = None
    old: str | None = None  # rename: the old nick
    reason: str | None = None
    message: Message | None = None
    to: str | None = None
    #: join: a digest of the peer's session secret, so that another replica can tell
    #: the same person coming back through it (see tokens.digest).
    digest: str | None = None
    peers: tuple[tuple[str, str, str, str], ...] = ()  # roster: (room, nick, addr, digest)
    extra: dict[str, Any] = field(default_factory=dict)


def encode(note: Note) -> bytes:
    """The bytes published for ``note``."""
    obj: dict[str, Any] = {"v": FORMAT, "kind": note.kind, "origin": note.origin}
    for name in ("room", "nick", "addr", "old", "reason", "to", "digest"):
        value = getattr(note, name)
        if value is not None:
            obj[name] = value
    if note.message is not None:
        m = note.message
        obj["message"] = {
            "id": m.id, "nick": m.nick, "text": m.text, "ts": m.ts, "room": m.room,
            "to": m.to, "action": m.action,
        }  # fmt: skip
    if note.peers:
        obj["peers"] = [list(p) for p in note.peers]
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def safe_url(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class BadNote(ValueError):
    """A publication that is not a note this replica understands."""


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise BadNote(f"{name} must be a string")
    return value


def batch(encoded: list[bytes]) -> bytes:
    """One publication for several encoded notes (a JSON array): Redis, and every
    replica reading it, then handle a burst as one message instead of hundreds."""
    return b"[" + b",".join(encoded) + b"]"


def decode_batch(data: bytes) -> list[Note | BadNote]:
    """The notes of one publication, in order; a note that cannot be read is returned
    as its :class:`BadNote` (the rest are still good), newer-format ones are skipped."""
    try:
        items = json.loads(data)
    except ValueError as exc:
        return [BadNote(f"not JSON: {exc}")]
    if not isinstance(items, list):
        items = [items]
    notes: list[Note | BadNote] = []
    for item in items:
        try:
            note = _note(item)
        except BadNote as exc:
            notes.append(exc)
            continue
        if note is not None:
            notes.append(note)
    return notes


def decode(data: bytes) -> Note | None:
    """The note in ``data``; ``None`` for a newer format; :class:`BadNote` if broken.

    Messages are rebuilt through the protocol's own checks: a replica trusts no
    publication more than a peer.
    """
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise BadNote(f"not JSON: {exc}") from None
    return _note(obj)


def _note(obj: object) -> Note | None:
    if not isinstance(obj, dict):
        raise BadNote("not a JSON object")
    if obj.get("v") != FORMAT:
        return None
    kind, origin = _text(obj, "kind"), _text(obj, "origin")
    if not kind or not origin:
        raise BadNote("kind and origin are required")
    message = None
    if isinstance(obj.get("message"), dict):
        m = obj["message"]
        try:
            message = Message(
                m.get("id"), m.get("nick"), m.get("text"), m.get("ts"), m.get("room"),
                m.get("to"), bool(m.get("action")),
            )  # fmt: skip
        except Exception as exc:  # LocalProtocolError, TypeError: a broken message
            raise BadNote(f"bad message: {exc}") from None
    peers: list[tuple[str, str, str, str]] = []
    for entry in obj.get("peers") or ():
        if not (
            isinstance(entry, list) and len(entry) == 4 and all(isinstance(x, str) for x in entry)
        ):
            raise BadNote("peers must be [room, nick, addr, digest] lists")
        peers.append((entry[0], entry[1], entry[2], entry[3]))
    return Note(
        kind=kind,
        origin=origin,
        room=_text(obj, "room"),
        nick=_text(obj, "nick"),
        addr=_text(obj, "addr"),
        old=_text(obj, "old"),
        reason=_text(obj, "reason"),
        message=message,
        to=_text(obj, "to"),
        digest=_text(obj, "digest"),
        peers=tuple(peers),
    )


class Listener(Protocol):
    """Who hears what comes off the bus (redis_replication.RedisReplication)."""

    def on_note(self, note: Note) -> None:
        """Another replica published ``note``."""
        ...

    def on_split(self, why: str) -> None:
        """The connection to Redis is lost (``why``); reconnecting."""
        ...

    def on_joined(self) -> None:
        """Connected to Redis: at first, and again after each split."""
        ...


class RedisBus:
    """Publishes notes in batches and hands received ones to a :class:`Listener`,
    across Redis outages: it is told when the connection is lost (``on_split``) and
    when it is back (``on_joined``, also at the first connection)."""

    def __init__(self, url: str, *, log: Callable[[str, str], None]) -> None:
        self.url = url
        self.replica = secrets.token_hex(4)
        self._log = log
        self._listener: Listener | None = None
        self._redis_module: Any = None  # redis.asyncio, imported at start()
        self._pending: list[bytes] = []
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set whenever the queue has been sent
        self._overflowed = False
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False
        self._client: Any = None

    def publish(self, note: Note) -> None:
        """Queue ``note``; the publisher sends everything queued in one pipeline.

        While Redis is away nothing is queued: the chat is split and every peer has
        been told that only this server's peers get what they say. Delivering it to
        the others minutes later, out of its conversation, would be worse than not.
        (Who is where is sent again in full once Redis is back.)
        """
        if not self.connected:
            return
        if len(self._pending) >= MAX_PENDING:
            if not self._overflowed:  # said once per overflow
                self._overflowed = True
                self._log("BUS", f"{MAX_PENDING} notes wait for Redis; later ones are dropped.")
            return
        self._pending.append(encode(note))
        self._wake.set()

    async def start(self, listener: Listener) -> None:
        """Connect (in the background, retrying) and tell ``listener`` what happens.

        Raises RuntimeError if the ``redis`` package (the ``[redis]`` extra) is missing.
        """
        try:
            import redis.asyncio as aioredis
        except ImportError:  # the optional extra is missing
            raise RuntimeError(
                "--bus needs the redis package: pip install 'peerchat-server[redis]'"
            ) from None
        self._redis_module = aioredis
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
                self._pending.append(encode(farewell))
            self._drained.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), FLUSH_WAIT)
        self.connected = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    async def _listen(self) -> None:
        """Stay subscribed: reconnect with backoff whenever Redis goes away."""
        # One delay per failed connection, starting again once connected.
        listener = self._listener
        assert listener is not None, "start() first"
        delays = backoff(RETRY_FIRST, RETRY_CAP, uniform=random.uniform)
        while True:  # one turn per connection to Redis; ends when cancelled
            client = self._redis_module.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self._client = client
                self.connected = True
                delays = backoff(RETRY_FIRST, RETRY_CAP, uniform=random.uniform)
                self._log(
                    "BUS", f"Connected to Redis at {safe_url(self.url)}; replica {self.replica}."
                )
                listener.on_joined()
                self._wake.set()
                async for item in pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    for note in decode_batch(item["data"]):
                        if isinstance(note, BadNote):
                            self._log("BUS", f"Ignored a bad note: {note}.")
                        elif note.origin != self.replica:
                            listener.on_note(note)
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                was = self.connected
                self.connected = False
                self._client = None
                why = str(exc) or type(exc).__name__
                if was:
                    self._log("BUS", f"Lost Redis at {safe_url(self.url)} ({why}); reconnecting.")
                    listener.on_split(why)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
                await asyncio.sleep(next(delays))

    async def _publish_loop(self) -> None:
        """Send what is queued, in order, one pipeline per batch."""
        while True:  # one turn per batch; ends when cancelled
            await self._wake.wait()
            self._wake.clear()
            client = self._client
            if client is None or not self.connected or not self._pending:
                self._drained.set()
                continue
            pending, self._pending = self._pending, []
            try:
                # One publication per batch, in order (Redis keeps one publisher's order).
                for start in range(0, len(pending), BATCH_NOTES):
                    await client.publish(CHANNEL, batch(pending[start : start + BATCH_NOTES]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener notices, reconnects, and says so
                self._log("BUS", f"Could not publish {len(pending)} notes ({exc}).")
            if not self._pending:
                self._overflowed = False
                self._drained.set()
