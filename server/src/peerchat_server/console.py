"""The server's console: the seed's tagged lines, as records of the ``peerchat`` logger.

Each line is a :mod:`logging` record with a level and an event name (both from its tag
unless given) and, when the caller knows them, what it is about: the peer's address,
its nick and its room. It is written in one of two formats: ``text``, the seed's
``[TAG] text`` (coloured on a terminal), or ``json``, one object per line
(python-json-logger) for Docker's log drivers, Loki or ``jq``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from colorama import Fore, Style, just_fix_windows_console
from pythonjsonlogger.json import JsonFormatter

#: The logger every console line is a record of (it does not propagate: an app that
#: embeds the server adds its own handlers here, and the root's never see a line twice).
LOGGER = "peerchat"

# The seed's tags and their colours; tags not listed print uncoloured.
TAG_COLOURS: dict[str, str] = {
    "SUCCESS": Fore.GREEN,
    "NEW CONNECTION": Fore.CYAN,
    "ACTIVE CONNECTIONS": Fore.BLUE,
    "RECEIVED": Fore.YELLOW,
    "NICK": Fore.MAGENTA,
    "PRIVATE": Fore.YELLOW,
    "FLOOD": Fore.MAGENTA,
    "REFUSED": Fore.RED,
    "AUTH": Fore.GREEN,
    "AUTH FAILED": Fore.RED + Style.BRIGHT,
    "CONNECTION RESET": Fore.RED,
    "DISCONNECTED": Fore.RED,
    "DROPPED": Fore.RED + Style.BRIGHT,
    "CLOSING": Fore.RED,
    "PROTOCOL ERROR": Fore.MAGENTA,
    "ERROR": Fore.RED + Style.BRIGHT,
    "SHUTDOWN": Fore.YELLOW + Style.BRIGHT,
    "STOPPED": Fore.GREEN,
    "INFO": Fore.WHITE,
}

#: Each tag's level; tags not listed are INFO (the seed shows them all). A peer turned
#: away, slowed down, dropped or misbehaving is a WARNING, and so is trouble with the
#: replicas' bus; a failure of our own is an ERROR.
TAG_LEVELS: dict[str, int] = {
    "FLOOD": logging.WARNING,
    "REFUSED": logging.WARNING,
    "AUTH FAILED": logging.WARNING,
    "DROPPED": logging.WARNING,
    "PROTOCOL ERROR": logging.WARNING,
    "BUS": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}

#: ``--log-level``'s choices.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: Lines a background console may hold for a slow terminal before it drops some
#: (and then says how many).
QUEUE_LINES = 10_000

#: Tags of per-message lines, hidden by ``--quiet``.
TRAFFIC_TAGS = frozenset({"RECEIVED", "PRIVATE"})


def event_name(tag: str) -> str:
    """A tag's event name: ``NEW CONNECTION`` is ``new_connection``."""
    return "_".join(tag.lower().split())


def colour_wanted(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """Colour on a terminal, unless NO_COLOR says no; FORCE_COLOR forces it elsewhere.

    NO_COLOR (https://no-color.org) wins over FORCE_COLOR, as in CPython's own
    colour handling: an empty value counts as unset for both.
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class Party(Protocol):
    """What a line can be about: a peer (the relay's ``Peer`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def addr(self) -> str: ...
    @property
    def authenticated(self) -> bool: ...
    @property
    def room(self) -> _Named: ...


def about(who: Party) -> dict[str, str]:
    """A peer's fields: its address; its nick once it has one (not its address); its
    room once it is in one (not while it has still to give the password)."""
    fields = {"peer": who.addr}
    if who.name != who.addr:
        fields["nick"] = who.name
    if who.authenticated:
        fields["room"] = who.room.name
    return fields


class Tagged(logging.Formatter):
    """The seed's ``[TAG] text``, the tag coloured or not; no time (as the seed)."""

    def __init__(self, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        tag = getattr(record, "tag", record.levelname)  # (another module's record)
        if self.color:
            return f"{TAG_COLOURS.get(tag, '')}[{tag}]{Style.RESET_ALL} {record.getMessage()}"
        return f"[{tag}] {record.getMessage()}"


class JsonLines(JsonFormatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601 in milliseconds), ``level``,
    ``event``, ``tag``, ``message`` (the text line's text), then the record's fields
    (``peer``, ``nick``, ``room``, ...), each only when the line knows it."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "event", "tag", "message"],
            rename_fields={"asctime": "time", "levelname": "level"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Writer(logging.Handler):
    """Writes formatted records to a stream, one a line.

    With ``background``, records go through a bounded queue to a writer thread (which
    formats them), so a stream that blocks (a pipe nobody reads, a stuck log driver)
    never blocks the caller; records past the queue's bound are counted and reported,
    not kept.
    """

    def __init__(self, stream: TextIO, *, background: bool = False) -> None:
        super().__init__()
        self.stream = stream
        self._queue: queue.Queue[logging.LogRecord | None] | None = None
        self._dropped = 0
        # Counted by the caller's thread, reported by the writer's: a lock, so that no
        # count is lost between the two (taken only when a line is dropped).
        self._dropped_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(QUEUE_LINES)
            self._thread = threading.Thread(target=self._drain, name="console", daemon=True)
            self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if self._queue is None:
            self._write(record)
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._dropped_lock:
                self._dropped += 1

    def _write(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken console must not take the relay down

    def _drain(self) -> None:
        assert self._queue is not None
        while (record := self._queue.get()) is not None:
            if self._dropped:
                with self._dropped_lock:
                    dropped, self._dropped = self._dropped, 0
                self._write(_dropped_record(dropped))
            self._write(record)

    def stop(self, timeout: float) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop."""
        if self._queue is None or self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


def _dropped_record(dropped: int) -> logging.LogRecord:
    text = f"{dropped} console lines were dropped: the console was too slow."
    record = logging.LogRecord(LOGGER, logging.WARNING, __file__, 0, text, None, None)
    record.__dict__.update(tag="WARNING", event="lines_dropped", dropped=dropped)
    return record


class Console:
    """Says what happens, as ``[TAG] text`` lines; text must already be sanitized.

    Every line is a record of ``logger`` (by default the ``peerchat`` logger, whose
    console handler is the newest Console's), at the tag's level; ``level`` is the
    least one written. With ``background``, a thread writes (see :class:`Writer`).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        quiet: bool = False,
        background: bool = False,
        log_format: str = "text",
        level: int = logging.INFO,
        log_messages: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        json = log_format == "json"
        self.color = not json and (colour_wanted(self.stream) if color is None else color)
        self.quiet = quiet
        #: Whether chat text is written (``--no-log-messages``: only its length).
        self.log_messages = log_messages
        if self.color:
            just_fix_windows_console()
        self.writer = Writer(self.stream, background=background)
        self.writer.setFormatter(JsonLines() if json else Tagged(self.color))
        self.logger = logging.getLogger(LOGGER) if logger is None else logger
        self.logger.propagate = False
        self.logger.setLevel(level)
        for old in [h for h in self.logger.handlers if isinstance(h, Writer)]:
            self.logger.removeHandler(old)  # (one console a logger: the newest)
        self.logger.addHandler(self.writer)

    @property
    def traffic(self) -> bool:
        """Whether per-message lines are written (not ``--quiet``, nor a level above)."""
        return not self.quiet and self.logger.isEnabledFor(logging.INFO)

    def line(
        self,
        tag: str,
        text: str,
        /,
        *,
        who: Party | None = None,
        event: str | None = None,
        level: int | None = None,
        **fields: Any,
    ) -> None:
        """``[tag] text``; ``who``: the peer it is about; ``fields``: more to know in
        JSON (a field given as None is left out)."""
        if self.quiet and tag in TRAFFIC_TAGS:
            return
        level = TAG_LEVELS.get(tag, logging.INFO) if level is None else level
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        extra: dict[str, Any] = {"tag": tag, "event": event or event_name(tag)}
        if who is not None:
            extra.update(about(who))
        extra.update((key, value) for key, value in fields.items() if value is not None)
        # makeRecord, not logger.log: no walk up the stack for a caller nobody prints.
        record = logger.makeRecord(logger.name, level, "", 0, text, (), None, extra=extra)
        logger.handle(record)

    def said(self, head: str, shown: str, chars: int, **fields: Any) -> None:
        """A ``[RECEIVED]`` line, ``head: shown`` (``shown``: the chat text as logged,
        of ``chars`` characters); with ``--no-log-messages``, its length instead."""
        if self.log_messages:
            self.line("RECEIVED", f"{head}: {shown}", text=shown, chars=chars, **fields)
        else:
            self.line("RECEIVED", f"{head}: {chars} characters.", chars=chars, **fields)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop."""
        self.writer.stop(timeout)
