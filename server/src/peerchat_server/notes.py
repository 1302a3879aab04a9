"""What replicas tell each other: notes, the channels they go on, and their timing.

Pure (bytes in, :class:`Note` out, and back); bus.py carries them through Redis.

Several servers ("replicas") can share one chat: each publishes what happens to its own
peers and delivers what the others publish to its peers. A room's messages go on that
room's channel, which a replica follows only while one of its peers is in the room, so a
replica with nobody in a room gets none of its traffic; a private message goes on the
inbox of the replica that holds its target; everything else (joins, leaves, renames,
rosters, heartbeats, goodbyes) on one small control channel. Redis keeps the order of
one publisher's messages on a channel, so one sender's lines arrive everywhere in the
order sent, and every follower gets each publication once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from peerchat_protocol import Message
from peerchat_protocol.limits import MAX_INTEGER

#: Bus format version: a replica ignores notes of a version it does not know. (2: notes
#: go on per-room channels; 3: Redis numbers each room's messages, see numbered.)
FORMAT = 3
#: Seconds between a replica's heartbeats, and how long another waits before it
#: forgets a silent replica's peers (a replica killed without a goodbye).
HEARTBEAT = 1.0
FORGET_AFTER = 4.0

#: The URLs --bus takes: one Redis server, or a Redis Cluster (sharded pub/sub).
BUS_SCHEMES = ("redis://", "rediss://", "unix://", "redis-cluster://")

#: Joins, leaves, renames, rosters, syncs, heartbeats and goodbyes: every replica's.
CONTROL = "peerchat:control"


def room_channel(room: str) -> str:
    """The channel of ``room``'s messages. The part in braces is Redis Cluster's hash
    tag: a room's channel and its log (room_log) live on the same shard."""
    return f"peerchat:{{{room.lower()}}}:room"


def room_log(room: str) -> str:
    """The stream that keeps ``room``'s recent messages, for a replica that starts
    following the room (see bus.RedisBus.follow)."""
    return f"peerchat:{{{room.lower()}}}:log"


def room_ids(room: str) -> str:
    """The key that holds ``room``'s next message id (buslinks.NUMBER)."""
    return f"peerchat:{{{room.lower()}}}:ids"


def inbox(replica: str) -> str:
    """The channel of private messages for the peers of ``replica``."""
    return f"peerchat:{{replica-{replica}}}:inbox"


def room_of(channel: str) -> str | None:
    """The room whose channel ``channel`` is (None for another channel)."""
    if channel.startswith("peerchat:{") and channel.endswith("}:room"):
        return channel[len("peerchat:{") : -len("}:room")]
    return None


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
    #: A room's message: the id Redis gave it (its place in the room's one sequence,
    #: the same on every replica). Not part of the note: it comes with its publication.
    shared: int | None = None


#: How every encoded note begins (see encode): a publication holds as many as it has of it.
NOTE_START = b'{"v":%d,' % FORMAT


def own_publication(replica: str) -> bytes:
    """How a room's publication by ``replica`` begins (its messages, see bus._batches)."""
    return b'[{"v":%d,"kind":"message","origin":%s' % (FORMAT, json.dumps(replica).encode())


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


def numbered(data: bytes) -> tuple[int | None, bytes]:
    """A room's publication as Redis numbered it: ``FIRST:`` and the batch, whose
    notes are messages ``FIRST``, ``FIRST + 1`` … of the room (see buslinks.NUMBER).
    (None, ``data``) for a publication without a number."""
    head, colon, _ = data[:20].partition(b":")
    if colon and head.isdigit():
        return int(head), data[len(head) + 1 :]
    return None, data


def decode_batch(data: bytes, first: int | None = None) -> list[Note | BadNote]:
    """The notes of one publication, in order; a note that cannot be read is returned
    as its :class:`BadNote` (the rest are still good), newer-format ones are skipped.
    With ``first`` (a room's, see :func:`numbered`), the n-th item is message
    ``first + n`` of its room, whether it can be read or not."""
    try:
        items = json.loads(data)
    except ValueError as exc:
        return [BadNote(f"not JSON: {exc}")]
    if not isinstance(items, list):
        items = [items]
    notes: list[Note | BadNote] = []
    for place, item in enumerate(items):
        try:
            note = _note(item)
        except BadNote as exc:
            notes.append(exc)
            continue
        except (TypeError, ValueError, AttributeError) as exc:  # e.g. "peers": 5
            notes.append(BadNote(f"malformed: {exc}"))
            continue
        if note is not None and first is not None:
            if first + place > MAX_INTEGER:  # (a frame could not carry it: PROTOCOL.md §4)
                notes.append(BadNote(f"id {first + place} is over {MAX_INTEGER}"))
                continue
            note = replace(note, shared=first + place)
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


def safe_url(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
