"""A real ``peerchat-client`` on a pseudo-terminal: keystrokes in, screen text out."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import sys
import termios

from .harness import REPO, WAIT, client_env, strip_ansi


class PtyClient:
    """The client with stdin, stdout and stderr on a pty, as in a terminal emulator."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        self.raw = ""
        self.closed = False
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._on_readable)

    @classmethod
    async def start(cls, *args: str) -> PtyClient:
        master, slave = os.openpty()
        # A real size: prompt_toolkit lays the prompt out within it.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = client_env(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "peerchat_client", *args,
                stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO,
                start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return cls(proc, master)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave end is closed, the client is gone
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw += data.decode("utf-8", "replace")
        self._changed.set()

    @property
    def text(self) -> str:
        """What was written to the terminal, escape sequences removed."""
        return strip_ansi(self.raw).replace("\r", "")

    async def wait_for(self, needle: str, *, after: int = 0) -> int:
        """Wait until ``needle`` shows up past offset ``after`` of :attr:`text`; its end."""

        async def shown() -> int:
            while True:  # one turn per output chunk; bounded by the deadline below
                at = self.text.find(needle, after)
                if at >= 0:
                    return at + len(needle)
                if self.closed:
                    raise AssertionError(f"terminal closed; screen was: {self.text!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(shown(), WAIT)
        except TimeoutError:
            raise AssertionError(f"{needle!r} never shown; screen was: {self.text!r}") from None

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def wait(self) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"client did not exit; screen was: {self.text!r}") from None

    async def __aenter__(self) -> PtyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), WAIT)
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
