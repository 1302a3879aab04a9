"""The peers of the other replicas, as far as this one has been told over the bus.

Each replica announces its own peers (joins, leaves, renames, and its whole roster when
another asks); this book keeps them by nickname so that names stay unique across the
chat, ``/who`` and the join notices count everyone, and a private message finds its
target wherever it is. A replica that stops sending heartbeats is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerchat_protocol import fold, skeleton


@dataclass(slots=True)
class RemotePeer:
    nick: str
    addr: str
    room: str
    replica: str
    digest: str = ""  # of its session secret (tokens.digest); "" for plain peers
    #: The newest message id here when this replica learned the peer is in its room:
    #: what it may catch up on here, should it come here, starts after it.
    since: int | None = None


class Replicas:
    """Remote peers by folded nickname, and when each replica was last heard from."""

    def __init__(self) -> None:
        self._peers: dict[str, RemotePeer] = {}
        self._looks: dict[str, RemotePeer] = {}  # by skeleton: names that look alike
        self._by_digest: dict[str, RemotePeer] = {}  # by session: who may resume here
        self._heard: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def find(self, nick: str) -> RemotePeer | None:
        return self._peers.get(fold(nick))

    def clash(self, nick: str) -> RemotePeer | None:
        """The remote peer called ``nick`` or a name that looks like it."""
        return self._peers.get(fold(nick)) or self._looks.get(skeleton(nick))

    def with_session(self, secret_digest: str) -> RemotePeer | None:
        """The peer of another replica whose session has this digest, if any."""
        return self._by_digest.get(secret_digest) if secret_digest else None

    def add(self, peer: RemotePeer) -> RemotePeer | None:
        """Record ``peer``; returns the entry it replaced, if any."""
        key = fold(peer.nick)
        previous = self._peers.get(key)
        if previous is not None:
            self._unlook(previous)
        self._peers[key] = peer
        self._looks[skeleton(peer.nick)] = peer
        if peer.digest:
            self._by_digest[peer.digest] = peer
        return previous

    def _unlook(self, peer: RemotePeer) -> None:
        """Drop ``peer`` from the indexes beside the one by name."""
        if self._looks.get(skeleton(peer.nick)) is peer:
            del self._looks[skeleton(peer.nick)]
        if self._by_digest.get(peer.digest) is peer:
            del self._by_digest[peer.digest]

    def remove(self, nick: str, replica: str) -> RemotePeer | None:
        """Forget ``nick`` if ``replica`` holds it; returns the entry."""
        peer = self._peers.get(fold(nick))
        if peer is None or peer.replica != replica:
            return None
        del self._peers[fold(nick)]
        self._unlook(peer)
        return peer

    def of(self, replica: str) -> list[RemotePeer]:
        return [p for p in self._peers.values() if p.replica == replica]

    def drop_replica(self, replica: str) -> list[RemotePeer]:
        """Forget ``replica`` and every peer of it; returns them."""
        gone = self.of(replica)
        for peer in gone:
            del self._peers[fold(peer.nick)]
            self._unlook(peer)
        self._heard.pop(replica, None)
        return gone

    def clear(self) -> list[RemotePeer]:
        gone = list(self._peers.values())
        self._peers.clear()
        self._looks.clear()
        self._by_digest.clear()
        self._heard.clear()
        return gone

    def known(self, replica: str) -> bool:
        return replica in self._heard

    def heard(self, replica: str, now: float) -> None:
        self._heard[replica] = now

    def silent(self, now: float, after: float) -> list[str]:
        """Replicas not heard from for ``after`` seconds."""
        return [r for r, t in self._heard.items() if now - t > after]
