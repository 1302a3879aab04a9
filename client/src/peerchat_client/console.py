"""Rendering what happens to tagged, optionally coloured lines: ``[RECEIVED] <alice> hi``.

The tags and their look are the seed client's (``[SUCCESS]``, ``[INFO]``, ``[WAIT]``,
``[INPUT]``, ``[SENT]``, ``[RECEIVED]``, ``[ERROR]``). Every piece of text shown here
that came from the server was sanitized by the protocol decoder; :func:`describe`
builds the lines, :class:`Console` writes them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol, TextIO

from colorama import Fore, Style

from peerchat_protocol import (
    Error,
    Event,
    Info,
    Joined,
    Left,
    Message,
    Renamed,
    Roster,
    Welcome,
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


_COLORS: dict[Tag, str] = {
    Tag.SUCCESS: Fore.GREEN,
    Tag.INFO: Fore.CYAN,
    Tag.WAIT: Fore.YELLOW,
    Tag.INPUT: Fore.BLUE,
    Tag.SENT: Fore.MAGENTA,
    Tag.RECEIVED: Fore.WHITE + Style.BRIGHT,
    Tag.ERROR: Fore.RED,
}

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


def paint(tag: Tag, text: str, *, color: bool) -> str:
    """``[TAG] text``, the tag coloured when ``color``."""
    if not color:
        return f"[{tag}] {text}"
    return f"{_COLORS[tag]}[{tag}]{Style.RESET_ALL} {text}"


def _names(event: Welcome | Roster) -> str:
    names = ", ".join(p.nick for p in event.peers)
    more = event.online - len(event.peers)
    if more > 0:
        names += f" and {more} more"
    return names


def describe(event: Event) -> list[tuple[Tag, str]]:
    """The lines showing ``event``: one per event, except multi-line server notices.

    Keepalive frames (ping, pong) show nothing, nor does a bye: the run ends
    on it, and its reason is the run's final ``[ERROR]`` line (see
    :func:`peerchat_client.actions.pump_events`).
    """
    if isinstance(event, Message):
        return [(Tag.RECEIVED, f"<{event.nick}> {event.text}")]
    if isinstance(event, Joined):
        return [(Tag.INFO, f"{event.nick} joined ({event.online} online)")]
    if isinstance(event, Left):
        why = f": {event.reason}" if event.reason else ""
        return [(Tag.INFO, f"{event.nick} left{why} ({event.online} online)")]
    if isinstance(event, Renamed):
        return [(Tag.INFO, f"{event.old} is now known as {event.new}")]
    if isinstance(event, Roster):
        listed = ", ".join(f"{p.nick} ({p.addr})" for p in event.peers)
        more = event.online - len(event.peers)
        if more > 0:
            listed += f" and {more} more"
        return [(Tag.INFO, f"{event.online} online: {listed}")]
    if isinstance(event, Info):
        return [(Tag.INFO, line) for line in event.text.split("\n")]
    if isinstance(event, Error):
        return [(Tag.ERROR, event.message)]
    if isinstance(event, Welcome):
        return [
            (
                Tag.INFO,
                f"You are {event.nick} ({event.addr}); {event.online} online: {_names(event)}",
            )
        ]
    return []


class EventPrinter(Protocol):
    """Where received events go: a :class:`Console` or a :class:`JsonPrinter`."""

    def show(self, event: Event) -> None: ...


class Console:
    """Writes tagged lines to a stream.

    With no stream given it writes to whatever ``sys.stdout`` is at the time of
    each write, so lines printed while prompt_toolkit's ``patch_stdout`` is active
    go through its proxy and appear above the line being typed.
    """

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self._stream = stream
        self.color = color_wanted(self.stream) if color is None else color

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def line(self, tag: Tag, text: str) -> None:
        stream = self.stream
        stream.write(paint(tag, sanitize(text), color=self.color) + "\n")
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

    def show(self, event: Event) -> None:
        for tag, text in describe(event):
            self.line(tag, text)

    def prompt(self) -> str:
        """The input prompt: ``[INPUT] Enter your message (or 'q' to quit): ``."""
        return paint(Tag.INPUT, PROMPT_TEXT, color=self.color)


class JsonPrinter:
    """One JSON object per line per received event (``--json``), for bots and tests."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def show(self, event: Event) -> None:
        self._stream.write(json.dumps(to_wire(event), ensure_ascii=False) + "\n")
        self._stream.flush()
