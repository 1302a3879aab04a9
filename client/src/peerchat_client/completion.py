"""Tab completion on the input line: commands, nicknames and rooms seen in the chat.

The names come from what the server told us (welcome, ``/who``, ``/rooms``,
joins, renames, messages) and are kept in small bounded caches, newest first:
a busy server cannot make the client's memory grow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from peerchat_protocol import (
    Entered,
    Event,
    Joined,
    Message,
    Renamed,
    Rooms,
    Roster,
    Welcome,
    fold,
)

from .commands import COMMANDS

#: Names remembered per kind; the least recently seen go first. A roster lists
#: at most 100 peers (MAX_ROSTER_ENTRIES) and /rooms at most 100 rooms.
MAX_NAMES = 200
#: Most completions offered at once (a menu longer than this helps nobody).
MAX_COMPLETIONS = 50


class RecentNames:
    """Names seen lately, compared case-insensitively, at most ``limit`` of them."""

    def __init__(self, limit: int = MAX_NAMES) -> None:
        self._limit = limit
        self._names: OrderedDict[str, str] = OrderedDict()  # fold(name) -> name, oldest first

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and fold(name) in self._names

    def add(self, name: str) -> None:
        key = fold(name)
        self._names.pop(key, None)
        self._names[key] = name
        if len(self._names) > self._limit:
            self._names.popitem(last=False)

    def discard(self, name: str) -> None:
        self._names.pop(fold(name), None)

    def starting_with(self, prefix: str) -> list[str]:
        """Names beginning with ``prefix`` (any case), most recently seen first."""
        key = fold(prefix)
        return [name for folded, name in reversed(self._names.items()) if folded.startswith(key)]


class Known:
    """The nicknames and rooms this client has heard of, learnt from events."""

    def __init__(self, limit: int = MAX_NAMES) -> None:
        self.nicks = RecentNames(limit)
        self.rooms = RecentNames(limit)

    def _room(self, room: str | None) -> None:
        if room:
            self.rooms.add(room)

    def learn(self, event: Event) -> None:
        if isinstance(event, Welcome | Roster | Entered):
            # Listed in arrival order: add in reverse so the newest arrival ranks first.
            for peer in reversed(event.peers):
                self.nicks.add(peer.nick)
            self._room(event.room)
        elif isinstance(event, Joined):
            self.nicks.add(event.nick)
            self._room(event.room)
        elif isinstance(event, Renamed):
            self.nicks.discard(event.old)
            self.nicks.add(event.new)
        elif isinstance(event, Message):
            self.nicks.add(event.nick)
            self._room(event.room)
        elif isinstance(event, Rooms):
            for info in reversed(event.rooms):
                self.rooms.add(info.name)


class ChatCompleter(Completer):
    """Completes ``/commands``, a nickname after ``/msg`` (or in a message), a room
    after ``/join``. ``me`` gives our own nickname, never offered as a nick."""

    def __init__(self, known: Known, me: Callable[[], str | None] = lambda: None) -> None:
        self.known = known
        self.me = me
        self._commands = [(c.name, c.summary) for c in COMMANDS if c.name is not None]

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        words = before.split(" ")
        word = words[-1]
        if len(words) == 1:
            if word.startswith("//"):
                return []
            if word.startswith("/"):
                return self._command(word)
            return self._nick(word)
        command = words[0].lower()
        if command == "/join" and len(words) == 2:
            return self._room(word)
        if command == "/msg" and len(words) == 2:
            return self._nick(word)
        if command in ("/nick", "/join", "/leave", "/rooms", "/who", "/timestamps", "/help"):
            return []
        return self._nick(word)  # inside a message: complete whoever is named

    def _command(self, word: str) -> Iterator[Completion]:
        wanted = word.lower()
        for name, summary in self._commands:
            if name.startswith(wanted):
                yield Completion(name, -len(word), display_meta=summary)

    def _nick(self, word: str) -> Iterator[Completion]:
        if not word:
            return
        me = self.me()
        names = [
            n for n in self.known.nicks.starting_with(word) if me is None or fold(n) != fold(me)
        ]
        for name in names[:MAX_COMPLETIONS]:
            yield Completion(name, -len(word))

    def _room(self, word: str) -> Iterator[Completion]:
        hash_ = "#" if word.startswith("#") else ""
        for name in self.known.rooms.starting_with(word.removeprefix("#"))[:MAX_COMPLETIONS]:
            yield Completion(hash_ + name, -len(word), display=f"#{name}")
