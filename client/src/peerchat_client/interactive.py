"""Interactive mode: prompt_toolkit's async prompt with stdout patched.

Lines printed while the prompt is shown (``[RECEIVED] <alice> hi``, notices) go
through prompt_toolkit's stdout proxy, which erases the prompt, prints the line
and redraws the prompt with whatever was half typed: incoming messages never
break the input line. The prompt names our nick and room and is redrawn when
either changes; Tab completes (see :mod:`peerchat_client.completion`) and Up/Down
recall earlier lines.
"""

from __future__ import annotations

import asyncio

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import ANSI, AnyFormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from peerchat_protocol import Entered, Event, Renamed, Welcome

from .actions import fail, leave, perform, pump_events, stop
from .commands import Leave, help_lines, parse_line
from .completion import ChatCompleter, Known
from .config import ClientConfig
from .console import Console
from .errors import ClientError
from .link import Link

#: How long a prompt being torn down (server gone) may take to restore the terminal.
_PROMPT_TEARDOWN = 1.0


class _Screen:
    """Shows received events, learning names for completion, and redraws the prompt
    when our room or nick changes."""

    def __init__(self, console: Console, known: Known, prompt: PromptSession[str]) -> None:
        self.console = console
        self.known = known
        self.prompt = prompt

    def show(self, event: Event) -> None:
        self.known.learn(event)
        self.console.show(event)
        if isinstance(event, Entered | Renamed | Welcome):  # a welcome: reconnected
            self.prompt.app.invalidate()  # does nothing while no prompt is shown


async def _read_line(prompt: PromptSession[str], message: AnyFormattedText) -> str | None:
    """The next line typed, or ``None`` for Ctrl-D / Ctrl-C.

    The KeyboardInterrupt prompt_toolkit raises for Ctrl-C is caught here, inside
    the task: escaping a task, asyncio would re-raise it out of the event loop.
    """
    try:
        return await prompt.prompt_async(message)
    except (EOFError, KeyboardInterrupt):
        return None


async def _stop_prompt(prompt: PromptSession[str], task: asyncio.Task[str | None]) -> None:
    if prompt.app.is_running:
        prompt.app.exit(result="")
    else:
        task.cancel()
    await asyncio.wait({task}, timeout=_PROMPT_TEARDOWN)
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_PROMPT_TEARDOWN)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: the prompt's own ending is of no interest now


async def run_interactive(session: Link, console: Console, config: ClientConfig) -> int:
    """Chat until the user quits (exit status 0) or the server goes away (1)."""
    # raw=True: our tags carry colour codes; server text is already sanitized.
    with patch_stdout(raw=True):
        known = Known()
        if session.welcome is not None:
            known.learn(session.welcome)
        prompt: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            completer=ChatCompleter(known, lambda: session.nick),
            complete_while_typing=False,  # Tab completes, as in a shell or an IRC client
        )

        def message() -> AnyFormattedText:
            # Called at each redraw, so the prompt follows /join, /leave and /nick.
            text = console.prompt(session.nick, session.room)
            return ANSI(text) if console.color else text

        receiver = asyncio.create_task(pump_events(session, _Screen(console, known, prompt)))
        try:
            if config.delay > 0:
                console.wait(f"Waiting {config.delay:g} seconds before allowing message input...")
                await asyncio.wait({receiver}, timeout=config.delay)
            while not receiver.done():  # one turn per line typed
                typing = asyncio.create_task(_read_line(prompt, message))
                await asyncio.wait({typing, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if not typing.done():
                    await _stop_prompt(prompt, typing)
                    break
                line = typing.result()
                action = Leave() if line is None else parse_line(line)
                if action is None:
                    continue
                if isinstance(action, Leave):
                    console.info("Quitting...")
                    return await leave(session, receiver, action.reason)
                await perform(session, console, action, help_lines(interactive=True))
            reason = await receiver
        except ClientError as exc:
            reason = exc.message
        finally:
            await stop(receiver)
        return await fail(session, console, reason)
