"""peerchat's terminal client: interactive chat in a terminal, or a scripting mode for pipes."""

from __future__ import annotations

__version__ = "0.1.0"
