"""Scripting mode (stdin is not a terminal): send every line, print every event.

Lines are read from stdin by a daemon thread using ``os.read`` on the file
descriptor, which works for pipes, files and sockets alike and never holds a
lock the interpreter needs at exit. Lines wait in a bounded queue until the
handshake is done, so nothing read before end of input is lost. After end of
input the client keeps receiving for ``--linger`` seconds, then quits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

from .actions import fail, leave, perform, pump_events, stop
from .commands import Leave, help_lines, parse_line
from .config import ClientConfig
from .console import Console, EventPrinter
from .errors import ClientError
from .link import Link

#: Lines read ahead of sending; the reader thread waits when the queue is full.
STDIN_QUEUE_LINES = 256
_READ_CHUNK = 64 * 1024


class StdinLines:
    """Lines of a file descriptor, as an asyncio queue fed by a daemon thread.

    :meth:`get` returns each line as text (without its ending; the last line
    need not end in a newline), then ``None`` at end of input.
    """

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(STDIN_QUEUE_LINES)
        self._thread = threading.Thread(target=self._run, name="stdin-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def get(self) -> str | None:
        return await self._queue.get()

    def _put(self, line: str | None) -> bool:
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(line), self._loop)
            future.result()
        except (RuntimeError, concurrent.futures.CancelledError):  # the loop is gone
            return False
        return True

    def _run(self) -> None:
        pending = b""
        while True:  # one turn per chunk read; ends at end of input
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if not self._put(line.decode("utf-8", "replace")):
                    return
        if pending and not self._put(pending.decode("utf-8", "replace")):
            return
        self._put(None)


async def run_script(
    session: Link,
    status: Console,
    printer: EventPrinter,
    config: ClientConfig,
    stdin_fd: int = 0,
) -> int:
    """Send stdin, print events; exit status 0 at end of input, 1 if the server goes."""
    lines = StdinLines(stdin_fd, asyncio.get_running_loop())
    lines.start()
    receiver = asyncio.create_task(pump_events(session, printer))
    try:
        if config.delay > 0:
            status.wait(f"Waiting {config.delay:g} seconds before allowing message input...")
            await asyncio.wait({receiver}, timeout=config.delay)
        while not receiver.done():  # one turn per line of input
            reading = asyncio.create_task(lines.get())
            await asyncio.wait({reading, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                break
            line = reading.result()
            if line is None:  # end of input: linger, then leave
                status.info(f"End of input: still receiving for up to {config.linger:g} s")
                await asyncio.wait({receiver}, timeout=config.linger)
                if receiver.done():
                    status.info(receiver.result())
                    await session.close()
                    return 0
                return await leave(session, receiver)
            action = parse_line(line, bare_q_quits=False)
            if action is None:
                continue
            if isinstance(action, Leave):
                return await leave(session, receiver, action.reason)
            await perform(session, status, action, help_lines(interactive=False))
        reason = await receiver
    except ClientError as exc:
        reason = exc.message
    finally:
        await stop(receiver)
    return await fail(session, status, reason)
