"""One run of the client: find the server, shake hands, then chat in the chosen mode."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import sys

from .config import ClientConfig
from .console import Console, EventPrinter, JsonPrinter
from .dial import connect, tls_context
from .errors import ClientError, ServerGone
from .interactive import run_interactive
from .link import Link
from .script import run_script
from .session import Session


async def establish(config: ClientConfig, status: Console, *, interactive: bool) -> Link:
    """Connect (waiting up to ``config.wait`` for the server), shake hands, and return
    the link that reconnects after a loss (when asked to, or by default interactively)."""
    label = config.server_label

    def waiting(reason: str) -> None:
        status.wait(f"No server at {label} yet ({reason}); trying for up to {config.wait:g} s...")

    tls = None
    if config.tls:
        tls = tls_context(config.ca_file, insecure=config.insecure)
        if config.insecure:
            status.warning(
                "--insecure: the server's certificate is not checked, so anyone in between "
                "could pose as the server. Use --ca-file outside a demo."
            )

    async def dial() -> Session:  # one attempt, for reconnecting: the link does the backoff
        return await connect(config.host, config.port, listen_port=config.listen_port, tls=tls)

    session = await connect(
        config.host,
        config.port,
        listen_port=config.listen_port,
        wait=config.wait,
        on_retry=waiting,
        tls=tls,
    )
    status.info(f"Server detected at {label}")
    try:
        welcome = await session.handshake(config.nick, config.password)
    except BaseException:
        await session.close()
        raise
    status.success(f"Connected to server at {label}")
    status.show(welcome)
    reconnect = interactive if config.reconnect is None else config.reconnect
    return Link(
        session,
        status,
        dial=dial,
        password=config.password,
        reconnect=reconnect,
        keepalive=config.keepalive,
    )


#: Goodbyes that mean the server wants (another) password.
PASSWORD_CODES = ("auth_required", "bad_password", "auth_timeout")
#: Times a person at a terminal is asked for the password before the client gives up.
PASSWORD_TRIES = 3


async def _establish_asking(config: ClientConfig, status: Console, *, interactive: bool) -> Link:
    """Connect; at a terminal, a server that wants a password gets it asked for, hidden
    (``getpass``: nothing is echoed), a few times at most."""
    for _ in range(PASSWORD_TRIES):
        try:
            return await establish(config, status, interactive=interactive)
        except ServerGone as exc:
            if not interactive or exc.code not in PASSWORD_CODES:
                raise
            status.error(exc.message)
            asked = await asyncio.to_thread(
                getpass.getpass, "Password (the server needs one; it is not shown): "
            )
            config = dataclasses.replace(config, password=asked)
    return await establish(config, status, interactive=interactive)


async def run(
    config: ClientConfig, status: Console, *, interactive: bool, stdin_fd: int = 0
) -> int:
    """The whole run; returns the exit status. Failures end as one ``[ERROR]`` line."""
    try:
        session = await _establish_asking(config, status, interactive=interactive)
    except ClientError as exc:
        status.error(exc.message)
        return exc.exit_code
    # Mentions are judged against our nickname as it is now, not as it was asked for.
    status.display.me = lambda: session.nick
    if interactive:
        return await run_interactive(session, status, config)
    printer: EventPrinter = (
        JsonPrinter(sys.stdout) if config.json else Console(sys.stdout, display=status.display)
    )
    if config.json and session.welcome is not None:
        printer.show(session.welcome)
    return await run_script(session, status, printer, config, stdin_fd)
