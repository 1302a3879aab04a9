"""The web side of the WebSocket port: the chat page, and who may open the WebSocket.

The port answers plain HTTP GETs with the three files of the page (shipped in the
package, read once) and turns a WebSocket handshake at ``/ws`` into a peer
(websocket.py). Every page goes with a strict Content-Security-Policy: scripts,
styles and everything else only from this server, and connections only to this
page's own WebSocket; so even a message that slipped past the page's text-only
rendering could run nothing.

**Origins.** A browser says which page opened a WebSocket (``Origin``); a page on
another site must not open one into this chat with the visitor's address (cross-site
WebSocket hijacking). Allowed: the page's own origin, when the address it was loaded
from is an IP address, ``localhost`` or the ``--ws-advertise`` host (so that a DNS name
rebound to this server by another site is not); and the origins of ``--ws-origins``.
A client that sends no ``Origin`` is no browser (a bot): it is let in, like ``nc``.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .config import ServerConfig

#: The WebSocket's path; the page connects there.
WS_PATH = "/ws"

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}

#: A Host header we are willing to repeat in a header: a name or an IP, and a port.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def _load() -> dict[str, bytes]:
    web = resources.files("peerchat_server") / "web"
    return {name: (web / name).read_bytes() for name, _ in set(_FILES.values())}


@dataclass
class Site:
    """The page's files and the origin rule, for one listener."""

    config: ServerConfig
    tls: bool = False
    files: dict[str, bytes] = field(default_factory=_load)

    def respond(self, request: Request) -> Response | None:
        """The answer to an HTTP request, or None for a WebSocket handshake to accept
        (the websockets library checks the handshake itself)."""
        hosts = request.headers.get_all("Host")
        host = hosts[0] if len(hosts) == 1 else ""
        if not _HOST.fullmatch(host):
            return plain_response(400, "Bad Request", "The request has no usable Host header.\n")
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return self._refusal(request.headers, host)
        found = _FILES.get(path)
        if found is None:
            return plain_response(404, "Not Found", f"Nothing at {path}: the chat is at /.\n")
        name, content_type = found
        return _response(200, "OK", self.files[name], content_type, self._policy(host))

    def _policy(self, host: str) -> str:
        socket = f"{'wss' if self.tls else 'ws'}://{host}{WS_PATH}"
        return (
            f"default-src 'self'; connect-src {socket}; img-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"
        )

    def _refusal(self, headers: Headers, host: str) -> Response | None:
        origins = headers.get_all("Origin")
        if len(origins) > 1:
            return plain_response(400, "Bad Request", "More than one Origin header.\n")
        origin = origins[0] if origins else None
        if origin is None or self.allows(origin, host):
            return None
        return plain_response(
            403,
            "Forbidden",
            f"The WebSocket may not be opened from {origin}: only from this server's own "
            "page (or the origins the server lists with --ws-origins).\n",
        )

    def allows(self, origin: str, host: str) -> bool:
        """Whether a page of ``origin``, loaded from ``host``, may open the WebSocket."""
        origin = origin.rstrip("/")
        if origin in self.config.ws_origins:
            return True
        own = f"{'https' if self.tls else 'http'}://{host}"
        return origin.lower() == own.lower() and self._trusted_host(host)

    def _trusted_host(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        advertised = self.config.ws_advertise.rsplit(":", 1)[0].strip("[]").lower()
        if name in ("localhost", advertised):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _response(status: int, reason: str, body: bytes, content_type: str, csp: str) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Content-Security-Policy", csp),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
        ]
    )
    return Response(status, reason, headers, body)


def plain_response(status: int, reason: str, text: str) -> Response:
    """A short text answer (an error), with a policy that allows nothing."""
    return _response(
        status, reason, text.encode(), "text/plain; charset=utf-8", "default-src 'none'"
    )
