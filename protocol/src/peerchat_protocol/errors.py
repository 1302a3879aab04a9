"""The two kinds of protocol error, and the codes they carry on the wire."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable error codes, sent as the ``code`` of an ``error`` frame."""

    LINE_TOO_LONG = "line_too_long"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNEXPECTED = "unexpected"
    UNKNOWN_COMMAND = "unknown_command"
    BAD_COMMAND = "bad_command"
    INVALID_NICK = "invalid_nick"
    NICK_TAKEN = "nick_taken"
    NO_SUCH_NICK = "no_such_nick"
    INVALID_ROOM = "invalid_room"
    TOO_MANY_ERRORS = "too_many_errors"
    FLOODING = "flooding"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    PING_TIMEOUT = "ping_timeout"
    IDLE = "idle"
    AUTH_REQUIRED = "auth_required"
    BAD_PASSWORD = "bad_password"
    AUTH_TIMEOUT = "auth_timeout"
    SLOW_CONSUMER = "slow_consumer"
    SHUTDOWN = "shutdown"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """Base class: a protocol rule was broken.

    ``fatal`` tells the I/O layer that the connection cannot go on and must be
    closed after the error is reported; otherwise only the offending line is lost.
    """

    def __init__(self, code: ErrorCode, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r}, fatal={self.fatal})"


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""
