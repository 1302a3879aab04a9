"""Starting, running and stopping the relay: the listening socket and signals."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import ssl

from .bus import RedisBus
from .config import ServerConfig
from .console import Console
from .irc import IrcSession
from .metrics import MetricsServer
from .notes import BUS_SCHEMES, safe_url
from .page import Site
from .persistence import StoreError, keep_pruning, make_store, restore, watch_sessions
from .redis_replication import RedisReplication
from .relay import Relay
from .replication import Alone, Replication
from .session import Session
from .sockets import format_addr
from .websocket import HANDSHAKE_TIMEOUT, WebSocketSession

SHUTDOWN_NOTICE = "The server is shutting down. Reconnect when it is back."


class StartupError(Exception):
    """The server could not start; the message says why and what to do."""


class ChatServer:
    """The relay behind a listening socket. ``start``, then ``stop`` (or ``serve``)."""

    def __init__(self, config: ServerConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console if console is not None else Console()
        self._store_error = ""  # a --store that cannot be: said when the server starts
        try:
            store = make_store(config, self.console.line)
        except StoreError as exc:
            self._store_error, store = str(exc), None
        self.relay = Relay(config, self.console, replication=self._replication, store=store)
        if self.relay.store.durable:
            self.relay.registry.book.on_change = watch_sessions(self.relay)
        self._server: asyncio.Server | None = None
        self._web: asyncio.Server | None = None  # --ws-port: the page and the WebSocket
        self._irc: asyncio.Server | None = None  # --irc-port
        self.metrics: MetricsServer | None = None  # --metrics-port
        self._watcher: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None  # --retention

    def _replication(self, relay: Relay) -> Replication:
        """With ``--bus``, the chat is shared through Redis; else this server is alone."""
        url = self.config.bus
        if not url:
            return Alone()
        keep = relay.rooms.keep
        # A room's log in Redis keeps what a replica that starts following it may need:
        # the history a newcomer gets, and the catch-up of one coming back.
        bus = RedisBus(url, log=self.console.line, stats=relay.stats,
                       keep=max(keep.history_messages, keep.catch_up_messages, 1))  # fmt: skip
        return RedisReplication(relay, bus, description=safe_url(url))

    def _tls_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        if not cfg.tls_cert and not cfg.tls_key:
            return None
        if not (cfg.tls_cert and cfg.tls_key):
            raise StartupError("TLS needs both --tls-cert and --tls-key.")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(
                f"Cannot use the TLS certificate {cfg.tls_cert!r} and key {cfg.tls_key!r}: "
                f"{getattr(exc, 'strerror', None) or exc}. Check both files (make tls-cert "
                "makes a pair for a demo)."
            ) from None
        return context

    async def start(self) -> None:
        """Put back what the store kept, then listen (StartupError if either fails)."""
        if self._store_error:
            raise StartupError(self._store_error)
        try:
            saved = restore(self.relay)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        store = self.relay.store
        if store.durable:
            kept = sum(len(room.messages) for room in saved.rooms)
            self.console.line(
                "INFO", f"History and sessions are kept in {store.description}: "
                f"{kept} messages in {len(saved.rooms)} rooms and {len(saved.sessions)} "
                "sessions were kept from before."
                + (" (The last run did not stop cleanly: its last moments may be lost.)"
                   if saved.unclean else ""),
            )  # fmt: skip
        if self.config.retention:
            self._pruner = asyncio.create_task(keep_pruning(self.relay))
        try:
            await self._listen()
        except BaseException:
            await self._close_store()
            raise

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        tls = self._tls_context()
        try:
            self._server = await loop.create_server(
                lambda: Session(self.relay),
                cfg.host,
                cfg.port,
                reuse_address=True,
                backlog=1024,
                ssl=tls,
            )
        except socket.gaierror as exc:
            raise StartupError(
                f"Cannot listen on {cfg.host!r}: unknown host ({exc.strerror}). "
                "Use an IP address such as 127.0.0.1 or 0.0.0.0."
            ) from None
        except OSError as exc:
            raise StartupError(self._explain(exc)) from None
        secure = " (TLS)" if tls is not None else ""
        self.console.line("SUCCESS", f"Server started on {self.address}{secure}")
        if cfg.ws_port is not None:
            await self._start_web(tls)
        if cfg.irc_port is not None:
            await self._start_irc(tls)
        if cfg.metrics_port is not None:
            await self._start_metrics()
        if cfg.password:
            self.console.line("INFO", "Peers must give the password to chat (/pass, --password).")
        self._watcher = asyncio.create_task(self.relay.watch())
        if cfg.bus and not cfg.bus.startswith(BUS_SCHEMES):
            raise StartupError(
                f"--bus {cfg.bus!r} is not a Redis URL: give redis://HOST:PORT[/DB] "
                "(rediss:// for TLS), or redis-cluster://HOST:PORT[,HOST:PORT...] for a "
                "Redis Cluster."
            )
        try:
            # Shares the chat with the other replicas (--bus), reconnecting as needed:
            # the server serves its own peers whether or not Redis is there.
            await self.relay.replication.start()
        except RuntimeError as exc:  # the redis package is missing
            raise StartupError(str(exc)) from None
        if cfg.advertise:
            host, _, port = cfg.advertise.rpartition(":")
            example = (
                f"openssl s_client -quiet -connect {cfg.advertise}" if tls else f"nc {host} {port}"
            )
            self.console.line("INFO", f"Reachable at {cfg.advertise} (for example: {example})")

    async def _start_web(self, tls: ssl.SSLContext | None) -> None:
        """The WebSocket listener: browsers (the page at /) and WebSocket bots (/ws)."""
        cfg = self.config
        assert cfg.ws_port is not None
        site = Site(cfg, tls=tls is not None)
        loop = asyncio.get_running_loop()
        try:
            self._web = await loop.create_server(
                lambda: WebSocketSession(self.relay, site),
                cfg.host,
                cfg.ws_port,
                reuse_address=True,
                backlog=1024,
                ssl=tls,
                # (The page's handshake limit starts after TLS's: this bounds TLS's.)
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
            )
        except OSError as exc:
            assert self._server is not None
            self._server.close()
            raise StartupError(self._explain(exc, cfg.ws_port, "--ws-port")) from None
        self.console.line("INFO", f"Web chat at {self.web_url}")

    async def _start_metrics(self) -> None:
        """/metrics and /healthz, answered by this event loop (metrics.py)."""
        cfg = self.config
        assert cfg.metrics_port is not None
        self.metrics = MetricsServer(self.relay)
        try:
            await self.metrics.start(cfg.host, cfg.metrics_port)
        except OSError as exc:
            for listener in (self._server, self._web, self._irc):
                if listener is not None:
                    listener.close()
            raise StartupError(self._explain(exc, cfg.metrics_port, "--metrics-port")) from None
        host = self.address.rsplit(":", 1)[0]
        host = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        self.console.line("INFO", f"Metrics at http://{host}:{self.metrics.port}/metrics")

    async def _start_irc(self, tls: ssl.SSLContext | None) -> None:
        """The IRC listener: IRC clients as peers of their own kind, in the same rooms."""
        cfg = self.config
        assert cfg.irc_port is not None
        loop = asyncio.get_running_loop()
        try:
            self._irc = await loop.create_server(
                lambda: IrcSession(self.relay), cfg.host, cfg.irc_port,
                reuse_address=True, backlog=1024, ssl=tls,
            )  # fmt: skip
        except OSError as exc:
            for listener in (self._server, self._web):
                if listener is not None:
                    listener.close()
            raise StartupError(self._explain(exc, cfg.irc_port, "--irc-port")) from None
        where = cfg.irc_advertise
        if not where:
            host = self.address.rsplit(":", 1)[0]
            host = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
            where = f"{host}:{self.irc_port}"
        host, _, port = where.rpartition(":")
        tls_note = " with TLS" if tls else ""
        example = f"irssi -c {host} -p {port}" + (" -s" if tls else "")
        self.console.line("INFO", f"IRC at {where}{tls_note} (for example: {example})")

    @property
    def irc_port(self) -> int:
        assert self._irc is not None, "start() with an --irc-port first"
        return int(self._irc.sockets[0].getsockname()[1])

    @property
    def ws_port(self) -> int:
        assert self._web is not None, "start() with a --ws-port first"
        return int(self._web.sockets[0].getsockname()[1])

    @property
    def web_url(self) -> str:
        """Where a browser opens the chat (``--ws-advertise``, or where it listens)."""
        assert self._web is not None, "start() with a --ws-port first"
        scheme = "https" if self.config.tls_cert else "http"
        where = self.config.ws_advertise
        if not where:
            host, port = self._web.sockets[0].getsockname()[:2]
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # (this machine)
            where = format_addr((host, port))
        return f"{scheme}://{where}/"

    def _explain(self, exc: OSError, port: int | None = None, option: str = "--port") -> str:
        host = self.config.host
        port = self.config.port if port is None else port
        if exc.errno == errno.EADDRINUSE:
            return (
                f"Port {port} on {host} is already in use. Stop the program using it, "
                f"or choose another port with {option}."
            )
        if exc.errno == errno.EACCES:
            return (
                f"Not allowed to listen on port {port}: ports below 1024 need privileges. "
                "Choose a port from 1024 to 65535."
            )
        if exc.errno == errno.EADDRNOTAVAIL:
            return (
                f"Cannot listen on {host}: that address is not on this machine. "
                "Use 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)."
            )
        return f"Cannot listen on {host}:{port}: {exc.strerror or exc}."

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        assert self._server is not None, "start() first"
        return format_addr(self._server.sockets[0].getsockname())

    async def stop(self, reason: str = SHUTDOWN_NOTICE) -> None:
        """Stop accepting, say goodbye to every peer, and close within the timeout."""
        for listener in (self._server, self._web, self._irc):
            if listener is not None:
                listener.close()
        if self.metrics is not None:
            self.metrics.close()
        if self._watcher is not None:
            self._watcher.cancel()
        await self.relay.replication.stop()  # with a bus: our goodbye to the others first
        cut = await self.relay.shutdown(reason, self.config.shutdown_timeout)
        if cut:
            self.console.line("SHUTDOWN", f"{cut} peers did not close in time and were cut off.")
        await self._close_store()
        self.console.line("STOPPED", "Server stopped.")

    async def _close_store(self) -> None:
        """Write what the store has left to write, and let it go."""
        if self._pruner is not None:
            self._pruner.cancel()
        await asyncio.sleep(0)  # (connections cut a moment ago tell their sessions)
        await self.relay.store.close()

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        received: list[str] = []

        def on_signal(sig: signal.Signals) -> None:
            received.append(sig.name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await self.start()
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        self.console.line(
            "SHUTDOWN", f"{received[0]} received: closing {len(self.relay.registry)} connections."
        )
        await self.stop()
