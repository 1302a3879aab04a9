"""What ``--store sqlite:///PATH`` costs the chat, and what ``kill -9`` loses of it.

    .venv/bin/python -m bench.store            # about 3 minutes on 2 idle cores
    .venv/bin/python -m bench.store --quick    # under a minute
    .venv/bin/python bench/store.py --help     # (it needs no other bench module)

Three measurements, every one on 127.0.0.1, every server stopped by its PID, every wait
with a deadline and every loop with a count:

1. **Delivery, server as a subprocess** (``python -m peerchat_server --port 0 --quiet``,
   abuse limits off as in bench/run.py: ``--flood-rate 0 --address-flood-rate 0
   --connect-rate 0 --max-per-address 0``, and ``--rename-rate 0 --address-wait-rate 0
   --max-connections 0`` so that the receivers' ``/nick`` and the room's pacing are
   not limited), ``--store memory`` against ``--store sqlite:///TMP/x.db`` (a fresh file
   each run), each ``--reps`` times in alternating order. A client process (this file,
   ``--clients-for PORT``) connects ``--receivers`` plain-text receivers (raw asyncio
   sockets, lines as ``nc`` reads them; each says ``/nick rNN``) and one plain sender,
   sends warm-up lines until every receiver has one, then the sender writes
   ``--messages`` lines ``m SEQ T`` (T: ``time.monotonic_ns()`` at the write), at most
   ``--batch`` a write and at most ``--window`` ahead of the slowest receiver: as fast
   as the receivers read. A delivery's latency is the time its receiver's read()
   returned less T; messages/s is the messages over first write to last delivery.
   The server's CPU is utime + stime of its PID (/proc/PID/stat, every thread: the
   store's writer included), from the first write until the store has written every
   line (``peerchat_store_messages_written_total`` from ``--metrics-port``), per 1,000
   messages.
2. **Delivery, server in this process** (``ChatServer`` in this file's own event loop,
   the clients in the client process as above): ``memory``, ``sqlite``, and
   ``sqlite-slow``: the store's connection (``store._db``) replaced, once the server has
   started, by a proxy whose every ``execute()`` and ``executemany()`` sleeps
   ``--slow-ms`` (5 ms) first, as tests/server/test_store.py's ``Stuck`` does. CPU is
   this process's (the server and its writer thread; the clients are elsewhere).
   ``relay.stats.store_written`` / ``store_dropped`` / ``store_failures`` are read at
   the last delivery and once the writer has caught up.
3. **kill -9**: ``--trials`` times, a server on a fresh file with ``--catch-up 100000
   --history 0 --catch-up-total-bytes 0`` and ``--history-bytes 1073741824`` (without
   it a room's log in memory, hence /history, holds at most 256 KiB of text: a few
   thousand of these lines, however many the file keeps). One JSON receiver (protocol
   v3) counts the ``message`` frames it gets while one plain sender writes ``k N`` lines
   at full speed (256 a write, no window); after about 1 s (``--kill-after`` plus up to
   0.25 s) the server gets SIGKILL. The file is then read directly (read-only), the
   server restarted on it, and a new JSON peer asks ``{"type":"history"}``; a plain
   peer then says one line, whose id must be above every id seen before the kill.
   *Lost*: ids the receiver got that the file does not keep (nor pruned by
   --catch-up). *Per read*: message frames per read() of the receiver, the closest
   this can see to one loop pass (a pass's frames leave in one write per peer).

The tables go to stdout as markdown, every figure to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
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
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TICK = os.sysconf("SC_CLK_TCK")
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
KEEP_ALL = (
    "--catch-up", "100000", "--history", "0", "--catch-up-total-bytes", "0",
    "--history-bytes", str(1 << 30),
)  # fmt: skip
STARTED = re.compile(rb"\[SUCCESS\] Server started on 127\.0\.0\.1:(\d+)")
METRICS_AT = re.compile(rb"Metrics at http://127\.0\.0\.1:(\d+)/metrics")
KEPT_LINE = re.compile(rb"\[INFO\] History and sessions are kept in [^\n]*")
#: What in a server's output is worth a look.
TROUBLE = ("[ERROR]", "[WARNING]", "Traceback", "Exception", "too slow", "slow consumer")
HELLO = b'{"type":"hello","version":3,"nick":"%s"}\n'
READ_BYTES = 256 * 1024
SENDER_BLOCK = 256  # lines a write in the kill trials
LOOP_CAP = 10_000_000  # a bound for loops that end on EOF or a deadline


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def trouble(output: str) -> list[str]:
    """The lines of a server's output worth reporting."""
    return [line for line in output.splitlines() if any(t in line for t in TROUBLE)][:20]


# --- the client process: receivers and a sender --------------------------------------------


@dataclass
class Receiver:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    got: int = 0
    out_of_order: int = 0
    warm: bool = False
    closed: bool = False
    done_ns: int = 0
    latencies: list[int] = field(default_factory=list)


def _take(rx: Receiver, lines: list[bytes], now: int, total: int) -> None:
    for line in lines:
        if not line.startswith(b"<"):
            continue  # a notice (a join, a rename)
        parts = line.split()
        if len(parts) != 4:
            continue
        if parts[1] == b"w":
            rx.warm = True
        elif parts[1] == b"m":
            rx.got += 1
            if int(parts[2]) != rx.got:
                rx.out_of_order += 1
            rx.latencies.append(now - int(parts[3]))
    if rx.got >= total and not rx.done_ns:
        rx.done_ns = now


async def _receive(rx: Receiver, progress: asyncio.Event, total: int) -> None:
    rest = b""
    for _ in range(LOOP_CAP):
        chunk = await rx.reader.read(READ_BYTES)
        now = time.monotonic_ns()
        if not chunk:
            rx.closed = True
            progress.set()
            return
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        _take(rx, lines, now, total)
        progress.set()


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
    sender: asyncio.StreamWriter, rxs: list[Receiver], ev: asyncio.Event, a: argparse.Namespace
) -> int:
    """Write ``a.messages`` lines, at most ``a.window`` ahead of the slowest receiver;
    the time of the first write."""
    seq, first = 0, 0
    for _ in range(LOOP_CAP):
        if seq >= a.messages:
            break
        room = a.window - (seq - min(rx.got for rx in rxs))
        if room <= 0:
            await _wait_all(rxs, ev, lambda rx: seq - rx.got < a.window, 30)
            continue
        n = min(a.batch, room, a.messages - seq)
        t = time.monotonic_ns()
        first = first or t
        sender.write(b"".join(b"m %d %d\n" % (s, t) for s in range(seq + 1, seq + n + 1)))
        seq += n
        await sender.drain()
    return first


async def _connect(port: int, first: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(first)
    return reader, writer


async def deliver(a: argparse.Namespace) -> dict[str, Any]:
    """The client process's run: ``ready N`` (warm-up lines), wait for ``go`` on stdin,
    ``done`` at the last delivery, then ``result {json}``."""
    ev = asyncio.Event()
    rxs, tasks = [], []
    for i in range(a.receivers):
        rx = Receiver(*await _connect(a.clients_for, b"/nick r%02d\n" % i))
        rxs.append(rx)
        tasks.append(asyncio.create_task(_receive(rx, ev, a.messages)))
    s_reader, sender = await _connect(a.clients_for, b"/nick s\n")
    tasks.append(asyncio.create_task(_drain_notices(s_reader)))
    try:
        warm = await _warm_up(sender, rxs, ev)
        print(f"ready {warm}", flush=True)
        go = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 60)
        if not go.startswith("go"):
            raise RuntimeError(f"expected go, not {go!r}")
        first = await _send(sender, rxs, ev, a)
        await _wait_all(rxs, ev, lambda rx: rx.got >= a.messages, a.max_seconds)
        print("done", flush=True)
    finally:
        for task in tasks:
            task.cancel()
        for w in [rx.writer for rx in rxs] + [sender]:
            w.close()
    last = max(rx.done_ns for rx in rxs)
    merged = sorted(v for rx in rxs for v in rx.latencies)
    seconds = (last - first) / 1e9
    return {
        "warm": warm,
        "seconds": seconds,
        "msgs_per_s": a.messages / seconds,
        "deliveries_per_s": a.messages * a.receivers / seconds,
        "p50_ms": percentile(merged, 0.50) / 1e6,
        "p99_ms": percentile(merged, 0.99) / 1e6,
        "max_ms": merged[-1] / 1e6,
        "deliveries": len(merged),
        "out_of_order": sum(rx.out_of_order for rx in rxs),
    }


def client_main(a: argparse.Namespace) -> int:
    result = asyncio.run(deliver(a))
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


async def drive(port: int, pid: int, a: argparse.Namespace, counts: Counts, store: bool) -> dict:
    """Run the client process against ``port``; CPU of ``pid`` from its first line to
    the store having written everything (``store``: a store that writes)."""
    cmd = [sys.executable, str(HERE), "--clients-for", str(port), "--receivers",
           str(a.receivers), "--messages", str(a.messages), "--window", str(a.window),
           "--batch", str(a.batch), "--max-seconds", str(a.max_seconds)]  # fmt: skip
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=pipe, stdout=pipe, stderr=pipe)
    try:
        warm = int((await _line(proc, 60, b"ready")).split()[1])
        before, cpu0 = await counts(), cpu_seconds(pid)
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        await _line(proc, a.max_seconds + 30, b"done")
        cpu1, at_done = cpu_seconds(pid), await counts()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    results = [x for x in out.decode().splitlines() if x.startswith("result ")]
    if not results:
        raise RuntimeError(f"client gave no result: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(results[0].removeprefix("result "))
    target = int(before["written"] + before["dropped"]) + a.messages
    drained, drain_s = await _drained(counts, target) if store else (True, 0.0)
    cpu2, after = cpu_seconds(pid), await counts()
    result.update(
        warm=warm,
        cpu_s_delivery=cpu1 - cpu0,
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


def metrics(port: int) -> dict[str, float]:
    """A server's /metrics, as {name: value} (unlabelled samples only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


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


async def _count_frames(reader: asyncio.StreamReader, got: dict[int, str], reads: list[int]) -> int:
    """Message frames until EOF, by id; per read(), how many. Duplicates returned."""
    rest, dups = b"", 0
    for _ in range(LOOP_CAP):
        try:
            chunk = await reader.read(READ_BYTES)
        except ConnectionError:
            chunk = b""
        if not chunk:
            return dups
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        n = 0
        for line in lines:
            if line.startswith(b'{"type":"message"'):
                frame = json.loads(line)
                dups += frame["id"] in got
                got[frame["id"]] = frame["text"]
                n += 1
        if n:
            reads.append(n)
    return dups


async def _flood(writer: asyncio.StreamWriter, killed: asyncio.Event) -> int:
    """Plain lines ``k N`` at full speed until the server is killed; how many written."""
    wrote = 0
    for _ in range(LOOP_CAP):
        if killed.is_set():
            break
        writer.write(b"".join(b"k %d\n" % n for n in range(wrote + 1, wrote + SENDER_BLOCK + 1)))
        wrote += SENDER_BLOCK
        try:
            await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            break
    return wrote


async def flood_until_killed(server: Server, kill_after: float) -> dict[str, Any]:
    r_reader, r_writer = await _connect(server.port, HELLO % b"r")
    await _welcomed(r_reader)
    got: dict[int, str] = {}
    reads: list[int] = []
    counting = asyncio.create_task(_count_frames(r_reader, got, reads))
    s_reader, s_writer = await _connect(server.port, b"")
    notices = asyncio.create_task(_drain_notices(s_reader))
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


def read_file(path: Path) -> dict[str, Any]:
    """What the SQLite file keeps, read directly (read-only) while no server has it."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = dict(db.execute("SELECT id, text FROM messages"))
        pruned = db.execute("SELECT coalesce(max(forgot_id), 0) FROM rooms").fetchone()[0]
        meta = dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()
    return {"rows": rows, "pruned_upto": int(pruned), "meta": meta}


async def after_restart(port: int) -> dict[str, Any]:
    """A JSON peer's {"type":"history"}; then the id of a new line from a plain peer."""
    reader, writer = await _connect(port, HELLO % b"h")
    p_reader, p_writer = None, None
    try:
        await _welcomed(reader)
        writer.write(b'{"type":"history"}\n')
        history, end = await _history(reader)
        p_reader, p_writer = await _connect(port, b"after restart\n")
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


def kill_trial(n: int, a: argparse.Namespace, tmp: Path, rng: random.Random) -> dict[str, Any]:
    folder = tmp / f"kill-{n}"
    folder.mkdir()
    path = folder / "x.db"
    args = ["--store", f"sqlite:///{path}", *KEEP_ALL, *UNLIMITED_FLAGS]
    started = time.monotonic()
    first = Server(args, folder / "before.out")
    try:
        first.wait_started()
        kill_after = a.kill_after + rng.uniform(0, 0.25)
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
        trouble=first.trouble() + second.trouble(),
    )
    return row


def judge(flood: dict[str, Any], kept: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a trial's figures say: loss, the history, the ids after the restart."""
    got, rows, history = flood["got"], kept["rows"], after["history"]
    pruned = kept["pruned_upto"]
    lost = sorted(i for i in got if i > pruned and i not in rows)
    reads = flood["reads"] or [0]
    seen = max([0, *got, *rows])
    return {
        "wrote": flood["wrote"],
        "received": len(got),
        "duplicates": flood["duplicates"],
        "kept": len(rows),
        "pruned_upto": pruned,
        "lost": len(lost),
        "lost_ids": [lost[0], lost[-1]] if lost else [],
        "kept_not_received": sum(1 for i in rows if i not in got),
        "text_mismatch": sum(1 for i, t in rows.items() if i in got and got[i] != t),
        "per_read_median": statistics.median(reads),
        "per_read_max": max(reads),
        "lost_reads": len(lost) / max(1.0, statistics.median(reads)),
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
        "msgs | written at last delivery | written (drain s) | dropped | failures | "
        "out of order | server said |",
        "|" + " --- |" * 13,
    ]
    keys: list[tuple[str, str]] = []
    for r in runs:
        if (r["setup"], r["store"]) not in keys:
            keys.append((r["setup"], r["store"]))
    for setup, store in keys:
        rs = [r for r in runs if (r["setup"], r["store"]) == (setup, store)]
        rates = [r["msgs_per_s"] for r in rs]
        name = f"sqlite + {a.slow_ms:g} ms/statement" if store == "sqlite-slow" else store
        said = "; ".join(sorted({t for r in rs for t in r["trouble"]}))[:200] or "-"
        out.append(
            f"| {setup} | {name} | {_med(rs, 'msgs_per_s'):,.0f} ({min(rates):,.0f}–"
            f"{max(rates):,.0f}) | {_med(rs, 'deliveries_per_s'):,.0f} | "
            f"{_med(rs, 'p50_ms'):.2f} | {_med(rs, 'p99_ms'):.2f} | "
            f"{_med(rs, 'cpu_s_per_1000'):.4f} | {_med(rs, 'written_at_done'):,.0f} | "
            f"{_med(rs, 'written'):,.0f} ({_med(rs, 'drain_s'):.2f}) | "
            f"{sum(r['dropped'] for r in rs):,.0f} | {sum(r['failures'] for r in rs):,.0f} | "
            f"{sum(r['out_of_order'] for r in rs)} | {said} |"
        )
    return "\n".join(out)


def kill_table(trials: list[dict[str, Any]]) -> str:
    out = [
        "\n### kill -9 after ~1 s of a plain sender at full speed (JSON receiver)\n",
        "| trial | lines written | received | kept in file | lost | frames per read "
        "(median / max) | lost, in reads | /history gave | received not in history "
        "| max id before | first id after | ids ok |",
        "|" + " --- |" * 12,
    ]
    for t in trials:
        out.append(
            f"| {t['trial']} | {t['wrote']:,} | {t['received']:,} | {t['kept']:,} | "
            f"{t['lost']:,} | {t['per_read_median']:g} / {t['per_read_max']} | "
            f"{t['lost_reads']:.1f} | {t['history']:,} | {t['received_not_in_history']:,} | "
            f"{t['max_id_before']:,} | {t['first_id_after']:,} | "
            f"{'yes' if t['ids_ok'] else 'NO'} |"
        )
    lost = [t["lost"] for t in trials]
    out.append(
        f"\nlost: max {max(lost):,}, median {statistics.median(lost):g}, mean "
        f"{statistics.mean(lost):.1f} over {len(trials)} trials; trials losing more than "
        f"the largest read: {sum(1 for t in trials if t['lost'] > t['per_read_max'])}; "
        f"ids not above those before the kill: {sum(1 for t in trials if not t['ids_ok'])}"
    )
    return "\n".join(out)


def anomalies(deliveries: list[dict[str, Any]], trials: list[dict[str, Any]]) -> list[str]:
    """What looked wrong, in words."""
    notes = []
    for r in deliveries:
        what = [f"{k} {r[k]:,.0f}" for k in ("dropped", "failures", "slow_consumers") if r[k]]
        if r["out_of_order"]:
            what.append(f"{r['out_of_order']} out of order")
        if not r["drained"]:
            what.append("the store never caught up")
        if r["trouble"]:
            what.append(f"server said: {r['trouble'][:3]}")
        if what:
            notes.append(f"{r['setup']} {r['store']} rep {r['rep']}: " + ", ".join(what))
    for t in trials:
        what = [f"{k} {t[k]}" for k in ("duplicates", "text_mismatch") if t[k]]
        if t["lost"] > t["per_read_max"]:
            what.append(f"lost {t['lost']} > largest read {t['per_read_max']}")
        if not t["ids_ok"]:
            what.append("an id after the restart is not above those before")
        if t["history_missing"]:
            what.append(f"/history left out {t['history_missing']} kept messages")
        if "did not stop cleanly" not in t["restart_said"]:
            what.append("the restart did not say the last run stopped uncleanly")
        if t["trouble"]:
            what.append(f"server said: {t['trouble'][:3]}")
        if what:
            notes.append(f"kill trial {t['trial']}: " + ", ".join(what))
    return notes


# --- main ----------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    ap.add_argument("--receivers", type=int, default=20)
    ap.add_argument("--messages", type=int, default=None, help="lines a run (20,000)")
    ap.add_argument("--window", type=int, default=500, help="lines ahead of the slowest")
    ap.add_argument("--batch", type=int, default=50, help="lines a write()")
    ap.add_argument("--reps", type=int, default=None, help="runs of each store (3)")
    ap.add_argument("--slow-ms", type=float, default=5.0, help="ms per statement, slow disk")
    ap.add_argument("--trials", type=int, default=None, help="kill -9 trials (20)")
    ap.add_argument("--kill-after", type=float, default=1.0, help="s of flood before kill")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="a run's deadline")
    ap.add_argument("--only", choices=("subprocess", "inprocess", "kill"), action="append")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--out", type=Path, default=Path("/tmp/peerchat-store-bench.json"))
    ap.add_argument("--clients-for", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    quick = a.quick
    a.messages = a.messages or (5_000 if quick else 20_000)
    a.reps = a.reps or (1 if quick else 3)
    a.trials = a.trials or (5 if quick else 20)
    for name in ("messages", "reps", "trials", "receivers", "window", "batch"):
        if not 0 < getattr(a, name) <= 1_000_000:
            ap.error(f"--{name} must be from 1 to 1,000,000")
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


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.clients_for:
        return client_main(a)
    parts = set(a.only or ("subprocess", "inprocess", "kill"))
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
        deliveries = run_deliveries(a, tmp, parts)
        trials = []
        if "kill" in parts:
            rng = random.Random(a.seed)
            for n in range(1, a.trials + 1):
                trials.append(kill_trial(n, a, tmp, rng))
                t = trials[-1]
                print(f"  kill trial {n}: received {t['received']:,}, lost {t['lost']:,} "
                      f"({t['seconds']:.1f} s)", flush=True)  # fmt: skip
    result.update(deliveries=deliveries, kill_trials=trials, notes=anomalies(deliveries, trials))
    if deliveries:
        print(delivery_table(deliveries, a))
    if trials:
        print(kill_table(trials))
    print("\nwhat looked wrong: " + ("\n- ".join(["", *result["notes"]]) or " nothing"))
    result["seconds"] = time.monotonic() - started
    result["load_after"] = os.getloadavg()[0]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\n{result['seconds']:.0f} s; every figure in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
