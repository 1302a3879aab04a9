"""What ``--store sqlite:///PATH`` costs the chat, and what ``kill -9`` loses of it.

    .venv/bin/python -m bench.store            # about 2.5 minutes on 2 idle cores
    .venv/bin/python -m bench.store --quick    # about 30 s

Every process is on 127.0.0.1 and stopped by its PID; every wait has a deadline and
every loop a count. The abuse limits are off as in bench/run.py (``--flood-rate 0
--address-flood-rate 0 --connect-rate 0 --max-per-address 0``, and ``--rename-rate 0
--address-wait-rate 0 --max-connections 0``: 21 ``/nick`` from one address, and a room
that may wait for its readers as often as it needs).

1. **Delivery, server as a subprocess** (``python -m peerchat_server --port 0 --quiet``):
   ``--store memory`` against ``--store sqlite:///TMP/x.db`` (a fresh file each run),
   ``--reps`` times each, in alternating order. A client process (this file with
   ``--clients-for PORT``) connects ``--receivers`` plain-text receivers (raw asyncio
   sockets reading lines as ``nc`` would; each says ``/nick rNN``) and one plain sender,
   which sends warm-up lines until every receiver has one, then writes ``--messages``
   lines ``m SEQ T`` (T: ``time.monotonic_ns()`` at the write), ``--batch`` a write,
   never more than ``--window`` ahead of the slowest receiver: as fast as the receivers
   read. A receiver counts its lines with ``bytes.count`` and checks the last one of
   each read() against its count (so that the client is not the bottleneck); each
   delivery's latency is the time its read() returned less the T of the write that
   carried it. Messages/s: the lines over first write to last delivery. Server CPU:
   utime + stime of its PID (/proc/PID/stat, every thread: the store's writer too),
   from the first write until the store has written every line
   (``peerchat_store_messages_written_total`` from ``--metrics-port``), per 1,000 lines.
2. **Delivery, server in this process**: ``ChatServer`` in this file's own event loop,
   the same client process: ``memory``, ``sqlite``, and ``sqlite-slow``: the store's
   connection (``store._db``) replaced, once started, by a proxy whose every
   ``execute()`` and ``executemany()`` first sleeps ``--slow-ms`` (5 ms), as
   tests/server/test_store.py's ``Stuck`` does. CPU is this process's (the server and
   its writer; the clients are elsewhere). ``relay.stats.store_written`` /
   ``store_dropped`` / ``store_failures``, at the last delivery and once the writer
   caught up.
3. **kill -9**: ``--trials`` times (and ``--long-trials`` more with a
   ``--long-kill-after`` flood), a server on a fresh file with ``--catch-up 100000
   --history 0 --catch-up-total-bytes 0 --history-bytes 1073741824`` (without the last
   a room's log in memory, hence /history, holds at most 256 KiB of text, a few
   thousand of these lines, whatever the file keeps). One JSON receiver (protocol v3)
   records the ``message`` frames it gets while one plain sender writes ``k N`` lines at
   full speed (256 a write, as fast as TCP takes them); after ``--kill-after`` s (plus up
   to 0.25 s) the server gets SIGKILL. The file is read directly (read-only), the server
   restarted on it, and a new JSON peer sends ``{"type":"history"}``; then a plain peer
   says one line, whose id must be above every id seen before the kill. *Lost*: ids the
   receiver got that the file does not keep (and --catch-up did not prune).
4. **Passes** (``profile``): the same flood (for ``--kill-after`` s, then the sender's
   connection reset) against a server in this process with the kill trials' settings;
   the store's end-of-pass hand-over is wrapped to count each pass's messages and what
   was said and not yet on disk at that moment (the pass's, and those handed to the
   writer and not committed): what a kill -9 then would lose. Its median pass is the
   kill trials' "one pass".

The tables go to stdout as markdown, every figure to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import io
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.capacity_check import cpu_seconds, metrics

HERE = Path(__file__).resolve()
#: The abuse limits off (one address, a sender far past 5 lines/s, 21 renames at once).
UNLIMITED_FLAGS = (
    "--flood-rate", "0", "--address-flood-rate", "0", "--connect-rate", "0",
    "--max-per-address", "0", "--rename-rate", "0", "--address-wait-rate", "0",
    "--max-connections", "0",
)  # fmt: skip
UNLIMITED: dict[str, Any] = {
    "flood_rate": 0, "address_flood_rate": 0, "connect_rate": 0, "max_per_address": 0,
    "rename_rate": 0, "address_wait_rate": 0, "max_connections": 0,
}  # fmt: skip
#: The kill -9 trials keep everything (see the module's docstring for --history-bytes).
CATCH_UP = 100_000
KEEP_ALL = (
    "--catch-up", str(CATCH_UP), "--history", "0", "--catch-up-total-bytes", "0",
    "--history-bytes", str(1 << 30),
)  # fmt: skip
STARTED = re.compile(rb"\[SUCCESS\] Server started on 127\.0\.0\.1:(\d+)")
METRICS_AT = re.compile(rb"Metrics at http://127\.0\.0\.1:(\d+)/metrics")
KEPT_LINE = re.compile(rb"\[INFO\] History and sessions are kept in [^\n]*")
#: What in a server's output is worth a look.
TROUBLE = ("[ERROR]", "[WARNING]", "Traceback", "Exception", "too slow", "slow consumer")
HELLO = b'{"type":"hello","version":3,"nick":"%s"}\n'
READ_BYTES = 256 * 1024
BIG_READ = 16 << 20  # the kill trials' receiver's buffer (a read takes all that came)
#: A message frame as the server writes it (its id and text; no escapes in ``k N``).
FRAME = re.compile(rb'\{"type":"message","id":(\d+),"nick":"[^"]*","text":"([^"\\]*)"')
SENDER_BLOCK = 256  # lines a write in the kill trials
LOOP_CAP = 10_000_000  # a bound for loops that end on EOF or a deadline


def briefly(lines: list[str], width: int = 110) -> str:
    """Lines a server said, each once (with how often), without the file's path."""
    counts: dict[str, int] = {}
    for line in lines:
        short = re.sub(r"sqlite:///\S+", "sqlite:///…", line)
        counts[short] = counts.get(short, 0) + 1
    return "; ".join(
        (t if len(t) <= width else t[: width - 1] + "…") + (f" (×{n})" if n > 1 else "")
        for t, n in counts.items()
    )


def trouble(output: str) -> list[str]:
    """The lines of a server's output worth reporting."""
    return [line for line in output.splitlines() if any(t in line for t in TROUBLE)][:20]


# --- the client process: receivers and a sender --------------------------------------------


@dataclass
class Sent:
    """The sender's writes: the first line (seq) of each and when it was written."""

    starts: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    total: int = 0  # lines written


@dataclass
class Receiver:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    got: int = 0
    out_of_order: int = 0
    warm: bool = False
    closed: bool = False
    done_ns: int = 0
    #: (latency in ns, deliveries with it): one entry per write a read() held
    samples: list[tuple[int, int]] = field(default_factory=list)


MARK = b"<s> m "  # how a measured line starts, as a plain receiver gets it


def _take(rx: Receiver, lines: bytes, now: int, sent: Sent, total: int) -> None:
    """Whole lines ``lines``, read at ``now``: counted in C (bytes.count), the last one
    parsed; each delivery's latency is that of the write that carried it."""
    if not rx.warm and b"<s> w " in lines:
        rx.warm = True
    n = lines.count(MARK)
    if not n:
        return
    last = int(lines[lines.rfind(MARK) :].split(None, 4)[2])
    low, high = rx.got + 1, rx.got + n
    if last != high:
        rx.out_of_order += 1  # lost, doubled or reordered lines before this one
    rx.got = high
    starts = sent.starts
    i = bisect.bisect_right(starts, low) - 1
    for j in range(max(0, i), len(starts)):
        if starts[j] > high:
            break
        end = starts[j + 1] - 1 if j + 1 < len(starts) else sent.total
        rx.samples.append((now - sent.times[j], min(high, end) - max(low, starts[j]) + 1))
    if rx.got >= total and not rx.done_ns:
        rx.done_ns = now


async def _receive(rx: Receiver, progress: asyncio.Event, sent: Sent, total: int) -> None:
    rest = b""
    for _ in range(LOOP_CAP):
        chunk = await rx.reader.read(READ_BYTES)
        now = time.monotonic_ns()
        if not chunk:
            rx.closed = True
            progress.set()
            return
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        _take(rx, data[:cut], now, sent, total)
        progress.set()


def weighted(samples: list[tuple[int, int]], q: float) -> float:
    """The ``q`` quantile of values given with their counts."""
    ordered = sorted(samples)
    want = q * sum(n for _, n in ordered)
    seen = 0
    for value, n in ordered:
        seen += n
        if seen >= want:
            return value
    return float("nan")


async def _drain_notices(reader: asyncio.StreamReader) -> None:
    for _ in range(LOOP_CAP):
        if not await reader.read(READ_BYTES):
            return


async def _wait_all(
    rxs: list[Receiver], progress: asyncio.Event, done: Callable[[Receiver], bool], seconds: float
) -> None:
    async with asyncio.timeout(seconds):
        for _ in range(LOOP_CAP):
            if all(done(rx) for rx in rxs):
                return
            if any(rx.closed for rx in rxs):
                raise RuntimeError("a receiver was disconnected")
            progress.clear()
            await progress.wait()


async def _warm_up(sender: asyncio.StreamWriter, rxs: list[Receiver], ev: asyncio.Event) -> int:
    """Warm-up lines, one a second, until every receiver has one; how many."""
    for n in range(1, 11):
        sender.write(b"w 0 0\n")
        with contextlib.suppress(TimeoutError):
            await _wait_all(rxs, ev, lambda rx: rx.warm, 1.0)
            return n
    raise RuntimeError("the receivers got no warm-up line in 10 s")


async def _send(
    sender: asyncio.StreamWriter,
    rxs: list[Receiver],
    ev: asyncio.Event,
    sent: Sent,
    a: argparse.Namespace,
) -> None:
    """Write ``a.messages`` lines, at most ``a.window`` ahead of the slowest receiver."""
    seq = 0
    for _ in range(LOOP_CAP):
        if seq >= a.messages:
            break
        room = a.window - (seq - min(rx.got for rx in rxs))
        if room <= 0:
            await _wait_all(rxs, ev, lambda rx, sent=seq: sent - rx.got < a.window, 30)
            continue
        n = min(a.batch, room, a.messages - seq)
        t = time.monotonic_ns()
        sent.starts.append(seq + 1)
        sent.times.append(t)
        sent.total = seq + n
        sender.write(b"".join(b"m %d %d\n" % (s, t) for s in range(seq + 1, seq + n + 1)))
        seq += n
        await sender.drain()


async def _connect(
    port: int, first: bytes, limit: int = 1 << 16
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    connecting = asyncio.open_connection("127.0.0.1", port, limit=limit)
    reader, writer = await asyncio.wait_for(connecting, 10)
    writer.write(first)
    return reader, writer


async def deliver(a: argparse.Namespace) -> dict[str, Any]:
    """The client process's run: ``ready N`` (warm-up lines), wait for ``go`` on stdin,
    ``done`` at the last delivery, then ``result {json}``."""
    ev, sent = asyncio.Event(), Sent()
    rxs, tasks = [], []
    for i in range(a.receivers):
        rx = Receiver(*await _connect(a.clients_for, b"/nick r%02d\n" % i))
        rxs.append(rx)
        tasks.append(asyncio.create_task(_receive(rx, ev, sent, a.messages)))
    s_reader, sender = await _connect(a.clients_for, b"/nick s\n")
    tasks.append(asyncio.create_task(_drain_notices(s_reader)))
    try:
        warm = await _warm_up(sender, rxs, ev)
        print(f"ready {warm}", flush=True)
        go = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 60)
        if not go.startswith("go"):
            raise RuntimeError(f"expected go, not {go!r}")
        cpu0 = cpu_seconds(os.getpid())
        await _send(sender, rxs, ev, sent, a)
        await _wait_all(rxs, ev, lambda rx: rx.got >= a.messages, a.max_seconds)
        print("done", flush=True)
        client_cpu = cpu_seconds(os.getpid()) - cpu0
    finally:
        for task in tasks:
            task.cancel()
        for w in [rx.writer for rx in rxs] + [sender]:
            w.close()
    last = max(rx.done_ns for rx in rxs)
    samples = [v for rx in rxs for v in rx.samples]
    seconds = (last - sent.times[0]) / 1e9
    return {
        "warm": warm,
        "seconds": seconds,
        "msgs_per_s": a.messages / seconds,
        "deliveries_per_s": a.messages * a.receivers / seconds,
        "p50_ms": weighted(samples, 0.50) / 1e6,
        "p99_ms": weighted(samples, 0.99) / 1e6,
        "max_ms": max(v for v, _ in samples) / 1e6,
        "deliveries": sum(n for _, n in samples),
        "writes": len(sent.starts),
        "client_busy": client_cpu / seconds,
        "out_of_order": sum(rx.out_of_order for rx in rxs),
    }


def client_main(a: argparse.Namespace) -> int:
    result = asyncio.run(flood_client(a) if a.flood else deliver(a))
    print("result " + json.dumps(result), flush=True)
    return 0


# --- driving the client process, and the store's counters -------------------------------------

Counts = Callable[[], Awaitable[dict[str, float]]]


async def _line(proc: asyncio.subprocess.Process, seconds: float, want: bytes) -> bytes:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), seconds)
    if not line.startswith(want):
        rest = await asyncio.wait_for(proc.communicate(), 10)
        raise RuntimeError(f"client: expected {want!r}, got {line!r} {rest[1][-2000:]!r}")
    return line


async def _drained(counts: Counts, target: int, seconds: float = 120) -> tuple[bool, float]:
    """Wait until the store has written (or dropped) ``target`` messages."""
    started = time.monotonic()
    for _ in range(int(seconds / 0.05) + 1):
        c = await counts()
        if c["written"] + c["dropped"] >= target:
            return True, time.monotonic() - started
        if time.monotonic() - started > seconds:
            break
        await asyncio.sleep(0.05)
    return False, time.monotonic() - started


async def start_client(port: int, *args: str) -> asyncio.subprocess.Process:
    """This file as the client process (``--clients-for PORT``), its stdio piped."""
    cmd = [sys.executable, "-m", "bench.store", "--clients-for", str(port), *args]
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        *cmd, stdin=pipe, stdout=pipe, stderr=pipe, cwd=HERE.parents[1]
    )


async def go(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


def result_of(out: bytes, err: bytes) -> dict[str, Any]:
    results = [x for x in out.decode().splitlines() if x.startswith("result ")]
    if not results:
        raise RuntimeError(f"client gave no result: {err.decode()[-2000:]}")
    return dict(json.loads(results[0].removeprefix("result ")))


async def drive(port: int, pid: int, a: argparse.Namespace, counts: Counts, store: bool) -> dict:
    """Run the client process against ``port``; CPU of ``pid`` from its first line to
    the store having written everything (``store``: a store that writes)."""
    proc = await start_client(
        port, "--receivers", str(a.receivers), "--messages", str(a.messages), "--window",
        str(a.window), "--batch", str(a.batch), "--max-seconds", str(a.max_seconds),
    )  # fmt: skip
    try:
        warm = int((await _line(proc, 60, b"ready")).split()[1])
        before, cpu0 = await counts(), cpu_seconds(pid)
        await go(proc)
        await _line(proc, a.max_seconds + 30, b"done")
        cpu1, at_done = cpu_seconds(pid), await counts()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result = result_of(out, err)
    target = int(before["written"] + before["dropped"]) + a.messages
    drained, drain_s = await _drained(counts, target) if store else (True, 0.0)
    cpu2, after = cpu_seconds(pid), await counts()
    result.update(
        warm=warm,
        cpu_s_delivery=cpu1 - cpu0,
        server_busy=(cpu1 - cpu0) / result["seconds"],
        cpu_s=cpu2 - cpu0,
        cpu_s_per_1000=(cpu2 - cpu0) * 1000 / a.messages,
        written_at_done=at_done["written"] - before["written"],
        written=after["written"] - before["written"],
        dropped=after["dropped"] - before["dropped"],
        failures=after["failures"] - before["failures"],
        slow_consumers=after["slow_consumers"] - before["slow_consumers"],
        drained=drained,
        drain_s=drain_s,
    )
    return result


def metric_counts(port: int) -> Counts:
    async def counts() -> dict[str, float]:
        m = await asyncio.to_thread(metrics, port)
        return {
            "written": m.get("peerchat_store_messages_written_total", 0.0),
            "dropped": m.get("peerchat_store_messages_dropped_total", 0.0),
            "failures": m.get("peerchat_store_write_failures_total", 0.0),
            "slow_consumers": m.get("peerchat_slow_consumers_dropped_total", 0.0),
        }

    return counts


# --- a server subprocess ---------------------------------------------------------------------


class Server:
    """``python -m peerchat_server --port 0 --quiet ...``, its output in a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        cmd = [sys.executable, "-m", "peerchat_server", "--port", "0", "--quiet", *args]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.port = 0
        self.metrics_port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> bytes:
        return self.log.read_bytes()

    def wait_started(self, with_metrics: bool = False, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        for _ in range(int(seconds / 0.02) + 1):
            out = self.output()
            port, mport = STARTED.search(out), METRICS_AT.search(out)
            if port and (mport or not with_metrics):
                self.port = int(port.group(1))
                self.metrics_port = int(mport.group(1)) if mport else 0
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the server did not start: {self.output()[-2000:]!r}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def trouble(self) -> list[str]:
        return trouble(self.output().decode(errors="replace"))


# --- 1. delivery with the server as a subprocess -------------------------------------------------


def subprocess_run(kind: str, a: argparse.Namespace, tmp: Path, rep: int) -> dict[str, Any]:
    folder = tmp / f"sub-{kind}-{rep}"
    folder.mkdir()
    store = "memory" if kind == "memory" else f"sqlite:///{folder / 'x.db'}"
    server = Server(["--store", store, "--metrics-port", "0", *UNLIMITED_FLAGS], folder / "out")
    try:
        server.wait_started(with_metrics=True)
        counts = metric_counts(server.metrics_port)
        result = asyncio.run(drive(server.port, server.pid, a, counts, kind != "memory"))
    finally:
        server.stop()
    result.update(setup="subprocess", store=kind, rep=rep, trouble=server.trouble())
    return result


# --- 2. delivery with the server in this process (and a slow disk) --------------------------------


class SlowDisk:
    """Stands in for the store's sqlite3 connection: each statement waits ``delay`` s
    first (a disk that takes that long per write), then runs on the real connection."""

    def __init__(self, real: sqlite3.Connection, delay: float) -> None:
        self.real = real
        self.delay = delay
        self.statements = 0

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        time.sleep(self.delay)
        return self.real.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        time.sleep(self.delay)
        return self.real.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def inprocess_once(kind: str, a: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from peerchat_server.config import ServerConfig
    from peerchat_server.console import Console
    from peerchat_server.server import ChatServer

    log = io.StringIO()
    store = "memory" if kind == "memory" else f"sqlite:///{folder / 'x.db'}"
    config = ServerConfig(host="127.0.0.1", port=0, store=store, **UNLIMITED)
    server = ChatServer(config, Console(log, color=False, quiet=True))
    await server.start()
    slow = None
    if kind == "sqlite-slow":
        slow = SlowDisk(server.relay.store._db, a.slow_ms / 1000)  # type: ignore[attr-defined]
        server.relay.store._db = slow  # type: ignore[attr-defined]
    stats = server.relay.stats

    async def counts() -> dict[str, float]:
        return {
            "written": stats.store_written,
            "dropped": stats.store_dropped,
            "failures": stats.store_failures,
            "slow_consumers": stats.slow_consumers,
        }

    try:
        result = await drive(server.port, os.getpid(), a, counts, kind != "memory")
    finally:
        if slow is not None:
            server.relay.store._db = slow.real  # type: ignore[attr-defined]
        await server.stop()
    result.update(
        setup="in-process",
        store=kind,
        statements=slow.statements if slow else None,
        totals={"store_written": stats.store_written, "store_dropped": stats.store_dropped,
                "store_failures": stats.store_failures},
        trouble=trouble(log.getvalue()),
    )  # fmt: skip
    return result


def inprocess_run(kind: str, a: argparse.Namespace, tmp: Path, rep: int) -> dict[str, Any]:
    folder = tmp / f"in-{kind}-{rep}"
    folder.mkdir()
    result = asyncio.run(inprocess_once(kind, a, folder))
    result["rep"] = rep
    return result


# --- 3. kill -9 ----------------------------------------------------------------------------------


async def _welcomed(reader: asyncio.StreamReader) -> None:
    for _ in range(200):
        line = await asyncio.wait_for(reader.readline(), 10)
        if line.startswith(b'{"type":"welcome"'):
            return
        if not line:
            break
    raise RuntimeError("no welcome")


async def _count_frames(
    reader: asyncio.StreamReader, got: dict[int, bytes], reads: list[int]
) -> int:
    """Message frames until EOF, by id (with their text); per read(), how many (at most
    one 256 KiB recv() of asyncio's, about 2,500 frames: no measure of a pass, hence
    only in the JSON). Duplicates returned."""
    rest, dups = b"", 0
    for _ in range(LOOP_CAP):
        try:
            chunk = await reader.read(BIG_READ)
        except ConnectionError:
            chunk = b""
        if not chunk:
            return dups
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        frames = FRAME.findall(data, 0, cut)
        for id_, text in frames:
            dups += int(id_) in got
            got[int(id_)] = text
        if frames:
            reads.append(len(frames))
    return dups


async def _flood(writer: asyncio.StreamWriter, stop: asyncio.Event) -> int:
    """Plain lines ``k N`` at full speed (as fast as TCP takes them) until ``stop``;
    how many were handed to the socket."""
    wrote = 0
    stopped = asyncio.create_task(stop.wait())
    try:
        for _ in range(LOOP_CAP):
            if stop.is_set() or writer.is_closing():
                break
            block = range(wrote + 1, wrote + SENDER_BLOCK + 1)
            writer.write(b"".join(b"k %d\n" % n for n in block))
            wrote += SENDER_BLOCK
            drained = asyncio.ensure_future(writer.drain())
            await asyncio.wait({drained, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if drained.done() and drained.exception() is not None:
                break  # (the server is gone)
            drained.cancel()
    finally:
        stopped.cancel()
    return wrote


@dataclass
class Flood:
    """The kill trials' peers: a JSON receiver counting frames, and a plain sender."""

    receiver: asyncio.StreamWriter
    sender: asyncio.StreamWriter
    got: dict[int, bytes]
    reads: list[int]
    counting: asyncio.Task[int]
    notices: asyncio.Task[None]


async def open_flood(port: int) -> Flood:
    r_reader, r_writer = await _connect(port, HELLO % b"r", BIG_READ)
    await _welcomed(r_reader)
    got: dict[int, bytes] = {}
    reads: list[int] = []
    counting = asyncio.create_task(_count_frames(r_reader, got, reads))
    s_reader, s_writer = await _connect(port, b"")
    notices = asyncio.create_task(_drain_notices(s_reader))
    return Flood(r_writer, s_writer, got, reads, counting, notices)


async def flood_until_killed(server: Server, kill_after: float) -> dict[str, Any]:
    f = await open_flood(server.port)
    got, reads, counting, notices = f.got, f.reads, f.counting, f.notices
    r_writer, s_writer = f.receiver, f.sender
    killed = asyncio.Event()

    def kill() -> None:
        os.kill(server.pid, signal.SIGKILL)
        killed.set()

    asyncio.get_running_loop().call_later(kill_after, kill)
    try:
        wrote = await _flood(s_writer, killed)
        await asyncio.wait_for(killed.wait(), kill_after + 10)
        dups = await asyncio.wait_for(counting, 15)
    finally:
        notices.cancel()
        counting.cancel()
        for w in (r_writer, s_writer):
            w.close()
    return {"wrote": wrote, "got": got, "reads": reads, "duplicates": dups}


# --- 3b. what a pass hands the writer, and what is at risk (server in this process) ---------------


async def flood_client(a: argparse.Namespace) -> dict[str, Any]:
    """The client process's flood (``--flood``): the kill trials' traffic, stopped after
    ``a.kill_after`` s by resetting the sender's connection (what the server had not
    read yet goes: the end of the flood is as sharp as a kill)."""
    f = await open_flood(a.clients_for)
    got, reads, counting, notices = f.got, f.reads, f.counting, f.notices
    r_writer, s_writer = f.receiver, f.sender
    stop = asyncio.Event()
    try:
        print("ready 0", flush=True)
        await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 60)
        asyncio.get_running_loop().call_later(a.kill_after, stop.set)
        wrote = await _flood(s_writer, stop)
        s_writer.transport.abort()
        print("done", flush=True)
        for _ in range(30):  # until nothing comes for 1 s (at most 30 s)
            before = len(got)
            await asyncio.sleep(1.0)
            if len(got) == before:
                break
    finally:
        notices.cancel()
        counting.cancel()
        r_writer.close()
    return {"wrote": wrote, "received": len(got), "reads": reads}


def _count_passes(store: Any, passes: list[tuple[float, int, int]]) -> None:
    """Wrap the store's end-of-pass hand-over: each pass's messages, when it ended, and
    the messages said and not on disk then (the pass's, and those handed to the writer
    and not committed yet): what a kill -9 at that moment would lose."""
    original = store._hand_over

    def hand_over() -> None:
        pending = len(store._pending.messages)
        passes.append((time.monotonic(), pending, store._behind + pending))
        original()

    store._hand_over = hand_over


async def profile_once(a: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from peerchat_server.config import ServerConfig
    from peerchat_server.console import Console
    from peerchat_server.server import ChatServer

    log = io.StringIO()
    config = ServerConfig(
        host="127.0.0.1", port=0, store=f"sqlite:///{folder / 'x.db'}",
        catch_up_messages=CATCH_UP, history_messages=0, catch_up_total_bytes=0,
        history_bytes=1 << 30, **UNLIMITED,
    )  # fmt: skip
    server = ChatServer(config, Console(log, color=False, quiet=True))
    await server.start()
    store, stats = server.relay.store, server.relay.stats
    passes: list[tuple[float, int, int]] = []
    _count_passes(store, passes)
    proc = await start_client(server.port, "--flood", "--kill-after", str(a.kill_after))
    try:
        await _line(proc, 60, b"ready")
        await go(proc)
        started = time.monotonic()
        await _line(proc, a.kill_after + 30, b"done")
        flood_s = time.monotonic() - started
        at_stop = {"said": stats.messages, "written": stats.store_written,
                   "dropped": stats.store_dropped}  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)  # (what was sent, relayed)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def counts() -> dict[str, float]:
        return {"written": stats.store_written, "dropped": stats.store_dropped}

    drained, drain_s = await _drained(counts, stats.messages)
    await server.stop()
    return profile_row(passes, at_stop, result_of(out, err), flood_s, drain_s, drained,
                       {"said": stats.messages, "written": stats.store_written,
                        "dropped": stats.store_dropped, "failures": stats.store_failures},
                       trouble(log.getvalue()))  # fmt: skip


def profile_row(
    passes: list[tuple[float, int, int]],
    at_stop: dict[str, int],
    client: dict[str, Any],
    flood_s: float,
    drain_s: float,
    drained: bool,
    totals: dict[str, int],
    said: list[str],
) -> dict[str, Any]:
    busy = sorted(n for _, n, _ in passes if n) or [0]
    ordered = sorted(r for _, n, r in passes if n) or [0]
    times = [t for t, n, _ in passes if n] or [0.0]
    return {
        "flood_s": flood_s,
        "busy_s": times[-1] - times[0],
        "said_per_s": totals["said"] / max(1e-3, times[-1] - times[0]),
        "passes": len(busy),
        "per_pass_median": statistics.median(busy),
        "per_pass_p90": busy[int(0.9 * (len(busy) - 1))],
        "per_pass_max": busy[-1],
        "at_risk_median": statistics.median(ordered),
        "at_risk_p90": ordered[int(0.9 * (len(ordered) - 1))],
        "at_risk_max": ordered[-1],
        "at_stop": at_stop,
        "totals": totals,
        "drained": drained,
        "drain_s": drain_s,
        "client": {k: v for k, v in client.items() if k != "reads"},
        "trouble": said,
    }


def profile_run(a: argparse.Namespace, tmp: Path, rep: int) -> dict[str, Any]:
    folder = tmp / f"profile-{rep}"
    folder.mkdir()
    row = asyncio.run(profile_once(a, folder))
    row["rep"] = rep
    return row


def read_file(path: Path) -> dict[str, Any]:
    """What the SQLite file keeps, read directly (read-only) while no server has it."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = dict(db.execute("SELECT id, text FROM messages"))
        marked = db.execute("SELECT coalesce(max(forgot_id), 0) FROM rooms").fetchone()[0]
        meta = dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()
    return {"rows": rows, "marked_upto": int(marked), "meta": meta}


async def after_restart(port: int) -> dict[str, Any]:
    """A JSON peer's {"type":"history"}; then the id of a new line from a plain peer."""
    reader, writer = await _connect(port, HELLO % b"h")
    p_writer = None
    try:
        await _welcomed(reader)
        writer.write(b'{"type":"history"}\n')
        history, end = await _history(reader)
        _, p_writer = await _connect(port, b"after restart\n")
        first_new = await _first_new(reader)
    finally:
        for w in (writer, p_writer):
            if w is not None:
                w.close()
    return {"history": history, "end": end, "first_new": first_new}


async def _history(reader: asyncio.StreamReader) -> tuple[dict[int, str], str]:
    history: dict[int, str] = {}
    for _ in range(LOOP_CAP):
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:
            break
        if not line.startswith(b"{"):
            continue
        frame = json.loads(line)
        if frame["type"] == "message" and frame.get("history"):
            history[frame["id"]] = frame["text"]
        elif frame["type"] == "info" and frame["text"].startswith(("End of", "Nothing")):
            return history, frame["text"]
    raise RuntimeError("the history did not end")


async def _first_new(reader: asyncio.StreamReader) -> int:
    for _ in range(1000):
        line = await asyncio.wait_for(reader.readline(), 10)
        if line.startswith(b'{"type":"message"'):
            frame = json.loads(line)
            if frame["text"] == "after restart" and not frame.get("history"):
                return int(frame["id"])
    raise RuntimeError("the line said after the restart did not come")


def kill_trial(n: int, flood_s: float, tmp: Path, rng: random.Random) -> dict[str, Any]:
    folder = tmp / f"kill-{n}"
    folder.mkdir()
    path = folder / "x.db"
    args = ["--store", f"sqlite:///{path}", *KEEP_ALL, *UNLIMITED_FLAGS]
    started = time.monotonic()
    first = Server(args, folder / "before.out")
    try:
        first.wait_started()
        kill_after = flood_s + rng.uniform(0, 0.25)
        flood = asyncio.run(flood_until_killed(first, kill_after))
    finally:
        first.kill()
    kept = read_file(path)
    second = Server(args, folder / "after.out")
    try:
        second.wait_started()
        after = asyncio.run(after_restart(second.port))
    finally:
        second.stop()
    row = judge(flood, kept, after)
    kept_line = KEPT_LINE.search(second.output())
    row.update(
        trial=n,
        kill_after=kill_after,
        seconds=time.monotonic() - started,
        restart_said=kept_line.group(0).decode() if kept_line else "",
        exit_before=first.proc.returncode,
        too_slow=b"too slow" in first.output(),
        trouble=first.trouble() + second.trouble(),
    )
    return row


def judge(flood: dict[str, Any], kept: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a trial's figures say: loss, the history, the ids after the restart."""
    got, rows, history = flood["got"], kept["rows"], after["history"]
    # --catch-up lets the oldest go only once the file holds that many of the room's.
    pruned = min(rows) - 1 if len(rows) >= CATCH_UP else 0
    lost = sorted(i for i in got if i > pruned and i not in rows)
    reads = flood["reads"] or [0]
    seen = max([0, *got, *rows])
    return {
        "wrote": flood["wrote"],
        "received": len(got),
        "duplicates": flood["duplicates"],
        "kept": len(rows),
        "pruned_upto": pruned,
        "marked_upto": kept["marked_upto"],  # the store's own mark of a gap (rooms table)
        "lost": len(lost),
        "lost_ids": [lost[0], lost[-1]] if lost else [],
        "kept_not_received": sum(1 for i in rows if i not in got),
        "text_mismatch": sum(1 for i, t in rows.items() if i in got and got[i] != t.encode()),
        "per_read_median": statistics.median(reads),
        "per_read_max": max(reads),
        "history": len(history),
        "history_end": after["end"],
        "history_missing": sum(1 for i in rows if i not in history),
        "received_not_in_history": sum(1 for i in got if i > pruned and i not in history),
        "max_id_before": seen,
        "first_id_after": after["first_new"],
        "ids_ok": after["first_new"] > seen,
        "meta": kept["meta"],
    }


# --- report --------------------------------------------------------------------------------------


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def delivery_table(runs: list[dict[str, Any]], a: argparse.Namespace) -> str:
    out = [
        f"\n### Delivery: 1 sender → {a.receivers} plain receivers, {a.messages:,} lines, "
        f"window {a.window}, {a.batch} a write (median of {a.reps}; msgs/s min–max)\n",
        "| server | store | msgs/s | deliveries/s | p50 ms | p99 ms | server CPU s / 1,000 "
        "msgs | CPU busy: server / client | written at last delivery | written (drain s) | "
        "dropped | failures | out of order | server said |",
        "|" + " --- |" * 14,
    ]
    keys: list[tuple[str, str]] = []
    for r in runs:
        if (r["setup"], r["store"]) not in keys:
            keys.append((r["setup"], r["store"]))
    for setup, store in keys:
        rs = [r for r in runs if (r["setup"], r["store"]) == (setup, store)]
        rates = [r["msgs_per_s"] for r in rs]
        name = f"sqlite + {a.slow_ms:g} ms/statement" if store == "sqlite-slow" else store
        said = briefly([t for r in rs for t in r["trouble"]]) or "-"
        out.append(
            f"| {setup} | {name} | {_med(rs, 'msgs_per_s'):,.0f} ({min(rates):,.0f}–"
            f"{max(rates):,.0f}) | {_med(rs, 'deliveries_per_s'):,.0f} | "
            f"{_med(rs, 'p50_ms'):.2f} | {_med(rs, 'p99_ms'):.2f} | "
            f"{_med(rs, 'cpu_s_per_1000'):.4f} | {_med(rs, 'server_busy'):.0%} / "
            f"{_med(rs, 'client_busy'):.0%} | {_med(rs, 'written_at_done'):,.0f} | "
            f"{_med(rs, 'written'):,.0f} ({_med(rs, 'drain_s'):.2f}) | "
            f"{sum(r['dropped'] for r in rs):,.0f} | {sum(r['failures'] for r in rs):,.0f} | "
            f"{sum(r['out_of_order'] for r in rs)} | {said} |"
        )
    return "\n".join(out)


def kill_table(trials: list[dict[str, Any]], per_pass: float | None) -> str:
    out = [
        "\n### kill -9 after a plain sender's flood at full speed (1 JSON receiver)\n",
        "| trial | flood s | lines handed to the socket | received | kept in file | lost "
        "| lost, in passes | store said too slow | /history gave | received not in history "
        "| max id before | first id after | ids ok |",
        "|" + " --- |" * 13,
    ]
    for t in trials:
        passes = f"{t['lost'] / per_pass:.1f}" if per_pass else "?"
        out.append(
            f"| {t['trial']} | {t['kill_after']:.2f} | {t['wrote']:,} | {t['received']:,} | "
            f"{t['kept']:,} | "
            f"{t['lost']:,} | {passes} | {'yes' if t['too_slow'] else 'no'} | "
            f"{t['history']:,} | {t['received_not_in_history']:,} | {t['max_id_before']:,} | "
            f"{t['first_id_after']:,} | {'yes' if t['ids_ok'] else 'NO'} |"
        )
    lost = [t["lost"] for t in trials]
    received = sum(t["received"] for t in trials)
    out.append(
        f"\nlost: max {max(lost):,}, median {statistics.median(lost):,g}, mean "
        f"{statistics.mean(lost):,.0f} over {len(trials)} trials ({sum(lost) / received:.1%} "
        f"of {received:,} received); trials losing more than one pass"
        f"{f' ({per_pass:,g} lines, the median pass below)' if per_pass else ''}: "
        f"{sum(1 for t in trials if per_pass and t['lost'] > per_pass)}; trials whose first "
        f"id after the restart is not above every id before: "
        f"{sum(1 for t in trials if not t['ids_ok'])}"
    )
    return "\n".join(out)


def profile_table(rows: list[dict[str, Any]], a: argparse.Namespace) -> str:
    out = [
        f"\n### The same flood for {a.kill_after:g} s, server in this process: lines per "
        "loop pass, and lines said but not on disk\n",
        "| rep | lines said / s | passes | lines per pass (median / p90 / max) | not on disk "
        "at a pass's end (median / p90 / max) | dropped by the store | written | drain s | "
        "server said |",
        "|" + " --- |" * 9,
    ]
    for r in rows:
        said = briefly(r["trouble"]) or "-"
        out.append(
            f"| {r['rep']} | {r['said_per_s']:,.0f} | {r['passes']:,} | "
            f"{r['per_pass_median']:,g} / {r['per_pass_p90']:,} / {r['per_pass_max']:,} | "
            f"{r['at_risk_median']:,g} / {r['at_risk_p90']:,} / {r['at_risk_max']:,} | "
            f"{r['totals']['dropped']:,} | {r['totals']['written']:,} | {r['drain_s']:.2f} | "
            f"{said} |"
        )
    return "\n".join(out)


def delivery_anomalies(deliveries: list[dict[str, Any]]) -> list[str]:
    """What looked wrong in the delivery runs, in words."""
    notes = []
    for r in deliveries:
        what = [f"{k} {r[k]:,.0f}" for k in ("dropped", "failures", "slow_consumers") if r[k]]
        if r["out_of_order"]:
            what.append(f"{r['out_of_order']} reads out of order")
        if not r["drained"]:
            what.append("the store never caught up")
        if r["trouble"]:
            what.append(f"server said: {briefly(r['trouble'])}")
        if what:
            notes.append(f"{r['setup']} {r['store']} rep {r['rep']}: " + ", ".join(what))
    return notes


def kill_anomalies(trials: list[dict[str, Any]], per_pass: float | None) -> list[str]:
    """What looked wrong in the kill -9 trials, in words."""
    notes = []
    for t in trials:
        what = [f"{k} {t[k]}" for k in ("duplicates", "text_mismatch") if t[k]]
        if per_pass and t["lost"] > per_pass:
            what.append(f"lost {t['lost']:,} > one pass ({per_pass:,g})")
        if not t["ids_ok"]:
            what.append("an id after the restart is not above those before")
        if t["history_missing"]:
            what.append(f"/history left out {t['history_missing']} kept messages")
        if "did not stop cleanly" not in t["restart_said"]:
            what.append("the restart did not say the last run stopped uncleanly")
        if t["trouble"]:
            what.append(f"server said: {briefly(t['trouble'])}")
        if what:
            notes.append(f"kill trial {t['trial']}: " + ", ".join(what))
    return notes


def profile_anomalies(rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    for r in rows:
        what = []
        if r["totals"]["dropped"] or r["totals"]["failures"]:
            what.append(f"dropped {r['totals']['dropped']:,}, failed {r['totals']['failures']}")
        if not r["drained"]:
            what.append("the store never caught up")
        if r["trouble"]:
            what.append(f"server said: {briefly(r['trouble'])}")
        if what:
            notes.append(f"pass profile rep {r['rep']}: " + ", ".join(what))
    return notes


# --- main ----------------------------------------------------------------------------------------

PARTS = ("subprocess", "inprocess", "profile", "kill")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    ap.add_argument("--receivers", type=int, default=20)
    ap.add_argument("--messages", type=int, default=None, help="lines a run (100,000)")
    ap.add_argument("--window", type=int, default=500, help="lines ahead of the slowest")
    ap.add_argument("--batch", type=int, default=50, help="lines a write()")
    ap.add_argument("--reps", type=int, default=None, help="runs of each set-up (3)")
    ap.add_argument("--slow-ms", type=float, default=5.0, help="ms per statement, slow disk")
    ap.add_argument("--trials", type=int, default=None, help="kill -9 trials (20)")
    ap.add_argument("--kill-after", type=float, default=1.0, help="s of flood before kill")
    ap.add_argument("--long-trials", type=int, default=None, help="longer kill trials (3)")
    ap.add_argument("--long-kill-after", type=float, default=2.5, help="their flood, s")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="a run's deadline")
    ap.add_argument("--only", choices=PARTS, action="append", help="(repeatable)")
    ap.add_argument("--seed", type=int, default=9, help="the kill times' jitter")
    ap.add_argument("--out", type=Path, default=Path("/tmp/peerchat-store-bench.json"))
    ap.add_argument("--clients-for", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--flood", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    quick = a.quick
    a.messages = a.messages or (20_000 if quick else 100_000)
    a.reps = a.reps or (1 if quick else 3)
    a.trials = a.trials or (5 if quick else 20)
    a.long_trials = (1 if quick else 3) if a.long_trials is None else a.long_trials
    for name in ("messages", "reps", "trials", "receivers", "window", "batch"):
        if not 0 < getattr(a, name) <= 1_000_000:
            ap.error(f"--{name} must be from 1 to 1,000,000")
    if not (0 < a.kill_after <= 3 and 0 < a.long_kill_after <= 3 and 0 <= a.long_trials <= 100):
        ap.error("--kill-after and --long-kill-after: up to 3 s; --long-trials: up to 100")
    return a


def run_deliveries(a: argparse.Namespace, tmp: Path, parts: set[str]) -> list[dict[str, Any]]:
    runs = []
    for rep in range(a.reps):
        if "subprocess" in parts:
            kinds = ["memory", "sqlite"] if rep % 2 == 0 else ["sqlite", "memory"]
            for kind in kinds:
                runs.append(subprocess_run(kind, a, tmp, rep))
                print(f"  subprocess {kind} rep {rep}: {runs[-1]['msgs_per_s']:,.0f} msgs/s",
                      flush=True)  # fmt: skip
        if "inprocess" in parts:
            kinds = ["memory", "sqlite", "sqlite-slow"]
            for kind in kinds[rep % 3 :] + kinds[: rep % 3]:
                runs.append(inprocess_run(kind, a, tmp, rep))
                print(f"  in-process {kind} rep {rep}: {runs[-1]['msgs_per_s']:,.0f} msgs/s",
                      flush=True)  # fmt: skip
    return runs


def run_kills(a: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rng = random.Random(a.seed)
    trials = []
    floods = [a.kill_after] * a.trials + [a.long_kill_after] * a.long_trials
    for n, flood_s in enumerate(floods, 1):
        trials.append(kill_trial(n, flood_s, tmp, rng))
        t = trials[-1]
        print(f"  kill trial {n}: received {t['received']:,}, lost {t['lost']:,} "
              f"({t['seconds']:.1f} s)", flush=True)  # fmt: skip
    return trials


def run_profiles(a: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for rep in range(a.reps):
        rows.append(profile_run(a, tmp, rep))
        r = rows[-1]
        print(f"  pass profile rep {rep}: {r['per_pass_median']:,g} lines a pass (median), "
              f"{r['at_risk_max']:,} at most not on disk", flush=True)  # fmt: skip
    return rows


def report(result: dict[str, Any], a: argparse.Namespace) -> None:
    deliveries, trials, profiles = result["deliveries"], result["kill_trials"], result["profiles"]
    per_pass = statistics.median(r["per_pass_median"] for r in profiles) if profiles else None
    result["notes"] = (
        delivery_anomalies(deliveries)
        + profile_anomalies(profiles)
        + kill_anomalies(trials, per_pass)
    )
    if deliveries:
        print(delivery_table(deliveries, a))
    if trials:
        print(kill_table(trials, per_pass))
    if profiles:
        print(profile_table(profiles, a))
    print("\nwhat looked wrong:" + ("\n- ".join(["", *result["notes"]]) or " nothing"))


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.clients_for:
        return client_main(a)
    parts = set(a.only or PARTS)
    started = time.monotonic()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "args": {k: str(v) for k, v in vars(a).items()},
    }
    with tempfile.TemporaryDirectory(prefix="peerchat-store-bench-") as name:
        tmp = Path(name)
        print(f"peerchat store benchmark{' (quick)' if a.quick else ''}, files in {tmp}")
        result["deliveries"] = run_deliveries(a, tmp, parts)
        result["profiles"] = run_profiles(a, tmp) if "profile" in parts else []
        result["kill_trials"] = run_kills(a, tmp) if "kill" in parts else []
    report(result, a)
    result["seconds"] = time.monotonic() - started
    result["load_after"] = os.getloadavg()[0]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\n{result['seconds']:.0f} s; every figure in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
