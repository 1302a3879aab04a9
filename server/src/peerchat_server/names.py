"""Who holds each nickname: connected peers, and sessions waiting to be resumed.

Two names clash when they are equal in any case (``Alice``, ``alice``) or look alike
(``alice``, ``aIice``, ``a1ice``: the same Unicode TS #39 skeleton, see
``peerchat_protocol.skeleton``), so nobody can pass for someone already here. A
private message still goes to the exact name (in any case), never to a look-alike.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from peerchat_protocol import fold, skeleton

H = TypeVar("H")


class Names(Generic[H]):
    """Names and their holders, by case fold and by skeleton."""

    def __init__(self) -> None:
        self._by_fold: dict[str, H] = {}
        self._by_skeleton: dict[str, H] = {}

    def exact(self, name: str) -> H | None:
        """Who holds ``name`` itself (in any case)."""
        return self._by_fold.get(fold(name))

    def clash(self, name: str) -> H | None:
        """Who holds ``name`` or a name that looks like it."""
        holder = self._by_fold.get(fold(name))
        return holder if holder is not None else self._by_skeleton.get(skeleton(name))

    def claim(self, name: str, holder: H) -> None:
        """``holder`` now holds ``name`` (the caller checked that nobody else does)."""
        self._by_fold[fold(name)] = holder
        if _chosen(name):
            self._by_skeleton[skeleton(name)] = holder

    def release(self, name: str, holder: H) -> None:
        """``holder`` lets ``name`` go (if it held it)."""
        if self._by_fold.get(fold(name)) is holder:
            del self._by_fold[fold(name)]
        if _chosen(name) and self._by_skeleton.get(skeleton(name)) is holder:
            del self._by_skeleton[skeleton(name)]


def _chosen(name: str) -> bool:
    """Whether ``name`` was chosen by someone: not an address-style name (``host:port``),
    which only the server gives and no nickname can look like (a nickname has no ':').
    Those need no look-alike index, which would cost every new connection an entry."""
    return ":" not in name
