"""The server's console: the seed's tagged, coloured status lines."""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import TextIO

from colorama import Fore, Style, just_fix_windows_console

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

#: Lines a background console may hold for a slow terminal before it drops some
#: (and then says how many).
QUEUE_LINES = 10_000

#: Tags of per-message lines, hidden by ``--quiet``.
TRAFFIC_TAGS = frozenset({"RECEIVED", "PRIVATE"})


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


class Console:
    """Writes ``[TAG] text`` lines; text must already be sanitized.

    With ``background``, lines go through a bounded queue to a writer thread, so a
    console that blocks (a pipe nobody reads, a stuck log driver) never blocks the
    caller; lines past the queue's bound are counted and reported, not kept.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: bool | None = None,
        quiet: bool = False,
        background: bool = False,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.color = colour_wanted(self.stream) if color is None else color
        self.quiet = quiet
        if self.color:
            just_fix_windows_console()
        self._queue: queue.Queue[str | None] | None = None
        self._dropped = 0
        # Counted by the caller's thread, reported by the writer's: a lock, so that no
        # count is lost between the two (taken only when a line is dropped).
        self._dropped_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(QUEUE_LINES)
            self._writer = threading.Thread(target=self._drain, name="console", daemon=True)
            self._writer.start()

    def line(self, tag: str, text: str) -> None:
        if self.quiet and tag in TRAFFIC_TAGS:
            return
        if self.color:
            out = f"{TAG_COLOURS.get(tag, '')}[{tag}]{Style.RESET_ALL} {text}\n"
        else:
            out = f"[{tag}] {text}\n"
        if self._queue is None:
            self._write(out)
            return
        try:
            self._queue.put_nowait(out)
        except queue.Full:
            with self._dropped_lock:
                self._dropped += 1

    def _write(self, out: str) -> None:
        try:
            self.stream.write(out)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken console must not take the relay down

    def _drain(self) -> None:
        assert self._queue is not None
        while (out := self._queue.get()) is not None:
            if self._dropped:
                with self._dropped_lock:
                    dropped, self._dropped = self._dropped, 0
                self._write(
                    f"[WARNING] {dropped} console lines were dropped: the console was too slow.\n"
                )
            self._write(out)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop."""
        if self._queue is None or self._writer is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._writer.join(timeout)
