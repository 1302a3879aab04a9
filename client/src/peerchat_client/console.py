"""Rendering what happens to tagged, optionally coloured lines: ``[RECEIVED] 14:02 <alice> hi``.

The tags and their look are the seed client's (``[SUCCESS]``, ``[INFO]``, ``[WAIT]``,
``[INPUT]``, ``[SENT]``, ``[RECEIVED]``, ``[ERROR]``), plus ``[HISTORY]`` for messages
replayed from before we joined a room. Every piece of text shown here that came
from the server was sanitized by the protocol decoder; :func:`describe` builds
the lines, :class:`Console` writes them, with the look a :class:`Display` asks for
(times, dimmed history, highlighted mentions, the bell).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TextIO

from colorama import Fore, Style

from peerchat_protocol import (
    Entered,
    Error,
    Event,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Renamed,
    Rooms,
    Roster,
    Say,
    Welcome,
    fold,
    sanitize,
    to_wire,
)


class Tag(StrEnum):
    SUCCESS = "SUCCESS"
    INFO = "INFO"
    WAIT = "WAIT"
    INPUT = "INPUT"
    SENT = "SENT"
    RECEIVED = "RECEIVED"
    ERROR = "ERROR"
    HISTORY = "HISTORY"
    WARNING = "WARNING"
    DISCONNECTED = "DISCONNECTED"
    RECONNECTED = "RECONNECTED"


_COLORS: dict[Tag, str] = {
    Tag.SUCCESS: Fore.GREEN,
    Tag.INFO: Fore.CYAN,
    Tag.WAIT: Fore.YELLOW,
    Tag.WARNING: Fore.YELLOW + Style.BRIGHT,
    Tag.INPUT: Fore.BLUE,
    Tag.SENT: Fore.MAGENTA,
    Tag.RECEIVED: Fore.WHITE + Style.BRIGHT,
    Tag.ERROR: Fore.RED,
    Tag.HISTORY: Style.DIM,
    Tag.DISCONNECTED: Fore.RED + Style.BRIGHT,
    Tag.RECONNECTED: Fore.GREEN + Style.BRIGHT,
}

#: The look of a line that names you (or is a private message to you): it must
#: stand out from the white of ordinary received lines.
HIGHLIGHT = Fore.YELLOW + Style.BRIGHT
#: Replayed history: dimmed, so it reads as context rather than news.
DIMMED = Style.DIM
#: The terminal bell, rung (in interactive mode) for a line that names you.
BELL = "\a"

PROMPT_TEXT = "Enter your message (or 'q' to quit): "


def color_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour on a terminal; never under ``NO_COLOR``; always under ``FORCE_COLOR``.

    Both variables count only when set to a non-empty value (https://no-color.org).
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def paint(tag: Tag, text: str, *, color: bool, style: str = "") -> str:
    """``[TAG] text``, the tag coloured when ``color``, and the text in ``style`` too."""
    if not color:
        return f"[{tag}] {text}"
    body = f"{style}{text}{Style.RESET_ALL}" if style else text
    return f"{_COLORS[tag]}[{tag}]{Style.RESET_ALL} {body}"


def local_clock(ts: int) -> str:
    """``HH:MM`` in this machine's time zone, for a timestamp in Unix milliseconds."""
    return datetime.fromtimestamp(ts / 1000).strftime("%H:%M")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=8)
def _naming(nick: str) -> re.Pattern[str]:
    # A whole word: not inside a longer name ("alicette", "bob_alice"), but
    # "@alice", "alice:" and "alice." at the end of a sentence all count.
    return re.compile(rf"(?<![\w-])(?<!\w\.){re.escape(nick)}(?![\w-]|\.\w)", re.IGNORECASE)


def mentions(event: Message, nick: str | None) -> bool:
    """Whether ``event`` calls for ``nick``'s attention: a private message to them,
    or a message naming them as a whole word (any case). Never a replayed (history)
    message, nor one of their own."""
    if event.history or not nick or fold(event.nick) == fold(nick):
        return False
    if event.to is not None:
        return True
    return _naming(nick).search(event.text) is not None


def message_text(event: Message) -> str:
    """``<alice> hi``, ``* alice waves``, or ``[PM from alice] hi``."""
    if event.to is not None:
        return f"[PM from {event.nick}] {event.text}"
    if event.action:
        return f"* {event.nick} {event.text}"
    return f"<{event.nick}> {event.text}"


def said_text(say: Say, nick: str | None) -> str:
    """What we sent, as the ``[SENT]`` line shows it: ``hi``, ``* alice waves``,
    ``[PM to bob] hi``."""
    if say.to is not None:
        return f"[PM to {say.to}] {say.text}"
    if say.action:
        return f"* {nick or 'you'} {say.text}"
    return say.text


def _in(room: str | None) -> str:
    return f" #{room}" if room else ""


def _names(online: int, peers: tuple[PeerInfo, ...], *, addresses: bool = False) -> str:
    names = ", ".join(f"{p.nick} ({p.addr})" if addresses else p.nick for p in peers)
    more = online - len(peers)
    if more > 0:
        names += f" and {more} more"
    return names


def _rooms(event: Rooms) -> str:
    count = len(event.rooms)
    listed = ", ".join(f"#{r.name} ({r.online} online)" for r in event.rooms)
    return f"{count} room{'' if count == 1 else 's'}: {listed}"


def _joined(event: Joined) -> list[tuple[Tag, str]]:
    return [(Tag.INFO, f"{event.nick} joined{_in(event.room)} ({event.online} online)")]


def _left(event: Left) -> list[tuple[Tag, str]]:
    why = f": {event.reason}" if event.reason else ""
    return [(Tag.INFO, f"{event.nick} left{_in(event.room)}{why} ({event.online} online)")]


def _renamed(event: Renamed) -> list[tuple[Tag, str]]:
    return [(Tag.INFO, f"{event.old} is now known as {event.new}")]


def _roster(event: Roster) -> list[tuple[Tag, str]]:
    where = f"#{event.room}: " if event.room else ""
    listed = _names(event.online, event.peers, addresses=True)
    return [(Tag.INFO, f"{where}{event.online} online: {listed}")]


def _entered(event: Entered) -> list[tuple[Tag, str]]:
    names = _names(event.online, event.peers)
    return [(Tag.INFO, f"You are now in #{event.room}: {event.online} online: {names}")]


def _room_list(event: Rooms) -> list[tuple[Tag, str]]:
    return [(Tag.INFO, _rooms(event))]


def _info(event: Info) -> list[tuple[Tag, str]]:
    return [(Tag.INFO, line) for line in event.text.split("\n")]


def _error(event: Error) -> list[tuple[Tag, str]]:
    return [(Tag.ERROR, event.message)]


def _welcome(event: Welcome) -> list[tuple[Tag, str]]:
    names = _names(event.online, event.peers)
    where = f" in #{event.room}" if event.room else ""
    who = event.nick if event.nick == event.addr else f"{event.nick} ({event.addr})"
    text = f"You are {who}{where}; {event.online} online: {names}"
    return [(Tag.INFO, text)]


#: How each kind of server event but a message is shown (the event types are final).
_DESCRIBE: dict[type[Event], Callable[[Any], list[tuple[Tag, str]]]] = {
    Joined: _joined,
    Left: _left,
    Renamed: _renamed,
    Roster: _roster,
    Entered: _entered,
    Rooms: _room_list,
    Info: _info,
    Error: _error,
    Welcome: _welcome,
}


def describe(event: Event, *, timestamps: bool = False) -> list[tuple[Tag, str]]:
    """The lines showing ``event``: one per event, except multi-line server notices.

    With ``timestamps``, a message starts with its server time in local ``HH:MM``.
    Keepalive frames (ping, pong) show nothing, nor does a bye: the run ends
    on it, and its reason is the run's final ``[ERROR]`` line (see
    :func:`peerchat_client.actions.pump_events`).
    """
    if isinstance(event, Message):
        text = message_text(event)
        if timestamps:
            text = f"{local_clock(event.ts)} {text}"
        return [(Tag.HISTORY if event.history else Tag.RECEIVED, text)]
    show = _DESCRIBE.get(type(event))
    return show(event) if show is not None else []


def _nobody() -> str | None:
    return None


@dataclass(slots=True)
class Display:
    """How messages look, shared by the consoles of one run (so ``/timestamps``
    changes stdout and stderr alike)."""

    #: Local ``HH:MM`` before each message.
    timestamps: bool = False
    #: Ring the terminal bell for a message that names us (interactive mode only).
    bell: bool = False
    #: Our current nickname, for mentions (the session keeps it through renames).
    me: Callable[[], str | None] = field(default=_nobody)


class EventPrinter(Protocol):
    """Where received events go: a :class:`Console` or a :class:`JsonPrinter`."""

    def show(self, event: Event) -> None: ...


class Console:
    """Writes tagged lines to a stream.

    With no stream given it writes to whatever ``sys.stdout`` is at the time of
    each write, so lines printed while prompt_toolkit's ``patch_stdout`` is active
    go through its proxy and appear above the line being typed.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        display: Display | None = None,
    ) -> None:
        self._stream = stream
        self.color = color_wanted(self.stream) if color is None else color
        self.display = display if display is not None else Display()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def line(self, tag: Tag, text: str, *, style: str = "", bell: bool = False) -> None:
        """Write ``[TAG] text``; ``style`` colours the text, ``bell`` rings with it."""
        stream = self.stream
        ring = BELL if bell else ""
        # One write per line: prompt_toolkit's stdout proxy prints it whole above the prompt.
        stream.write(paint(tag, sanitize(text), color=self.color, style=style) + ring + "\n")
        stream.flush()

    def success(self, text: str) -> None:
        self.line(Tag.SUCCESS, text)

    def info(self, text: str) -> None:
        self.line(Tag.INFO, text)

    def wait(self, text: str) -> None:
        self.line(Tag.WAIT, text)

    def sent(self, text: str) -> None:
        self.line(Tag.SENT, text)

    def error(self, text: str) -> None:
        self.line(Tag.ERROR, text)

    def warning(self, text: str) -> None:
        self.line(Tag.WARNING, text)

    def said(self, say: Say, nick: str | None) -> None:
        """``[SENT] 14:02 hi``: what we sent, timed now (the server does not echo it)."""
        text = said_text(say, nick)
        if self.display.timestamps:
            text = f"{local_clock(now_ms())} {text}"
        self.line(Tag.SENT, text)

    def show(self, event: Event) -> None:
        style = ""
        bell = False
        if isinstance(event, Message):
            if event.history:
                style = DIMMED
            elif mentions(event, self.display.me()):
                style = HIGHLIGHT
                bell = self.display.bell
        for tag, text in describe(event, timestamps=self.display.timestamps):
            self.line(tag, text, style=style, bell=bell)
            bell = False  # once per event

    def prompt(self, nick: str | None = None, room: str | None = None) -> str:
        """The input prompt: ``[INPUT] alice@#lobby - Enter your message (or 'q' to quit): ``."""
        who = (nick or "") + (f"@#{room}" if room else "")
        return paint(Tag.INPUT, f"{who} - {PROMPT_TEXT}" if who else PROMPT_TEXT, color=self.color)


class JsonPrinter:
    """One JSON object per line per received event (``--json``), for bots and tests."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def show(self, event: Event) -> None:
        obj = to_wire(event)
        obj.pop("session", None)  # the welcome's session secret stays out of logs
        self._stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._stream.flush()
