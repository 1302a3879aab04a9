"""The server's console: the seed's tagged, coloured status lines."""

from __future__ import annotations

import os
import sys
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
    """Writes ``[TAG] text`` lines; text must already be sanitized."""

    def __init__(
        self, stream: TextIO | None = None, *, color: bool | None = None, quiet: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.color = colour_wanted(self.stream) if color is None else color
        self.quiet = quiet
        if self.color:
            just_fix_windows_console()

    def line(self, tag: str, text: str) -> None:
        if self.quiet and tag in TRAFFIC_TAGS:
            return
        if self.color:
            out = f"{TAG_COLOURS.get(tag, '')}[{tag}]{Style.RESET_ALL} {text}\n"
        else:
            out = f"[{tag}] {text}\n"
        try:
            self.stream.write(out)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken console must not take the relay down
