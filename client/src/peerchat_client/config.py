"""What one run of the client was asked to do, and the defaults with their reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
#: The server's own default port, used when none is given and nobody can be asked.
DEFAULT_PORT = 8080

#: How long to keep looking for the server before giving up (seconds). A client
#: started beside its server (``docker compose up``) must not fail because the
#: server needed a second or two to bind; ten seconds covers a cold container
#: start, and a user who mistyped the port still hears about it quickly.
DEFAULT_WAIT = 10.0

#: Seconds to keep receiving after the end of stdin in scripting mode, so that
#: answers to the last lines sent (a /who, replies from bots) are still printed.
DEFAULT_LINGER = 2.0

#: The seed made everyone wait ten seconds before typing; ours waits only when asked.
DEFAULT_DELAY = 0.0


#: Keepalive: after this many quiet seconds the client pings the server, and after
#: twice as many with nothing at all from it, calls the connection dead and
#: reconnects. A cut network cable sends no reset; TCP alone would notice only after
#: minutes of retransmissions (or never, for a connection that only receives).
DEFAULT_KEEPALIVE = 15.0


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a run needs once options, environment and prompts are resolved."""

    port: int
    host: str = DEFAULT_HOST
    #: Local port our end of the connection is bound to; 0 lets the system choose.
    listen_port: int = 0
    #: The nickname to ask for; ``None`` lets the server choose one.
    nick: str | None = None
    wait: float = DEFAULT_WAIT
    delay: float = DEFAULT_DELAY
    linger: float = DEFAULT_LINGER
    #: Scripting mode prints one JSON object per received event.
    json: bool = False
    #: Local ``HH:MM`` before each message (interactive and plain scripting output).
    timestamps: bool = True
    #: Ring the terminal bell when a message names us (interactive mode only).
    bell: bool = True
    #: TLS: on, with the CA to check the server against (default: the system's), or
    #: with no check at all (a self-signed demo certificate).
    tls: bool = False
    ca_file: str | None = None
    insecure: bool = False
    #: The server's password, if it has one (sent in the hello only).
    password: str | None = field(default=None, repr=False)
    #: Reconnect after a lost connection (``None``: on in a terminal, off in scripts).
    reconnect: bool | None = None
    keepalive: float = DEFAULT_KEEPALIVE

    @property
    def server_label(self) -> str:
        return hostport(self.host, self.port)


def hostport(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
