"""The parts of a chat both modes share: acting on a line, printing what arrives."""

from __future__ import annotations

import asyncio

from peerchat_protocol import Bye, Say

from .commands import Complain, Leave, Send, SetTimestamps, ShowHelp
from .console import Console, EventPrinter
from .errors import ServerGone
from .link import Link, NotSent


def gone_reason(event: Bye) -> str:
    return f"The server closed the connection: {event.reason}"


async def pump_events(session: Link, printer: EventPrinter) -> str:
    """Print every event until the connection ends; return why it ended."""
    while True:  # one turn per event: ends with the connection
        try:
            event = await session.receive()
        except ServerGone as exc:
            return exc.message
        printer.show(event)
        if isinstance(event, Bye):
            return gone_reason(event)


async def stop(task: asyncio.Task[str]) -> None:
    """Cancel the receiving task, if it still runs, and wait until it has stopped."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})


async def leave(session: Link, receiver: asyncio.Task[str], reason: str | None = None) -> int:
    """Stop receiving, say goodbye to the server: a clean end, exit status 0."""
    await stop(receiver)
    await session.quit(reason)
    return 0


async def fail(session: Link, console: Console, reason: str) -> int:
    """The connection ended under us: one ``[ERROR]`` line with why, exit status 1."""
    console.error(reason)
    await session.close()
    return 1


async def perform(
    session: Link,
    console: Console,
    action: Send | Complain | ShowHelp | SetTimestamps,
    help_lines: tuple[str, ...] = (),
) -> None:
    """Carry out a line's action; ``[SENT] ...`` for a message. May raise ServerGone.

    ``help_lines`` are what ``/help`` shows (they differ by mode).
    """
    if isinstance(action, Complain):
        console.error(action.message)
        return
    if isinstance(action, ShowHelp):
        for line in help_lines:
            console.info(line)
        return
    if isinstance(action, SetTimestamps):
        console.display.timestamps = action.on
        console.info(f"Timestamps are {'on' if action.on else 'off'}.")
        return
    problem = session.too_long(action.event)
    if problem is not None:
        console.error(problem)
        return
    try:
        sent = await session.send(action.event)
    except NotSent as exc:
        console.error(exc.message)
        return
    if not sent:
        what = f": {action.event.text}" if isinstance(action.event, Say) else ""
        console.wait(f"Not connected; will be sent once reconnected{what}")
    elif isinstance(action.event, Say):
        console.said(action.event, session.nick)


__all__ = ["Leave", "fail", "gone_reason", "leave", "perform", "pump_events", "stop"]
