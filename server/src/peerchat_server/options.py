"""The server's options: each one also read from ``PEERCHAT_<NAME>``, as one table.

``peerchat-server --help`` lists them in this order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from peerchat_protocol import DEFAULT_MAX_LINE_BYTES

from . import config as defaults
from .console import LEVELS

PORT = click.IntRange(0, 65535)
F = TypeVar("F", bound=Callable[..., Any])


def setting(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """A ``click.option`` also read from ``PEERCHAT_<NAME>``, which its help names."""
    envvar = "PEERCHAT_" + decls[-1].lstrip("-").upper().replace("-", "_")
    attrs["help"] = f"{attrs['help']} [env: {envvar}]"
    return click.option(*decls, envvar=envvar, **attrs)


#: Every option, in the order --help shows them.
OPTIONS: list[Callable[[F], F]] = [
    setting(
        "--host",
        default=defaults.DEFAULT_HOST,
        show_default=True,
        help="Address to listen on; 0.0.0.0 for every interface.",
    ),
    setting(
        "--port",
        type=PORT,
        default=defaults.DEFAULT_PORT,
        show_default=True,
        help="Port to listen on (0: any free port). Asked for on a terminal when not given.",
    ),
    setting(
        "--max-line-bytes",
        type=click.IntRange(64),
        default=DEFAULT_MAX_LINE_BYTES,
        show_default=True,
        help="Longest line a peer may send; longer ones are refused with an error.",
    ),
    setting(
        "--max-send-buffer",
        type=click.IntRange(1024),
        default=defaults.DEFAULT_MAX_SEND_BUFFER,
        show_default=True,
        help="Bytes that may wait for a peer that is not reading before it is dropped.",
    ),
    setting(
        "--max-errors",
        type=click.IntRange(1),
        default=defaults.DEFAULT_MAX_ERRORS,
        show_default=True,
        help="Bad lines a peer may send before it is disconnected.",
    ),
    setting(
        "--shutdown-timeout",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_SHUTDOWN_TIMEOUT,
        show_default=True,
        help="Seconds to let peers take their goodbye on SIGTERM.",
    ),
    setting(
        "--flood-burst",
        type=click.IntRange(1),
        default=defaults.DEFAULT_FLOOD_BURST,
        show_default=True,
        help="Lines a peer may send at once before it is slowed down.",
    ),
    setting(
        "--flood-rate",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_FLOOD_RATE,
        show_default=True,
        help="Lines a second a peer may keep sending; more are delayed, never dropped "
        "(0: no limit).",
    ),
    setting(
        "--flood-kick-after",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_FLOOD_KICK_AFTER,
        show_default=True,
        help="Seconds a peer may stay over the rate before it is disconnected.",
    ),
    setting(
        "--address-flood-burst",
        type=click.IntRange(1),
        default=defaults.DEFAULT_ADDRESS_FLOOD_BURST,
        show_default=True,
        help="Lines all connections from one address may send at once before they are slowed.",
    ),
    setting(
        "--address-flood-rate",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_ADDRESS_FLOOD_RATE,
        show_default=True,
        help="Lines a second all connections from one address may keep sending (0: no limit).",
    ),
    setting(
        "--history",
        type=click.IntRange(0),
        default=defaults.DEFAULT_HISTORY_MESSAGES,
        show_default=True,
        help="Messages each room keeps for people who join later (0: none).",
    ),
    setting(
        "--history-bytes",
        type=click.IntRange(0),
        default=defaults.DEFAULT_HISTORY_BYTES,
        show_default=True,
        help="Most text a room's history may hold, in bytes of memory (1 to 4 a character).",
    ),
    setting(
        "--catch-up",
        type=click.IntRange(0),
        default=defaults.DEFAULT_CATCH_UP_MESSAGES,
        show_default=True,
        help="Messages each room keeps for clients that reconnect, to replay what they missed.",
    ),
    setting(
        "--catch-up-total-bytes",
        type=click.IntRange(0),
        default=defaults.DEFAULT_CATCH_UP_TOTAL_BYTES,
        show_default=True,
        help="Most text (bytes in memory) all rooms' logs may hold together; past it, the "
        "quietest room's oldest messages go (0: no total).",
    ),
    setting(
        "--resume-window",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_RESUME_WINDOW,
        show_default=True,
        help="Seconds a lost client may take to reconnect and get its name, room and "
        "missed messages back (0: no resuming).",
    ),
    setting(
        "--store",
        default="memory",
        show_default=True,
        help="Where history and sessions outlive a restart: memory (nowhere), or "
        "sqlite:///PATH (a file; sqlite:////data/peerchat.db in the image).",
    ),
    setting(
        "--retention",
        type=click.FloatRange(0),
        default=0,
        show_default=True,
        help="Days a message is kept at most (0: until --catch-up newer ones push it out).",
    ),
    setting(
        "--join-notices-up-to",
        type=click.IntRange(0),
        default=defaults.DEFAULT_JOIN_NOTICES_UP_TO,
        show_default=True,
        help="Rooms with more members than this announce no joins and leaves.",
    ),
    setting(
        "--max-connections",
        type=click.IntRange(0),
        default=defaults.DEFAULT_MAX_CONNECTIONS,
        show_default=True,
        help="Connections at once; more are turned away with a notice (0: no limit).",
    ),
    setting(
        "--max-per-address",
        type=click.IntRange(0),
        default=defaults.DEFAULT_MAX_PER_ADDRESS,
        show_default=True,
        help="Connections at once from one address (0: no limit).",
    ),
    setting(
        "--connect-burst",
        type=click.IntRange(1),
        default=defaults.DEFAULT_CONNECT_BURST,
        show_default=True,
        help="New connections one address may open at once before it must slow down.",
    ),
    setting(
        "--connect-rate",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_CONNECT_RATE,
        show_default=True,
        help="New connections a second one address may keep opening; more are turned away "
        "(0: no limit).",
    ),
    setting(
        "--ipv4-prefix",
        type=click.IntRange(1, 32),
        default=defaults.DEFAULT_IPV4_PREFIX,
        show_default=True,
        help="IPv4 addresses in one network of this prefix length count as one address for "
        "the per-address limits.",
    ),
    setting(
        "--ipv6-prefix",
        type=click.IntRange(1, 128),
        default=defaults.DEFAULT_IPV6_PREFIX,
        show_default=True,
        help="The same for IPv6 (64: one subscriber's network).",
    ),
    setting(
        "--rename-burst",
        type=click.IntRange(1),
        default=defaults.DEFAULT_RENAME_BURST,
        show_default=True,
        help="Renames one address may make at once.",
    ),
    setting(
        "--rename-rate",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_RENAME_RATE,
        show_default=True,
        help="Renames a second one address may keep making; more are refused (0: no limit).",
    ),
    setting(
        "--address-wait-rate",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_ADDRESS_WAIT_RATE,
        show_default=True,
        help="Times a second a room may keep waiting for slow readers from one address, "
        f"after {defaults.ADDRESS_WAIT_BURST} at once (0: no limit).",
    ),
    setting(
        "--ping-after",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_PING_AFTER,
        show_default=True,
        help="Seconds a rich peer may be quiet before it is pinged (0: never).",
    ),
    setting(
        "--ping-timeout",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_PING_TIMEOUT,
        show_default=True,
        help="Seconds to wait for its answer before dropping it.",
    ),
    setting(
        "--idle-timeout",
        type=click.FloatRange(0),
        default=defaults.DEFAULT_IDLE_TIMEOUT,
        show_default=True,
        help="Seconds a plain-text peer may send nothing before it is disconnected "
        "(0: never; TCP keepalive still finds dead ones).",
    ),
    setting(
        "--tls-cert",
        type=click.Path(dir_okay=False),
        default="",
        help="Serve TLS with this PEM certificate (chain); needs --tls-key.",
    ),
    setting(
        "--tls-key",
        type=click.Path(dir_okay=False),
        default="",
        help="The certificate's PEM private key.",
    ),
    setting(
        "--password",
        default="",
        show_default=False,
        help="A password peers must give (rich clients in their hello, nc users with /pass).",
    ),
    setting(
        "--password-file",
        type=click.Path(dir_okay=False),
        help="Read the password from this file's first line (Docker/compose secrets).",
    ),
    setting(
        "--auth-timeout",
        type=click.FloatRange(0, min_open=True),
        default=defaults.DEFAULT_AUTH_TIMEOUT,
        show_default=True,
        help="Seconds a peer has to give the password.",
    ),
    setting(
        "--auth-failures",
        type=click.IntRange(0),
        default=defaults.DEFAULT_AUTH_FAILURES,
        show_default=True,
        help="Wrong passwords from one address before its connections are refused for "
        "--auth-lockout seconds; each one before that doubles its wait (0: no limit).",
    ),
    setting(
        "--auth-lockout",
        type=click.FloatRange(0, min_open=True),
        default=defaults.DEFAULT_AUTH_LOCKOUT,
        show_default=True,
        help="Seconds an address that gave too many wrong passwords is refused.",
    ),
    setting(
        "--max-sessions-per-address",
        type=click.IntRange(0),
        default=defaults.DEFAULT_MAX_SESSIONS_PER_ADDRESS,
        show_default=True,
        help="Lost sessions from one address kept for resuming; past it, its oldest goes "
        "(0: no limit but --max-connections).",
    ),
    setting(
        "--advertise",
        default="",
        metavar="HOST:PORT",
        help="Where users reach this server, when that differs from where it listens (a port "
        "published by Docker); printed at start.",
    ),
    setting(
        "--ws-port",
        type=PORT,
        default=None,
        help="Also serve browsers and WebSocket peers on this port: the web chat page at / "
        "and the WebSocket at /ws (0: any free port). Unset: no WebSocket listener.",
    ),
    setting(
        "--ws-origins",
        default="",
        metavar="ORIGIN[,ORIGIN...]",
        help="Web pages (besides the server's own) whose scripts may open the WebSocket, "
        "e.g. https://chat.example.com. A browser's other origins are refused.",
    ),
    setting(
        "--ws-advertise",
        default="",
        metavar="HOST:PORT",
        help="Where users reach the web chat, when that differs from where it listens; "
        "printed at start, and its host is the page's own origin.",
    ),
    setting(
        "--irc-port",
        type=PORT,
        default=None,
        help="Also serve IRC clients (irssi, WeeChat, bots) on this port, in the same "
        "rooms: #lobby is the room lobby (0: any free port). Unset: no IRC listener.",
    ),
    setting(
        "--irc-advertise",
        default="",
        metavar="HOST:PORT",
        help="Where IRC clients reach this server, when that differs from where it "
        "listens; printed at start.",
    ),
    setting(
        "--metrics-port",
        type=PORT,
        default=None,
        help="Serve Prometheus metrics at /metrics and a liveness check at /healthz on "
        "this port (0: any free port). Unset: none.",
    ),
    setting(
        "--bus",
        default="",
        metavar="URL",
        help="Share the chat with other replicas through this Redis (pub/sub, a channel "
        "per room): redis://HOST:PORT[/DB], or redis-cluster://HOST:PORT[,HOST:PORT...] "
        "for a Redis Cluster (sharded pub/sub); needs peerchat-server[redis]. Unset: this "
        "server alone.",
    ),
    setting(
        "-q",
        "--quiet",
        is_flag=True,
        help="Hide the per-message [RECEIVED] lines (for heavy traffic).",
    ),
    setting(
        "--log-format",
        type=click.Choice(["text", "json"], case_sensitive=False),
        default="text",
        show_default=True,
        help="The seed's [TAG] lines, or one JSON object a line (time, level, event, peer, "
        "nick, room) for Docker's log drivers, Loki or jq.",
    ),
    setting(
        "--log-level",
        type=click.Choice(list(LEVELS), case_sensitive=False),
        default="info",
        show_default=True,
        help="Least important lines written: warning leaves out arrivals, departures and "
        "messages, keeping refusals, drops, floods and errors.",
    ),
    setting(
        "--no-log-messages",
        is_flag=True,
        help="Keep chat text out of the log: [RECEIVED] lines say who, where and how many "
        "characters.",
    ),
]


def server_options(command: F) -> F:
    """Decorate ``command`` with every option of :data:`OPTIONS`."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command
