"""Test plumbing for the client: a real server in-process, client processes, raw peers.

Every wait has a deadline (WAIT); nothing sleeps to wait for something.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

# The same in-process server the server's own tests use (flood control and the
# per-address limit off: these tests pipe bursts no person types).
from ..server.peers import running_server as running_server

#: Longest any single awaited thing may take before the test fails.
WAIT = 15.0
T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one test coroutine in a fresh loop, failing it if it outlives ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the system picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERCHAT_")}
    env.pop("FORCE_COLOR", None)
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Lines:
    """Lines arriving from a stream, kept in full, awaitable by content."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = asyncio.Event()

    def add(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def wait_for(self, predicate: Callable[[str], bool], count: int = 1) -> list[str]:
        """The first ``count`` lines matching ``predicate``, waiting up to WAIT for them."""

        async def matching() -> list[str]:
            while True:  # one turn per change; bounded by the deadline below
                found = [line for line in self.lines if predicate(line)]
                if len(found) >= count:
                    return found[:count]
                if self.closed:
                    raise AssertionError(f"stream ended; lines were: {self.lines!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(matching(), WAIT)
        except TimeoutError:
            raise AssertionError(f"timed out; lines were: {self.lines!r}") from None

    async def wait_text(self, needle: str, count: int = 1) -> list[str]:
        return await self.wait_for(lambda line: needle in line, count)


async def _pump(stream: asyncio.StreamReader, sink: Lines) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            break
        sink.add(raw.decode("utf-8", "replace").rstrip("\r\n"))
    sink.close()


class ClientProcess:
    """A real ``peerchat-client`` (``python -m peerchat_client``) with piped stdio."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = Lines()
        self.stderr = Lines()
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._pumps = [
            asyncio.create_task(_pump(proc.stdout, self.stdout)),
            asyncio.create_task(_pump(proc.stderr, self.stderr)),
        ]

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "peerchat_client",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env if env is not None else client_env(),
            cwd=REPO,
        )
        return cls(proc)

    async def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def wait(self) -> int:
        """The exit status, after all output has been read."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), WAIT)
            await asyncio.wait_for(asyncio.gather(*self._pumps), WAIT)
        except TimeoutError:
            self.kill()
            raise AssertionError(
                f"client did not exit; stdout={self.stdout.lines!r} stderr={self.stderr.lines!r}"
            ) from None
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def __aenter__(self) -> ClientProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.kill()
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            await asyncio.wait_for(self.proc.wait(), WAIT)
        for pump in self._pumps:
            pump.cancel()
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()


class RawPeer:
    """An ``nc``-style peer: plain text lines over a raw socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines = Lines()
        self._pump = asyncio.create_task(_pump(reader, self.lines))

    @classmethod
    async def connect(cls, port: int) -> RawPeer:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        return cls(reader, writer)

    async def say(self, text: str) -> None:
        self.writer.write(f"{text}\n".encode())
        await self.writer.drain()

    async def close(self) -> None:
        self._pump.cancel()
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)


async def within(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
