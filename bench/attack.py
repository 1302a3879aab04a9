"""Abuse scenarios of issue 14, black-box against a real ``peerchat-server`` on loopback.

    nice .venv/bin/python -m bench.attack all
    nice .venv/bin/python -m bench.attack reconnect              # scenario 1
    nice .venv/bin/python -m bench.attack memory --connections 200
    nice .venv/bin/python -m bench.attack sessions --server-cmd /tmp/before-venv/bin/peerchat-server
    nice .venv/bin/python -m bench.attack rename -- --join-notices-up-to 50   # server options
    .venv/bin/python -m bench.attack --help

Each scenario starts its own server (``--server-cmd``, by default the ``peerchat-server``
beside this Python; ``--port 0``, ``--quiet``, plus the scenario's own options, then
whatever follows ``--``), runs for a bounded time, stops the server by its PID and
prints a table of figures. Scenarios, by their number in the issue:

1. ``reconnect``: 16 connections at a time from one address each connect, send 19
   lines (under the flood burst), close, again; an honest lobby peer counts what it gets.
2. ``rename``: bystanders in other rooms (2,000 in 20 by default; the issue had 6,000 in
   50), attackers renaming at the flood rate, and an honest pair elsewhere timing its
   messages before and during the storm.
3. ``catchup``: a stranger's v3 hello with ``epoch`` and ``last_ts: 0`` asks a room it
   was never in for its catch-up log, under each ``--history`` given.
4. ``password``: wrong ``/pass`` guesses from one address (server with ``--password``).
5. ``memory``: connections, each alone in its own room, send 17 lines of 16,000 bytes;
   the server's RSS per connection, for ASCII lines and lines that start with an emoji.
6. ``sessions``: a real v3 session waits to be resumed while one address makes
   throwaway v3 sessions; does it come back ``resumed: true``?
10. ``longline``: a flood of long lines (and of short ones, to compare): seconds until
    the server disconnects the flooder (run with ``--flood-kick-after 5`` by default).

Only 127.0.0.1 is connected to. The attacker connects from 127.0.0.1; honest peers and
bystanders from other loopback addresses (127.1.x.y, 127.2.0.x), so that the server's
per-address limit (16 by default) applies to the attacker alone, as on a real network.
Every loop has a count and a deadline. Short-lived connections (1, 4, 6) are driven by
one thread over non-blocking sockets, which costs far less per connection than threads
sharing the GIL. The load generator's own CPU (all its threads share one core) and the
machine's, other processes included, are reported with each run; a figure taken while
the generator was 90 % busy or more is flagged as limited by it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import resource
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ATTACKER = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
#: The generator is called the bottleneck at this share of one core (its threads share
#: one through the GIL).
GENERATOR_LIMIT = 90.0
mono = time.monotonic


# --- loopback addresses and sockets ---------------------------------------------------------


def honest_addr(i: int) -> str:
    """The ``i``-th loopback address for bystanders: 127.1.x.y, never the attacker's."""
    return f"127.1.{i // 250}.{1 + i % 250}"


def connect(port: int, source: str = ATTACKER, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the server from ``source`` (a loopback address)."""
    return socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))


def send_until(sock: socket.socket, data: bytes, deadline: float) -> int:
    """Send ``data`` unless ``deadline`` passes first; returns the bytes sent."""
    view, sent = memoryview(data), 0
    for _ in range(1_000_000):
        if sent == len(data) or mono() > deadline:
            break
        try:
            sent += sock.send(view[sent:])
        except TimeoutError:
            continue
    return sent


class Lines:
    """A blocking socket read line by line, with a deadline on every wait."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(0.2)
        self._partial = b""
        self._ready: deque[bytes] = deque()
        self.closed = False
        self.last = b""  # the last line read, to say what happened to a peer

    def line(self, deadline: float) -> bytes | None:
        """The next line (without its ending), or ``None`` at the deadline or the end."""
        for _ in range(1_000_000):
            if self._ready:
                self.last = self._ready.popleft().rstrip(b"\r")
                return self.last
            if self.closed or mono() > deadline:
                return None
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
            *lines, self._partial = (self._partial + data).split(b"\n")
            self._ready.extend(lines)
        return None

    def until(self, predicate: Callable[[bytes], bool], seconds: float) -> bytes | None:
        """The first line that satisfies ``predicate`` within ``seconds``."""
        deadline = mono() + seconds
        for _ in range(1_000_000):
            line = self.line(deadline)
            if line is None or predicate(line):
                return line
        return None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


def hello(**members: Any) -> bytes:
    """A JSON hello line (version 3 unless told)."""
    return json.dumps({"type": "hello", "version": 3, **members}).encode() + b"\n"


def json_lines(data: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``data``'s lines (the plain banner before them is skipped)."""
    for line in data.splitlines():
        if line.startswith(b"{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


# --- CPU and memory from /proc ----------------------------------------------------------------


def proc_cpu(pid: int | str = "self") -> float:
    """CPU seconds (user + system) a process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class CpuWindow:
    """CPU used by the server, this generator and the whole machine over a window."""

    server_pid: int
    started: float = 0.0
    server0: float = 0.0
    self0: float = 0.0
    busy0: float = 0.0
    total0: float = 0.0
    figures: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CpuWindow:
        self.started = mono()
        self.server0, self.self0 = proc_cpu(self.server_pid), proc_cpu()
        self.busy0, self.total0 = machine_busy()
        return self

    def __exit__(self, *_: object) -> None:
        wall = max(1e-3, mono() - self.started)
        busy, total = machine_busy()
        self.figures = {
            "seconds": wall,
            "server_cpu_pct": 100 * (proc_cpu(self.server_pid) - self.server0) / wall,
            "generator_cpu_pct": 100 * (proc_cpu() - self.self0) / wall,
            "machine_busy_pct": 100 * (busy - self.busy0) / max(1e-3, total - self.total0),
        }

    def rows(self) -> list[tuple[str, str]]:
        f = self.figures
        gen = f["generator_cpu_pct"]
        others = f["machine_busy_pct"] * CORES - f["server_cpu_pct"] - gen
        flag = "  << the generator is the bottleneck" if gen >= GENERATOR_LIMIT else ""
        return [
            ("server CPU (% of one core)", f"{f['server_cpu_pct']:.0f} %"),
            ("load generator CPU (% of one core)", f"{gen:.0f} %{flag}"),
            (
                f"machine busy ({CORES} cores; other processes)",
                f"{f['machine_busy_pct']:.0f} % ({max(0.0, others):.0f} % of one core)",
            ),
        ]


# --- the server under test ------------------------------------------------------------------


class Server:
    """One ``peerchat-server`` process on 127.0.0.1, any free port, stopped by its PID."""

    def __init__(self, command: list[str], options: list[str], log: Path) -> None:
        self.log_path = log
        cmd = [*command, "--host", HOST, "--port", "0", "--quiet", *options]
        self.cmd = cmd
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.port = 0
        deadline = mono() + 15
        for _ in range(300):
            found = re.search(rb"Server started on [^\s]+:(\d+)", log.read_bytes())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None or mono() > deadline:
                break
            time.sleep(0.05)
        self.stop()
        tail = log.read_bytes()[-2000:].decode(errors="replace")
        raise RuntimeError(f"the server did not start ({shlex.join(cmd)}):\n{tail}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@dataclass
class Context:
    """What every scenario gets: how to start a server, and the options given."""

    command: list[str]
    extra: list[str]
    args: argparse.Namespace
    tmp: Path

    @contextlib.contextmanager
    def server(self, *options: str) -> Iterator[Server]:
        """A fresh server with the scenario's ``options``, then the user's extra ones."""
        log = self.tmp / f"server-{len(list(self.tmp.iterdir()))}.log"
        server = Server(self.command, [*options, *self.extra], log)
        try:
            yield server
        finally:
            server.stop()


Rows = list[tuple[str, str]]


# --- generator helpers ----------------------------------------------------------------------


class Drainer:
    """One thread reading (and discarding) everything sent to many non-blocking sockets."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.received = 0
        self.closed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.tid = 0
        self._thread.start()

    def add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with self._lock:
            self.selector.register(sock, selectors.EVENT_READ)

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        while not self._stop.is_set():  # ends with stop(); each pass waits at most 0.1 s
            with self._lock:
                ready = self.selector.select(timeout=0) if self.selector.get_map() else []
            if not ready:
                time.sleep(0.005)
                continue
            for key, _ in ready:
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self.received += len(data)
                else:
                    with self._lock:
                        self.selector.unregister(sock)
                    self.closed += 1

    def cpu_pct_since(self, cpu0: float, seconds: float) -> float:
        """This thread's CPU use as a % of one core since it had ``cpu0`` seconds."""
        return 100 * (self.cpu() - cpu0) / max(1e-3, seconds)

    def cpu(self) -> float:
        return proc_cpu(f"self/task/{self.tid}") if self.tid else 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self.selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def run_threads(count: int, target: Callable[[int], None], seconds: float) -> None:
    """``count`` threads running ``target(i)``; each must end by itself within ``seconds``."""
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    deadline = mono() + seconds + 15
    for t in threads:
        t.join(max(0.0, deadline - mono()))


def classify(answer: bytes) -> str:
    """What a short-lived connection was told: the most telling notice in it."""
    if b"Connection refused" in answer:
        return "refused (too many connections)"
    if b"for flooding" in answer:
        return "kicked for flooding"
    if b"lines a second" in answer:
        return "slowed down (flood notice)"
    if b"wrong password" in answer:
        return "wrong password"
    if b"too many" in answer.lower():
        return "too many (other)"
    return "nothing special"


@dataclass
class Short:
    """One short-lived connection of :func:`short_connections`."""

    sock: socket.socket
    out: bytes
    started: float
    connected: bool = False
    answer: list[bytes] = field(default_factory=list)


@dataclass
class ShortResult:
    """What :func:`short_connections` did: answers by kind, last lines, times."""

    completed: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all, by why
    elapsed: float = 0.0  # from the first connection to the last one's end
    told: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)  # only with keep=True

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def failure_text(self) -> str:
        return ", ".join(f"{why}: {n:,}" for why, n in self.failures.most_common()) or "none"


@dataclass
class ShortPool:
    """The open connections of :func:`short_connections`, on one selector, and what
    became of those that ended."""

    keep: bool  # keep every answer (ShortResult.answers)
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    result: ShortResult = field(default_factory=ShortResult)
    first: float = field(default_factory=mono)  # when the first connection was opened
    opened: int = 0

    def open_more(
        self,
        port: int,
        payload: Callable[[int], bytes],
        concurrency: int,
        limit: int,
        now: float,
        stop_at: float,
    ) -> None:
        """Open connections (without waiting for them) up to ``concurrency`` at once."""
        sel = self.sel
        while len(sel.get_map()) < concurrency and self.opened < limit and now < stop_at:
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, port))
            sel.register(sock, selectors.EVENT_WRITE, Short(sock, payload(self.opened), now))
            self.opened += 1

    def advance(self, conn: Short) -> None:
        """What a ready connection can do now: connect, send, or read its answer."""
        try:
            if not conn.connected:
                if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self.finish(conn, False, "could not connect")
                    return
                conn.connected = True
            if conn.out:
                conn.out = conn.out[conn.sock.send(conn.out) :]
                if not conn.out:
                    conn.sock.shutdown(socket.SHUT_WR)
                    self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
                return
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # a reset after an answer: the answer was read
            self.finish(conn, bool(conn.answer), "reset before any answer")
            return
        if data:
            conn.answer.append(data)
        else:
            self.finish(conn, True)

    def expire(self, now: float, stop_at: float) -> None:
        """End the connections past their deadline: every wait has one."""
        for key in list(self.sel.get_map().values()):
            if now > min(key.data.started + 10, stop_at + 2):
                self.finish(
                    key.data, False, "no answer in time" if key.data.connected else "no accept"
                )

    def finish(self, conn: Short, ok: bool, why: str = "") -> None:
        """Close ``conn`` and count it: a failure by ``why``, or its answer."""
        self.sel.unregister(conn.sock)
        conn.sock.close()
        result = self.result
        result.elapsed = mono() - self.first
        if not ok:
            result.failures[why] += 1
            return
        answer = b"".join(conn.answer)
        result.completed += 1
        result.seconds.append(mono() - conn.started)
        result.told[classify(answer)] += 1
        last = answer.strip().splitlines()[-1:] or [b""]
        result.endings[re.sub(rb"\d+", b"N", last[0])[:90].decode(errors="replace")] += 1
        if self.keep:
            result.answers.append(answer)


def short_connections(
    port: int,
    payload: Callable[[int], bytes],
    concurrency: int,
    stop_at: float,
    limit: int,
    keep: bool = False,
) -> ShortResult:
    """Up to ``limit`` connections from the attacker's address, ``concurrency`` at once
    (what ``concurrency`` attacker threads would have open), until ``stop_at``: each
    connects, sends ``payload(n)``, ends its side, reads the answer to the end, closes.

    One thread and non-blocking sockets: far cheaper per connection than threads that
    share the GIL, so that the generator is not what limits the rate. A connection gets
    10 s for its answer, and none waits more than 2 s past ``stop_at``.
    """
    pool = ShortPool(keep)
    for _ in range(10_000_000):
        now = mono()
        pool.open_more(port, payload, concurrency, limit, now, stop_at)
        if not pool.sel.get_map():
            break
        for key, _ in pool.sel.select(0.1):
            pool.advance(key.data)
        pool.expire(now, stop_at)
    pool.sel.close()
    return pool.result


# --- 1. reconnect flood ---------------------------------------------------------------------


class LobbyListener:
    """An honest plain peer counting what reaches it: messages, joins, leaves.

    Counts on whole chunks (``bytes.count``), not line by line, so that it keeps up
    with tens of thousands of lines a second on the generator's one core.
    """

    def __init__(self, port: int, source: str) -> None:
        self.sock = connect(port, source)
        self.sock.settimeout(0.2)
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        carry = b"\n"
        while not self._stop.is_set():  # ends with stop() or the connection
            try:
                data = self.sock.recv(262144)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                self.counts["closed"] += 1
                return
            cut = data.rfind(b"\n") + 1
            whole, carry = carry + data[:cut], data[cut:] if cut else carry + data
            if not cut:
                continue
            self.counts["messages"] += whole.count(b"\n<")
            self.counts["joins"] += whole.count(b" joined (")
            self.counts["leaves"] += whole.count(b" left (") + whole.count(b" left: ")
            carry = b"\n" + carry

    def reset(self) -> Counter[str]:
        snapshot, self.counts = self.counts, Counter()
        return snapshot

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def scenario_reconnect(ctx: Context) -> Rows:
    """1: connect, 19 lines, close, again, from one address, with an honest peer listening."""
    a = ctx.args
    threads = a.threads or 16
    payload_lines = 19
    with ctx.server() as server:
        lobby = LobbyListener(server.port, honest_addr(0))
        pair = PingPair(server.port, "elsewhere")  # honest chat in another room, timed
        time.sleep(1.0)  # its own banner and join notice are not counted
        lobby.reset()
        calm_start = mono()
        time.sleep(2.0)

        def spam(n: int) -> bytes:
            return b"".join(b"spam %d-%d\n" % (n, k) for k in range(payload_lines))

        storm_start = mono()
        with CpuWindow(server.pid) as cpu:
            done = short_connections(server.port, spam, threads, mono() + a.duration, 10**7)
        storm_end = mono()
        time.sleep(1.0)  # what the server still had queued reaches the listener
        seen = lobby.reset()
        lobby.stop()
        pair.stop()
        alive = server.alive()
    wall = max(1e-3, done.elapsed)  # from the first connection to the last
    told = done.told
    conns = done.completed
    return [
        (
            "attack",
            f"{threads} connections at once from {ATTACKER}: connect, {payload_lines} lines, "
            "close, again",
        ),
        ("duration", f"{wall:.1f} s"),
        ("connections completed", f"{conns:,} ({conns / wall:,.0f}/s)"),
        ("connections that got no answer", done.failure_text()),
        (
            "lines sent by the attacker",
            f"{conns * payload_lines:,.0f} ({conns * payload_lines / wall:,.0f}/s)",
        ),
        (
            "lines received by the lobby peer",
            f"{seen['messages']:,} ({seen['messages'] / wall:,.0f}/s)",
        ),
        ("join / leave notices it received", f"{seen['joins']:,} / {seen['leaves']:,}"),
        ("attacker was told", ", ".join(f"{k}: {v:,}" for k, v in told.most_common()) or "-"),
        ("honest peer still connected", "no" if seen["closed"] else "yes"),
        ("honest pair elsewhere before", delay_text(pair.between(calm_start, storm_start))),
        ("honest pair elsewhere during", delay_text(pair.between(storm_start, storm_end))),
        ("server alive after", "yes" if alive else "NO"),
        *cpu.rows(),
    ]


# --- 2. rename storm ------------------------------------------------------------------------


class PingPair:
    """Two honest plain peers in their own room: one says timed lines, the other times them."""

    def __init__(self, port: int, room: str) -> None:
        self.sender = Lines(connect(port, "127.2.0.1"))
        self.receiver = Lines(connect(port, "127.2.0.2"))
        for peer, nick in ((self.sender, "pinger"), (self.receiver, "ponger")):
            peer.send(f"/nick {nick}\n/join {room}\n".encode())
        self.delays: list[tuple[float, float]] = []  # (when sent, delay in s)
        self.sent = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _send(self) -> None:
        for seq in range(100_000):  # 4 a second, under the flood rate
            if self._stop.wait(0.25):
                return
            with contextlib.suppress(OSError):
                self.sender.send(b"ping %d %d\n" % (seq, time.monotonic_ns()))
                self.sent += 1

    def _receive(self) -> None:
        pattern = re.compile(rb"^<pinger> ping \d+ (\d+)$")
        while not self._stop.is_set():  # ends with stop() or the connection
            line = self.receiver.line(mono() + 0.2)
            if line is None:
                if self.receiver.closed:
                    return
                continue
            found = pattern.match(line)
            if found:
                sent_ns = int(found.group(1))
                self.delays.append((sent_ns / 1e9, (time.monotonic_ns() - sent_ns) / 1e9))

    def between(self, start: float, end: float) -> list[float]:
        return [d for at, d in self.delays if start <= at < end]

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self.sender.sock.close()
        self.receiver.sock.close()


def refused(sock: socket.socket) -> bool:
    """Whether the server's first line turns this new connection away (waits 2 s at most)."""
    sock.settimeout(2.0)
    try:
        first = sock.recv(4096)
    except TimeoutError:
        return False
    except OSError:
        return True
    return not first or b"Connection refused" in first


def delay_text(delays: list[float]) -> str:
    if not delays:
        return "none arrived"
    return (
        f"median {1000 * statistics.median(delays):.1f} ms, max {1000 * max(delays):.0f} ms "
        f"({len(delays)} lines)"
    )


def scenario_rename(ctx: Context) -> Rows:
    """2: renamers at the flood rate, bystanders in other rooms, an honest pair timing."""
    a = ctx.args
    with ctx.server() as server:
        drainer = Drainer()
        setup_deadline = mono() + 60
        bystanders, turned_away = 0, 0
        for i in range(a.bystanders):
            if mono() > setup_deadline:
                break
            try:
                sock = connect(server.port, honest_addr(i))
                if refused(sock):
                    turned_away += 1
                    sock.close()
                    continue
                sock.sendall(b"/join by%d\n" % (i % a.rooms))
            except OSError:
                turned_away += 1
                continue
            drainer.add(sock)
            bystanders += 1
        pair = PingPair(server.port, "honest")
        time.sleep(2.0)  # everyone announced, rooms settled
        base_start = mono()
        time.sleep(a.baseline)
        attackers = [connect(server.port, ATTACKER) for _ in range(a.renamers)]
        attackers_refused = sum(refused(sock) for sock in attackers)
        received0, drainer_cpu0 = drainer.received, drainer.cpu()
        storm_start = mono()
        stop_at = storm_start + a.duration
        renames = 0
        with CpuWindow(server.pid) as cpu:
            for sock in attackers:
                drainer.add(sock)
            for turn in range(int(a.duration * a.rename_rate) + 1):
                due = storm_start + turn / a.rename_rate
                if due > stop_at:
                    break
                time.sleep(max(0.0, due - mono()))
                for i, sock in enumerate(attackers):
                    with contextlib.suppress(OSError):  # a short line: the buffer has room
                        renames += sock.send(b"/nick r%dx%d\n" % (i, turn % 2)) > 0
        storm_end = mono()
        drainer_pct = drainer.cpu_pct_since(drainer_cpu0, storm_end - storm_start)
        received = drainer.received - received0
        time.sleep(1.5)  # late lines of the storm still count for the pair
        pair.stop()
        dropped = drainer.closed
        drainer.stop()
        alive = server.alive()
    wall = cpu.figures["seconds"]
    rows: Rows = [
        ("attack", f"{a.renamers} connections from {ATTACKER} renaming {a.rename_rate:g}/s each"),
        ("bystanders", f"{bystanders:,} in {a.rooms} rooms (turned away: {turned_away:,})"),
        ("renaming connections turned away", f"{attackers_refused} of {a.renamers}"),
        ("duration of the storm", f"{wall:.1f} s"),
        ("renames sent (not all may be accepted)", f"{renames:,} ({renames / wall:,.0f}/s)"),
        ("bytes the bystanders received", f"{received / wall / 1e6:.2f} MB/s"),
        ("honest pair before the storm", delay_text(pair.between(base_start, storm_start))),
        ("honest pair during the storm", delay_text(pair.between(storm_start, storm_end))),
        (
            "honest lines sent / timed",
            f"{pair.sent} / {len(pair.delays)}"
            f"{'; the pair was disconnected' if pair.receiver.closed else ''}",
        ),
        ("connections closed by the server", f"{dropped:,}"),
        ("server alive after", "yes" if alive else "NO"),
        *cpu.rows(),
    ]
    if drainer_pct >= GENERATOR_LIMIT:
        rows.append(("bystanders' reader thread", f"{drainer_pct:.0f} %  << the bottleneck"))
    else:
        rows.append(("bystanders' reader thread", f"{drainer_pct:.0f} % of one core"))
    return rows


# --- 3. catch-up to a stranger ---------------------------------------------------------------


def history_of_newcomer(port: int, source: str, room: str) -> int:
    """How many history messages an ordinary v3 newcomer to ``room`` gets."""
    with connect(port, source) as sock:
        sock.sendall(hello(nick="newcomer", room=room))
        sock.settimeout(0.2)
        data = read_until_quiet(sock, 1.0, 5.0)
    return sum(1 for f in json_lines(data) if f.get("type") == "message" and f.get("history"))


def read_until_quiet(sock: socket.socket, quiet: float, most: float) -> bytes:
    """Everything the server sends until it is silent for ``quiet`` s (``most`` s at most)."""
    chunks: list[bytes] = []
    deadline, last = mono() + most, mono()
    for _ in range(100_000):
        now = mono()
        if now > deadline or now - last > quiet:
            break
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
        last = mono()
    return b"".join(chunks)


def scenario_catchup(ctx: Context) -> Rows:
    """3: a stranger asks for the catch-up of a room it was never in."""
    a = ctx.args
    rows: Rows = []
    for history in a.histories:
        with ctx.server("--history", str(history)) as server:
            writers = [Lines(connect(server.port, honest_addr(i))) for i in range(a.writers)]
            listener = Lines(connect(server.port, honest_addr(a.writers)))
            listener.send(b"/join staff\n")
            time.sleep(0.3)
            for i, w in enumerate(writers):
                w.send(
                    b"/join staff\n" + b"".join(b"staff secret %d-%d\n" % (i, k) for k in range(19))
                )
            heard = 0
            deadline = mono() + 10
            for _ in range(a.writers * 100):
                line = listener.line(deadline)
                if line is None:
                    break
                heard += line.startswith(b"<")
                if heard >= a.writers * 19:
                    break
            newcomer = history_of_newcomer(server.port, honest_addr(a.writers + 1), "staff")
            with connect(server.port, ATTACKER) as sock:
                sock.sendall(hello(nick="m", room="staff", epoch="x", last_ts=0))
                sock.settimeout(0.2)
                frames = list(json_lines(read_until_quiet(sock, 1.0, 5.0)))
            for peer in (*writers, listener):
                peer.sock.close()
        welcome = next((f for f in frames if f.get("type") == "welcome"), {})
        got = sum(1 for f in frames if f.get("type") == "message" and f.get("history"))
        rows += [
            (f"--history {history}: lines said in #staff", f"{heard}"),
            (f"--history {history}: an ordinary newcomer got", f"{newcomer} history lines"),
            (
                f"--history {history}: the stranger got",
                f"{got} lines (welcome: missed={welcome.get('missed')}, "
                f"gap={welcome.get('gap', False)})",
            ),
        ]
    return rows


# --- 4. password guessing --------------------------------------------------------------------


def scenario_password(ctx: Context) -> Rows:
    """4: wrong /pass guesses from one address for a fixed time."""
    a = ctx.args
    threads = a.threads or 16
    with ctx.server("--password", a.password) as server:

        def guess(n: int) -> bytes:
            return b"/pass guess-%d\n" % n

        with CpuWindow(server.pid) as cpu:
            done = short_connections(server.port, guess, threads, mono() + a.duration, 10**7)
        alive = server.alive()
    wall = max(1e-3, done.elapsed)  # from the first connection to the last
    wrong = done.told["wrong password"]
    rows: Rows = [
        (
            "attack",
            f"{threads} connections at once from {ATTACKER}: connect, /pass GUESS, read the "
            "answer, again",
        ),
        ("duration", f"{wall:.1f} s"),
        ("guesses answered 'wrong password'", f"{wrong:,} ({wrong / wall:,.0f}/s)"),
        ("all answers", ", ".join(f"{k}: {v:,}" for k, v in done.told.most_common())),
        ("connections that got no answer", done.failure_text()),
        (
            "time per guess",
            f"median {1000 * statistics.median(done.seconds):.1f} ms" if done.seconds else "-",
        ),
    ]
    for text, count in done.endings.most_common(3):
        rows.append((f"last line ({count:,}x)", text))
    rows += [("server alive after", "yes" if alive else "NO"), *cpu.rows()]
    return rows


# --- 5. memory per connection ----------------------------------------------------------------


def line_of(size: int, emoji: bool, n: int) -> bytes:
    """A ``size``-byte line (no ending), starting with an emoji if told."""
    head = ("\N{GRINNING FACE}" if emoji else "x").encode() + b"%d " % n
    return head + b"x" * (size - len(head))


def say_all(
    peers: list[Lines], body: bytes, wait: float, fates: list[Counter[str]], i: int
) -> None:
    """Thread ``i`` of ``len(fates)``: each of its share of ``peers`` sends ``body``, then
    each waits for the answer to the last line (all within ``wait`` s: a server that
    paces long lines may take a while); ``fates[i]`` counts how each ended."""
    deadline = mono() + wait
    mine = peers[i :: len(fates)]
    sent: list[Lines] = []
    for peer in mine:
        try:
            if send_until(peer.sock, body, deadline) == len(body):
                sent.append(peer)
            else:
                fates[i][f"could not send it all in {wait:g} s"] += 1
        except OSError as exc:
            fates[i][type(exc).__name__] += 1
    for peer in sent:
        left = deadline - mono()
        if peer.until(lambda x: b"Timestamps are off" in x, max(0.1, left)) is not None:
            fates[i]["ok"] += 1
            continue
        last = peer.last[:70].decode(errors="replace")
        fates[i][f"{'closed' if peer.closed else 'no answer'} after {last!r}"] += 1


def scenario_memory(ctx: Context) -> Rows:
    """5: N peers, each alone in its own room, say 17 lines of 16,000 bytes; RSS per peer."""
    a = ctx.args
    threads = a.threads or 8
    rows: Rows = []
    for variant in a.variants:
        emoji = variant == "emoji"
        with ctx.server() as server:
            time.sleep(0.5)
            rss0 = rss_kib(server.pid)
            peers: list[Lines] = []
            for i in range(a.connections):
                peer = Lines(connect(server.port, honest_addr(i)))
                peer.send(b"/join mem%d\n" % i)
                peers.append(peer)
            time.sleep(1.0)  # joined, announced
            rss1 = rss_kib(server.pid)
            body = b"".join(line_of(a.line_bytes, emoji, k) + b"\n" for k in range(a.lines))
            body += b"/timestamps off\n"  # answered once everything before it is read
            fates: list[Counter[str]] = [Counter() for _ in range(threads)]
            say = functools.partial(say_all, peers, body, a.memory_wait, fates)
            run_threads(threads, say, a.memory_wait)
            fate = sum(fates, Counter())
            time.sleep(1.0)
            rss2 = rss_kib(server.pid)
            for peer in peers:
                peer.sock.close()
            time.sleep(1.0)
            rss3 = rss_kib(server.pid)
        n = max(1, a.connections)
        rows += [
            (f"{variant}: connections that said it all", f"{fate.pop('ok', 0)} of {a.connections}"),
            *[(f"{variant}: the others", f"{why}: {n}") for why, n in fate.most_common(3)],
            (
                f"{variant}: RSS at start / connected / after lines",
                f"{rss0 / 1024:.1f} / {rss1 / 1024:.1f} / {rss2 / 1024:.1f} MiB",
            ),
            (f"{variant}: per idle connection", f"{(rss1 - rss0) / n:,.1f} KiB"),
            (
                f"{variant}: per connection after {a.lines} lines of {a.line_bytes:,} B",
                f"{(rss2 - rss0) / n:,.1f} KiB",
            ),
            (f"{variant}: RSS once all closed", f"{rss3 / 1024:.1f} MiB"),
        ]
    return rows


# --- 6. throwaway sessions -------------------------------------------------------------------


def scenario_sessions(ctx: Context) -> Rows:
    """6: throwaway v3 sessions from one address, then a real waiting session resumes."""
    a = ctx.args
    threads = a.threads or 16
    with ctx.server() as server:
        with connect(server.port, honest_addr(0)) as sock:
            sock.sendall(hello(nick="real"))
            sock.settimeout(0.2)
            welcome = next(
                (
                    f
                    for f in json_lines(read_until_quiet(sock, 0.5, 5))
                    if f.get("type") == "welcome"
                ),
                {},
            )
        token = welcome.get("session")
        if not token:
            return [("error", f"no session in the welcome: {welcome}")]
        time.sleep(0.5)  # its connection is gone: the session waits to be resumed

        def throwaway(n: int) -> bytes:
            return hello(nick=f"t{n}")

        with CpuWindow(server.pid) as cpu:
            stop_at = mono() + a.session_seconds
            done = short_connections(
                server.port, throwaway, threads, stop_at, a.throwaways, keep=True
            )
        total = sum(b'"session"' in answer for answer in done.answers)
        time.sleep(0.5)
        with connect(server.port, honest_addr(0)) as sock:
            sock.sendall(hello(nick="real", resume=token, epoch=welcome.get("epoch")))
            sock.settimeout(0.2)
            frames = list(json_lines(read_until_quiet(sock, 0.5, 5)))
        back = next((f for f in frames if f.get("type") == "welcome"), {})
        alive = server.alive()
    wall = max(1e-3, done.elapsed)  # from the first connection to the last
    return [
        (
            "attack",
            f"{threads} connections at once from {ATTACKER}: hello v3, close, again (up to "
            f"{a.throwaways:,})",
        ),
        (
            "throwaway sessions made",
            f"{total:,} in {wall:.1f} s ({total / wall:,.0f}/s); failed "
            f"{done.failed + done.completed - total:,}",
        ),
        (
            "the real session came back",
            f"resumed: {back.get('resumed', False)}, nick: {back.get('nick')}",
        ),
        ("server alive after", "yes" if alive else "NO"),
        *cpu.rows(),
    ]


# --- 10. long-line flood ---------------------------------------------------------------------


def flood_once(port: int, size: int, limit: float) -> tuple[str, int, int]:
    """Flood lines of ``size`` bytes; how it ended, lines written, flood notices heard."""
    sock = connect(port, ATTACKER)
    sock.settimeout(0.2)
    notices = [0]
    ended: list[str] = []
    started = mono()
    stop_at = started + limit

    def read() -> None:
        buf = b""
        for _ in range(1_000_000):
            if mono() > stop_at + 1:
                return
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            buf = (buf + data)[-4096:]
            notices[0] += data.count(b"the rest will follow at that pace")
            if not data:
                how = "kicked for flooding" if b"for flooding" in buf else "closed"
                ended.append(f"{how} after {mono() - started:.1f} s")
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    line = b"/join flood\n" + b"f" * (size - 1) + b"\n"
    written = 0
    for n in range(10_000_000):
        if ended or mono() > stop_at:
            break
        chunk = line if n == 0 else line[12:] * max(1, 65536 // size)
        try:
            sent = send_until(sock, chunk, stop_at)
        except OSError:
            break
        written += sent // size
    reader.join(limit + 3)
    sock.close()
    return (ended[0] if ended else f"not kicked in {limit:g} s"), written, notices[0]


def scenario_longline(ctx: Context) -> Rows:
    """10: lines at flood pace, long and short: seconds until the flooder is kicked."""
    a = ctx.args
    rows: Rows = []
    for size in a.sizes:
        with ctx.server("--flood-kick-after", str(a.kick_after)) as server:
            how, written, notices = flood_once(server.port, size, a.limit)
        rows += [
            (f"lines of {size:,} B: outcome", how),
            (f"lines of {size:,} B: lines written, flood notices", f"{written:,}, {notices}"),
        ]
    kick = next((x for x in ctx.extra if x.startswith("--flood-kick-after")), None)
    rows.append(
        (
            "server's --flood-kick-after",
            f"{a.kick_after:g} s" if kick is None else "as given after --",
        )
    )
    return rows


# --- the CLI ---------------------------------------------------------------------------------

SCENARIOS: dict[str, tuple[str, Callable[[Context], Rows]]] = {
    "reconnect": ("1", scenario_reconnect),
    "rename": ("2", scenario_rename),
    "catchup": ("3", scenario_catchup),
    "password": ("4", scenario_password),
    "memory": ("5", scenario_memory),
    "sessions": ("6", scenario_sessions),
    "longline": ("10", scenario_longline),
}
BY_NUMBER = {number: name for name, (number, _) in SCENARIOS.items()}


def default_command() -> list[str]:
    """``peerchat-server`` beside this Python, else ``python -m peerchat_server``."""
    exe = Path(sys.executable).parent / "peerchat-server"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "peerchat_server"]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(
        prog="python -m bench.attack",
        description="Run the abuse scenarios of issue 14 against a fresh peerchat-server. "
        "Options after -- go to the server.",
    )
    names = [*SCENARIOS, *BY_NUMBER, "all"]
    p.add_argument(
        "scenario",
        nargs="+",
        choices=names,
        metavar="SCENARIO",
        help=f"one or more of: {', '.join(names)}",
    )
    p.add_argument(
        "--server-cmd",
        default="",
        help="command starting the server (default: peerchat-server of this venv)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of attack (1, 2, 4)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="attacker connections at once (1, 4, 6: 16), threads (5: 8)",
    )
    p.add_argument("--bystanders", type=int, default=2000, help="2: bystanders")
    p.add_argument("--rooms", type=int, default=20, help="2: rooms the bystanders are in")
    p.add_argument("--renamers", type=int, default=15, help="2: renaming connections")
    p.add_argument("--rename-rate", type=float, default=5.0, help="2: renames/s per renamer")
    p.add_argument(
        "--baseline",
        type=float,
        default=3.0,
        help="2: seconds the honest pair is timed before the storm",
    )
    p.add_argument("--histories", type=ints, default=[20, 0], help="3: --history values")
    p.add_argument("--writers", type=int, default=3, help="3: peers that talk in #staff")
    p.add_argument("--password", default="bench-Secret-7", help="4: the server's password")
    p.add_argument("--connections", type=int, default=100, help="5: connections")
    p.add_argument("--lines", type=int, default=17, help="5: lines each connection says")
    p.add_argument("--line-bytes", type=int, default=16_000, help="5: bytes per line")
    p.add_argument(
        "--memory-wait", type=float, default=60.0, help="5: seconds for the lines to be read"
    )
    p.add_argument(
        "--variants", type=lambda s: s.split(","), default=["ascii", "emoji"], help="5: ascii,emoji"
    )
    p.add_argument("--throwaways", type=int, default=10_500, help="6: throwaway sessions")
    p.add_argument(
        "--session-seconds", type=float, default=20.0, help="6: seconds of throwaways at most"
    )
    p.add_argument("--sizes", type=ints, default=[16_000, 10], help="10: line sizes")
    p.add_argument(
        "--kick-after", type=float, default=5.0, help="10: the server's --flood-kick-after"
    )
    p.add_argument("--limit", type=float, default=15.0, help="10: seconds of flood at most")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    return args, extra


def print_table(title: str, rows: Rows) -> None:
    width = max((len(k) for k, _ in rows), default=10)
    print(f"\n## {title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(sys.argv[1:] if argv is None else argv)
    chosen: list[str] = []
    for name in args.scenario:
        for one in SCENARIOS if name == "all" else [BY_NUMBER.get(name, name)]:
            if one not in chosen:
                chosen.append(one)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # bystanders need descriptors
    command = shlex.split(args.server_cmd) if args.server_cmd else default_command()
    print(f"server: {shlex.join(command)} {shlex.join(extra)}".rstrip())
    results: dict[str, Rows] = {}
    with tempfile.TemporaryDirectory(prefix="peerchat-attack-") as tmp:
        ctx = Context(command, extra, args, Path(tmp))
        for name in chosen:
            number, run = SCENARIOS[name]
            try:
                rows = run(ctx)
            except (OSError, RuntimeError) as exc:
                rows = [("error", f"{type(exc).__name__}: {exc}")]
            results[name] = rows
            print_table(f"{number}. {name}", rows)
    if args.json:
        args.json.write_text(json.dumps({k: dict(v) for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
