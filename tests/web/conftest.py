"""Fixtures for the browser page's tests: Debian's chromium driven by Playwright, the
real server (``python -m peerchat_server ... --ws-port 0``) as a process, plain TCP
peers, and a relay that can cut the page's connection while the server stays up.

Playwright's own browser download is not needed: ``PEERCHAT_CHROMIUM`` (default
``/usr/bin/chromium``) is launched headless. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

CHROMIUM = os.environ.get("PEERCHAT_CHROMIUM", "/usr/bin/chromium")
#: Seconds the server has to print where it listens.
START_TIMEOUT = 20.0
#: Seconds a plain peer waits for a line it expects.
LINE_TIMEOUT = 10.0

expect.set_options(timeout=10_000)  # a reconnect takes a few seconds at most

_STARTED = re.compile(r"Server started on (?:\S+):(\d+)")
_WEB = re.compile(r"Web chat at https?://\S+:(\d+)/")


# --- the server -------------------------------------------------------------------------


@dataclass
class Server:
    """The real server as a process, with its TCP port and its WebSocket port."""

    extra: tuple[str, ...] = ()
    port: int = 0
    ws_port: int = 0
    output: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ws_port}/"

    def start(self) -> Server:
        """Start it (on the ports it had, after the first start) and wait until it
        says where it listens."""
        args = [
            sys.executable, "-m", "peerchat_server", "--host", "127.0.0.1",
            "--port", str(self.port), "--ws-port", str(self.ws_port), *self.extra,
        ]  # fmt: skip
        env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env,
        )  # fmt: skip
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, args=(self.proc, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        port = ws_port = None
        while port is None or ws_port is None:  # bounded by the deadline
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                raise AssertionError("the server did not start:\n" + "".join(self.output))
            if found := _STARTED.search(line):
                port = int(found.group(1))
            if found := _WEB.search(line):
                ws_port = int(found.group(1))
        self.port, self.ws_port = port, ws_port
        return self

    def _drain(self, proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        """Keep reading the server's output (so it never waits on a full pipe)."""
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            lines.put(line)
        lines.put(None)

    def kill(self) -> None:
        """SIGKILL: the server goes without a goodbye."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the server says goodbye (``bye`` code ``shutdown``) and exits."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture
def server_options() -> tuple[str, ...]:
    """Extra server options; a test overrides this fixture (or parametrizes it)."""
    return ()


@pytest.fixture
def server(server_options: tuple[str, ...]) -> Iterator[Server]:
    running = Server(extra=server_options).start()
    try:
        yield running
    finally:
        running.stop()
        print("".join(running.output))  # pytest shows it when the test failed


# --- plain TCP peers --------------------------------------------------------------------


class LinePeer:
    """An ``nc``-style peer: text lines over a raw socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=LINE_TIMEOUT)
        self._buffer = b""
        #: Every line received so far.
        self.lines: list[str] = []
        self._read = 0  # lines already looked at by expect()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def expect(self, text: str, timeout: float = LINE_TIMEOUT) -> str:
        """The next line containing ``text`` (earlier ones are passed over)."""
        deadline = time.monotonic() + timeout
        while True:  # one turn per line or read; bounded by the deadline
            while self._read < len(self.lines):
                line = self.lines[self._read]
                self._read += 1
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {text!r}; got {self.lines!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise AssertionError(f"closed before a line with {text!r}; got {self.lines!r}")
            self._buffer += data
            *done, self._buffer = self._buffer.split(b"\n")
            self.lines += [raw.decode().rstrip("\r") for raw in done]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peers() -> Iterator[list[LinePeer]]:
    """Plain peers a test opens (``peers.append(LinePeer(port))``); closed after it."""
    opened: list[LinePeer] = []
    yield opened
    for peer in opened:
        peer.close()


def plain_peer(peers: list[LinePeer], port: int, nick: str) -> LinePeer:
    """A plain peer called ``nick`` (once the server said so)."""
    peer = LinePeer(port)
    peers.append(peer)
    peer.send(f"/nick {nick}")
    peer.expect(f"is now known as {nick}")
    return peer


# --- a relay that can cut connections ---------------------------------------------------


class Cutter:
    """A TCP relay in front of the WebSocket port: the page is loaded through it, so
    while the server runs on, the page's connection can be cut (``cut()``), kept from
    coming back (``blocked.set()``), or silently lose everything either way, as a
    pulled cable does (``frozen.set()``)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.blocked = threading.Event()
        self.frozen = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while True:  # until the listener is closed
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked.is_set():
                client.close()  # the page's attempt fails at once
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):  # until either side ends
                if not self.frozen.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """End every relayed connection now, as a network failure would."""
        with self._lock:
            opened, self._open = self._open, []
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture
def cutter(server: Server) -> Iterator[Cutter]:
    relay = Cutter(server.ws_port)
    yield relay
    relay.close()


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
    )
    yield launched
    launched.close()


@dataclass
class Watch:
    """What a page did that it never should: dialogs, script errors, CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        # The page logs nothing itself: an error here is the browser's (a CSP
        # violation, a failed load). A refused WebSocket while the server is down is
        # expected, and so is the favicon the page does not have.
        text, where = message.text, message.location.get("url", "")
        if message.type == "error" and "WebSocket" not in text and "favicon" not in where:
            self.errors.append(text)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    opened = context.new_page()
    opened.on("dialog", watch.on_dialog)
    opened.on("console", watch.on_console)
    opened.on("pageerror", lambda exc: watch.errors.append(f"page error: {exc}"))
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
    assert watch.dialogs == [], f"the page opened dialogs: {watch.dialogs}"
    assert watch.errors == [], f"the page had errors: {watch.errors}"
