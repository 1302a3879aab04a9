"""Line framing with a size limit enforced before the newline arrives."""

from __future__ import annotations

from .errors import ErrorCode, RemoteProtocolError


class LineFramer:
    """Splits a byte stream into lines ending in ``\\n`` (a ``\\r`` before it is dropped).

    A line longer than ``max_line`` bytes is never returned, nor buffered past the
    limit: as soon as it is known to be too long, what was buffered is discarded,
    :meth:`next_line` raises one ``line_too_long`` error, and everything up to the
    next newline is skipped. The stream then carries on with the following line.

    Memory: once the complete lines are consumed, only the incomplete one is kept, in a
    buffer of its own size: a read of 256 KiB of lines leaves no 256 KiB behind on a
    connection that then goes quiet.
    """

    def __init__(self, max_line: int) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._buf = bytearray()
        self._start = 0  # first byte of the current (unreturned) line
        self._scan = 0  # bytes before this offset hold no newline
        self._skipping = False  # inside an over-long line, waiting for its newline
        self._overflow_pending = False  # an over-long line awaits its error report

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._start:
            # Compact once per feed, not once per line: O(n) for any number of lines.
            del self._buf[: self._start]
            self._scan -= self._start
            self._start = 0
        self._buf += data

    def next_line(self) -> bytes | None:
        """The next complete line without its ending, or ``None`` if none is complete.

        Raises :class:`RemoteProtocolError` (``line_too_long``, not fatal) once per
        over-long line.
        """
        while True:
            if self._overflow_pending:
                self._overflow_pending = False
                raise RemoteProtocolError(
                    ErrorCode.LINE_TOO_LONG,
                    f"line too long: the limit is {self.max_line} bytes; it was discarded",
                )
            newline = self._buf.find(b"\n", self._scan)
            if newline < 0:
                self._hold_partial()
                if self._overflow_pending:
                    continue
                return None
            line = bytes(self._buf[self._start : newline])
            self._start = self._scan = newline + 1
            if self._skipping:  # the tail of a line already reported as too long
                self._skipping = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                self._overflow_pending = True
                continue
            return line

    def peek_lines(self, limit: int) -> tuple[bytes, int]:
        """The next complete lines, at most ``limit``, as one block of bytes (each line
        with its ``\n``) and their count, without taking them (:meth:`skip` does).

        ``(b"", 0)`` while an over-long line is being reported or skipped: read on with
        :meth:`next_line`. The lines are as they came: their ``\r`` is still there,
        and so is any line over the limit (the caller checks, or reads line by line).
        """
        if self._skipping or self._overflow_pending or limit < 1:
            return b"", 0
        buf, start = self._buf, self._start
        end = buf.rfind(b"\n", self._scan)
        if end < 0:
            return b"", 0
        count = buf.count(b"\n", start, end + 1)
        if count > limit:
            end, count = start - 1, limit
            for _ in range(limit):  # bounded by limit
                end = buf.find(b"\n", end + 1)
        return bytes(buf[start : end + 1]), count

    def has_lines(self, n: int) -> bool:
        """Whether :meth:`peek_lines` would give at least ``n`` lines now (cheaply)."""
        if self._skipping or self._overflow_pending:
            return False
        at = self._start - 1
        for _ in range(n):  # bounded by n
            at = self._buf.find(b"\n", at + 1)
            if at < 0:
                return False
        return True

    def skip(self, size: int) -> None:
        """Take the first ``size`` bytes of what :meth:`peek_lines` gave (whole lines)."""
        self._start += size
        self._scan = max(self._scan, self._start)

    def _hold_partial(self) -> None:
        """Keep an incomplete line, unless it is already too long."""
        if self._skipping or self._partial_too_long():
            del self._buf[:]
            self._start = self._scan = 0
            if not self._skipping:
                self._skipping = True
                self._overflow_pending = True
            return
        if self._start:
            # Every complete line is consumed: keep only the incomplete one (at most
            # max_line + 1 bytes), in a buffer of its size, now rather than at the next
            # feed, which may be long in coming: the consumed lines (up to one 256 KiB
            # read) would stay until then. Each byte is copied here at most once (the
            # next copy starts after a later newline): O(n) in all.
            self._buf = self._buf[self._start :]
            self._start = 0
        self._scan = len(self._buf)

    def close(self) -> bytes | None:
        """At end of stream: the unterminated last line, if any (``None`` otherwise)."""
        if self._skipping:
            self._skipping = False
            self._buf.clear()
            self._start = self._scan = 0
            return None
        rest = bytes(self._buf[self._start :])
        self._buf.clear()
        self._start = self._scan = 0
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        return rest or None

    def has_line(self) -> bool:
        """Whether :meth:`next_line` may give something (a line, or an error) without
        more data. False means it surely gives ``None``; True may still give ``None``
        when all that waits is the tail of a line already reported as too long."""
        return (
            self._overflow_pending
            or self._buf.find(b"\n", self._scan) >= 0
            or (not self._skipping and self._partial_too_long())
        )

    def _partial_too_long(self) -> bool:
        """Whether the incomplete line held is already longer than the limit."""
        pending = len(self._buf) - self._start
        # One extra byte may be the '\r' of a line of exactly max_line bytes.
        return pending > self.max_line + 1 or (
            pending == self.max_line + 1 and self._buf[-1:] != b"\r"
        )

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line."""
        return len(self._buf) - self._start
