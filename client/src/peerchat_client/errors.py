"""How the client fails: one ``[ERROR]`` line and an exit status, never a traceback.

Every failure of finding, dialing or talking to the server surfaces as a
:class:`ClientError` subclass carrying the exit status and a one-line reason;
:func:`describe_os_error` words what the operating system said.
"""

from __future__ import annotations

import os
import socket


class ClientError(Exception):
    """A failure that ends the run with one ``[ERROR]`` line and ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ListenPortTaken(ClientError):
    """The chosen local port cannot be used (exit status 2, like a bad option)."""

    exit_code = 2


class ServerUnavailable(ClientError):
    """No server answered within the wait budget."""


class ServerGone(ClientError):
    """The connection ended: shutdown notice, reset, end of stream.

    ``code`` is the code of the server's ``bye`` or refusal, when it gave one.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def describe_os_error(exc: BaseException) -> str:
    """A short, lower-case reason for a failed connection attempt."""
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
