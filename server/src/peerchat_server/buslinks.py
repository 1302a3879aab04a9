"""The two ways to reach Redis: one server (``redis://``), or a Redis Cluster whose
shards share the rooms (``redis-cluster://``, sharded pub/sub). bus.RedisBus drives one
:class:`Link` per connection and never asks which it has.

Both need the ``redis`` package (``pip install 'peerchat-server[redis]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit

#: What a Link yields: ("message", channel, data) for a publication, ("subscribed",
#: channel, b"") once a subscription is confirmed (what came before it was missed), and
#: ("unsubscribed", channel, b"") once one ended.
Item = tuple[str, str, bytes]
#: Seconds a room's log outlives its last message.
LOG_TTL = 86_400
#: A room's publication, numbered (one Lua script, so Redis runs it whole, and in the
#: order sent): the room's next ids go to its notes, the first of them before the data
#: (``FIRST:``, see notes.numbered), which goes into the room's log (KEYS[1]) and on its
#: channel. The next id is kept in KEYS[2] (ONE_SEQUENCE: one for every room on one Redis
#: server, so a replica gets every room's ids in increasing order); it is never below the
#: clock's microseconds, so ids increase even if Redis lost it (restarted empty).
#: ARGV: data, notes in it, entries the log keeps, TTL, PUBLISH or SPUBLISH, channel.
NUMBER = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local first = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') or 0, now)
local data = string.format('%.0f', first) .. ':' .. ARGV[1]
redis.call('SET', KEYS[2], string.format('%.0f', first + tonumber(ARGV[2])), 'EX', ARGV[4])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'n', data)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call(ARGV[5], ARGV[6], data)
return 1
"""
#: The key of the one sequence all rooms share on one Redis server (on a Redis Cluster a
#: script may only touch one slot's keys: each room has its own, ``peerchat:{room}:ids``).
ONE_SEQUENCE = "peerchat:ids"
#: The key of the epoch every replica sharing a Redis gives its clients (kept as long as
#: Redis keeps its data: ids compare within it).
EPOCH_KEY = "peerchat:epoch"
#: One publication: (channel, data, and for a room's: its log and id keys and how many
#: notes the data holds).
Publication = tuple[str, bytes, tuple[str, str, int] | None]
#: Seconds between a cluster link's pings of every shard, and how long one may take.
SHARD_PING_EVERY = 1.0
SHARD_PING_TIMEOUT = 2.0


class Link(Protocol):
    """One connection's worth of Redis: subscriptions, publications, room logs."""

    async def open(self) -> None: ...

    async def subscribe(self, channels: list[str]) -> None: ...

    async def unsubscribe(self, channels: list[str]) -> None: ...

    def items(self) -> AsyncIterator[Item]: ...

    async def send(self, batches: list[Publication], keep: int) -> None:
        """Publish each (channel, data, room): a room's publication numbered (NUMBER),
        and appended to its log (trimmed to about ``keep`` entries)."""
        ...

    async def now(self) -> int:
        """Redis's clock, in microseconds (what it numbers from: NUMBER)."""
        ...

    async def epoch(self, candidate: str) -> str:
        """The epoch of the replicas sharing this Redis: ``candidate`` if none was set."""
        ...

    async def recent(self, log: str, count: int, before: str | None) -> list[tuple[str, bytes]]:
        """Up to ``count`` entries of stream ``log`` (id, data), newest first: the newest,
        or those older than the entry ``before``."""
        ...

    async def close(self) -> None: ...


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError:  # the optional extra is missing
        raise RuntimeError(
            "--bus needs the redis package: pip install 'peerchat-server[redis]'"
        ) from None
    return aioredis


def make_link(url: str) -> Link:
    """The link for ``url``; RuntimeError if the redis package is missing."""
    aioredis = _redis()
    if url.startswith("redis-cluster://"):
        return ShardedLink(aioredis, cluster_nodes(url))
    return PlainLink(aioredis, url)


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """``redis-cluster://HOST:PORT[,HOST:PORT…]`` as (host, port) pairs."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        nodes.append((host.strip("[]") or "localhost", int(port or 6379)))
    return nodes


def _no_retry() -> Any:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


def _entries(newest_first: Any) -> list[tuple[str, bytes]]:
    """XREVRANGE's entries as (id, data); one without data is skipped."""
    return [(_text(key), fields[b"n"]) for key, fields in newest_first or [] if b"n" in fields]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _stream(pubsub: Any, kinds: tuple[str, str, str]) -> AsyncIterator[Item]:
    """A pubsub's publications and subscription changes, as Items."""
    message, subscribed, unsubscribed = kinds
    async for item in pubsub.listen():
        kind = item.get("type")
        if kind == message:
            yield ("message", _text(item["channel"]), item["data"])
        elif kind == subscribed:
            yield ("subscribed", _text(item["channel"]), b"")
        elif kind == unsubscribed:
            yield ("unsubscribed", _text(item["channel"]), b"")


class _Publishing:
    """Publications and room logs, the same through either client: one pipeline a
    send (on a cluster, each shard gets its part, all at once), each room's log
    appended with its channel's publication in one script, so that a replica that
    reads the log once subscribed misses nothing."""

    _client: Any
    _publish = "publish"  # the command a channel's publication is (SPUBLISH on a cluster)
    _one_sequence = True  # every room numbered from ONE_SEQUENCE (False on a cluster)

    async def send(self, batches: list[Publication], keep: int) -> None:
        # Redis runs one connection's commands in order: a subscriber of several of these
        # channels (on one server) gets them in the order published.
        pipe = self._client.pipeline(transaction=False)
        for channel, data, room in batches:
            if room is None:
                getattr(pipe, self._publish)(channel, data)
                continue
            log, ids, count = room
            ids = ONE_SEQUENCE if self._one_sequence else ids
            pipe.eval(NUMBER, 2, log, ids, data, count, keep, LOG_TTL, self._publish, channel)
        await pipe.execute()

    async def now(self) -> int:
        seconds, micros = await self._clock().time()
        return int(seconds) * 1_000_000 + int(micros)

    def _clock(self) -> Any:
        return self._client

    async def epoch(self, candidate: str) -> str:
        await self._client.set(EPOCH_KEY, candidate, nx=True)
        return _text(await self._client.get(EPOCH_KEY) or candidate.encode())

    async def recent(self, log: str, count: int, before: str | None) -> list[tuple[str, bytes]]:
        top = "+" if before is None else f"({before}"
        return _entries(await self._client.xrevrange(log, max=top, count=count))


class PlainLink(_Publishing):
    """One Redis server: PUBLISH and SUBSCRIBE on one connection each."""

    def __init__(self, aioredis: Any, url: str) -> None:
        # No retries: Redis going away even for a moment is a split (see ShardedLink).
        self._client = aioredis.from_url(url, socket_connect_timeout=2, retry=_no_retry())
        self._pubsub = self._client.pubsub()

    async def open(self) -> None:
        await self._client.ping()

    async def subscribe(self, channels: list[str]) -> None:
        await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, channels: list[str]) -> None:
        await self._pubsub.unsubscribe(*channels)

    async def items(self) -> AsyncIterator[Item]:
        async for item in _stream(self._pubsub, ("message", "subscribe", "-")):
            yield item

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._client.aclose()


class ShardedLink(_Publishing):
    """A Redis Cluster: each channel lives on the shard of its hash slot (SPUBLISH,
    SSUBSCRIBE), so rooms spread over the shards; redis-py's cluster client routes
    publications and logs, and one subscriber connection per shard listens.

    The link is whole only while every shard answers (pinged every second): with one
    away, some rooms cannot be heard, so the replica says the chat is split, as with a
    single Redis, and joins up once they all answer again."""

    _publish = "spublish"
    _one_sequence = False

    def __init__(self, aioredis: Any, nodes: list[tuple[str, int]]) -> None:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        self._aioredis = aioredis
        self._client: Any = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            socket_connect_timeout=2,
        )
        self._shards: dict[str, Any] = {}  # node name -> a client of that shard alone
        self._subscribers: dict[str, Any] = {}  # node name -> its pubsub
        self._readers: dict[str, asyncio.Task[None]] = {}  # node name -> its reader
        self._where: dict[str, str] = {}  # channel -> node name
        self._queue: asyncio.Queue[Item | BaseException] = asyncio.Queue()

    async def open(self) -> None:
        await self._client.initialize()
        await self._ping()

    def _shard(self, node: Any) -> Any:
        """A client of ``node`` alone that never retries: a shard that goes away, even
        for a moment (a restart), is a split, not a silent reconnection that would hide
        what was published meanwhile."""
        client = self._shards.get(node.name)
        if client is None:
            client = self._shards[node.name] = self._aioredis.Redis(
                host=node.host, port=node.port, socket_connect_timeout=2, retry=_no_retry()
            )
        return client

    def _clock(self) -> Any:
        return self._shard(self._client.get_primaries()[0])

    async def _ping(self) -> None:
        for node in self._client.get_primaries():
            await asyncio.wait_for(self._shard(node).ping(), SHARD_PING_TIMEOUT)

    async def _watch(self) -> None:
        try:
            while True:  # until a shard does not answer (raised) or close()
                await asyncio.sleep(SHARD_PING_EVERY)
                await self._ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._queue.put_nowait(ConnectionError(f"a shard does not answer ({exc})"))

    def _node_of(self, channel: str) -> Any:
        return self._client.get_node_from_key(channel)

    async def subscribe(self, channels: list[str]) -> None:
        for channel in channels:
            node = self._node_of(channel)
            pubsub = self._subscribers.get(node.name)
            if pubsub is None:
                pubsub = self._shard(node).pubsub()
                await pubsub.ssubscribe(channel)  # (raises: nothing is left half made)
                self._subscribers[node.name] = pubsub
                self._readers[node.name] = asyncio.create_task(self._read(pubsub))
            else:
                await pubsub.ssubscribe(channel)
            self._where[channel] = node.name

    async def unsubscribe(self, channels: list[str]) -> None:
        for channel in channels:
            name = self._where.pop(channel, "")
            pubsub = self._subscribers.get(name)
            if pubsub is None:
                continue
            if name in self._where.values():
                await pubsub.sunsubscribe(channel)
                continue
            # Its shard's last channel: that connection goes (a pubsub left with no
            # subscription would end its reader, which means a lost shard).
            del self._subscribers[name]
            self._readers.pop(name).cancel()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _read(self, pubsub: Any) -> None:
        try:
            async for item in _stream(pubsub, ("smessage", "ssubscribe", "sunsubscribe")):
                if item[0] == "unsubscribed" and item[1] in self._where:
                    # Not asked for: its slot moved to another shard (resharding).
                    raise ConnectionError(f"a shard dropped {item[1]} (its slot moved)")
                self._queue.put_nowait(item)
            raise ConnectionError("a shard's subscription ended")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bus reconnects everything
            self._queue.put_nowait(exc)

    async def items(self) -> AsyncIterator[Item]:
        self._readers["(every shard)"] = asyncio.create_task(self._watch())
        while True:  # until a shard's connection fails (raised) or close()
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        for task in self._readers.values():
            task.cancel()
        for pubsub in self._subscribers.values():
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        for client in (*self._shards.values(), self._client):
            with contextlib.suppress(Exception):
                await client.aclose()
