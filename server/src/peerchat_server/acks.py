"""When a peer's lines are acknowledged (PROTOCOL.md §8): with one ``ack`` per batch of
lines read, and, for a line the replicas' bus numbers (ownlines.py), only once it has
been delivered: an ``ack`` covers every line up to its ``seq``, so none covers a line
that still waits. Pure bookkeeping: the peer sends what :class:`Acks` says."""

from __future__ import annotations

from collections import deque

from peerchat_protocol import Ack


class Acks:
    """One connection's acknowledgements."""

    __slots__ = ("_done", "_held", "_named", "_sent", "reading")

    def __init__(self) -> None:
        self._done: list[int] = []  # seqs handled (and not waiting) since the last ack
        self._sent = -1  # the newest seq acknowledged
        self._named: tuple[int, int] | None = None  # (seq, id) of the newest line relayed
        self._held: deque[int] = deque()  # seqs waiting for the bus, oldest first
        #: While a batch of lines is read: what is due goes out at its end (:meth:`due`).
        self.reading = False

    def handled(self, seq: int, message_id: int | None = None) -> None:
        """Line ``seq`` was handled (relayed as ``message_id``, if it was)."""
        if seq > self._sent and seq not in self._held:
            self._done.append(seq)
        if message_id is not None and (self._named is None or seq >= self._named[0]):
            self._named = (seq, message_id)

    def hold(self, seq: int) -> None:
        """Line ``seq`` waits for the bus: no ``ack`` covers it until :meth:`release`."""
        self._held.append(seq)
        if seq in self._done:
            self._done.remove(seq)

    def release(self, seq: int, message_id: int | None) -> Ack | None:
        """Line ``seq`` was delivered (as ``message_id`` here): the ``ack`` to send now, if any
        (none while a batch is read: its end says it)."""
        if seq in self._held:
            self._held.remove(seq)
        self.handled(seq, message_id)
        return None if self.reading else self.due()

    def due(self) -> Ack | None:
        """The ``ack`` owed now: up to the newest line handled, short of any that waits."""
        below = self._held[0] if self._held else None
        upto = max((s for s in self._done if below is None or s < below), default=-1)
        if upto <= self._sent:
            return None
        self._sent = upto
        self._done = [s for s in self._done if s > upto]
        named = self._named
        return Ack(upto, named[1] if named is not None and named[0] == upto else None)
