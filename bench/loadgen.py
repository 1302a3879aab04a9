"""Load generator: one workload against one running server, one JSON result on stdout.

Run by ``bench/run.py`` in its own process (``python -m bench.loadgen ...``); it can be
run by hand against a server you started (``--pid`` lets it read the server's memory).

Several replicas of one chat (``--ports P1,P2``, ``--pid PID1,PID2``): the senders
connect to the first port, receiver ``i`` to port ``i mod len(ports)``, so receivers on
the first replica get a message from it directly and the others through the bus.
Server memory and CPU are summed over the PIDs; ``--bus-pid`` (Redis) is reported apart.
The verified sample is spread evenly over the ports, and latency is also given per port.

A throughput run is either a fixed count (``--messages`` per sender) or a fixed duration
(``--duration``: each sender writes until the time is up, ``--messages`` being then a
cap); either way every loop has a count and a deadline (``--max-seconds``). A sender
puts ``--batch`` messages in each write(), and writes ``--turn`` messages (``0``: what
the in-flight ``--window`` has room for) each turn of the event loop. When the senders
stop, every counted receiver must have received exactly what they wrote (and, in a chat
room, every sender what the others wrote): one receiver short or over makes the run
fail, whatever the total.

Every message is ``#SENDER:SEQ:T_NS:PADDING:CRC32`` (exactly ``--size`` bytes), where
T_NS is ``time.monotonic_ns()`` when it was written (one clock for every process on
Linux) and CRC32 covers everything before it. A ``#`` occurs once per message and
nowhere in any system's framing, so every receiver counts deliveries with one
``bytes.count`` per read. A small sample of receivers also keeps what it read, with
the arrival time of each read; after the run (outside the timed window) their
streams are parsed in full: lost, duplicated, corrupted, out-of-order messages per
sender, and latency (arrival minus T_NS).

For a system that announces peers (peerchat), the run also measures when the last
notice arrived after the last peer connected (``notices``: W6). CPU seconds used by the
servers, this process and the whole machine (other processes and the hypervisor's
steal included) are read from /proc during the traffic (``cpu_s``).

Only 127.0.0.1. Every wait has a deadline; every loop a count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
TURN_MAX = 2000  # messages a sender writes in one turn of the event loop, at most
MARK = 35  # b"#"
PAD = b"x" * 65536
mono = time.monotonic
mono_ns = time.monotonic_ns


# --- the systems' client sides --------------------------------------------------------


@dataclass(frozen=True)
class Adapter:
    """How a subscriber and a publisher talk to one system."""

    name: str
    sub_hello: bytes  # written by a receiver on connect
    sub_ready_newlines: int  # newlines a receiver reads before it is subscribed
    pub_hello: bytes
    pub_ready_newlines: int
    chat: bool  # a chat room: senders receive each other's messages too
    strict_lines: bool  # every line is a message or a `* `/`! ` notice (no framing lines)
    min_settle: float  # seconds to wait after connecting before traffic (join notices)
    notices: bool = False  # announces peers to the others (W6 measures how long that takes)

    def frame(self, payload: bytes) -> bytes:
        raise NotImplementedError


class PlainChat(Adapter):
    def frame(self, payload: bytes) -> bytes:
        return payload + b"\n"


class RedisPubSub(Adapter):
    def frame(self, payload: bytes) -> bytes:
        return b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%d\r\n%s\r\n" % (len(payload), payload)


class Nats(Adapter):
    def frame(self, payload: bytes) -> bytes:
        return b"PUB bench %d\r\n%s\r\n" % (len(payload), payload)


NATS_CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"echo":false,"name":"bench"}\r\n'

ADAPTERS: dict[str, Adapter] = {
    # banner: two `* ` lines; joins are announced 0.5 s after connecting
    "peerchat": PlainChat("peerchat", b"", 2, b"", 2, True, True, 0.7, True),
    # SUBSCRIBE reply: *3 $9 subscribe $5 bench :1 (six lines); PUBLISH replies :N
    "redis": RedisPubSub(
        "redis", b"*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n", 6, b"", 0, False, False, 0.0
    ),
    # INFO line, then PONG once CONNECT and SUB are processed
    "nats": Nats(
        "nats",
        NATS_CONNECT + b"SUB bench 1\r\nPING\r\n",
        2,
        NATS_CONNECT + b"PING\r\n",
        2,
        False,
        False,
        0.0,
    ),
    # two replicas sharing the chat through Redis: the same peers' protocol
    "peerchat-2r": PlainChat("peerchat-2r", b"", 2, b"", 2, True, True, 0.7, True),
    "naive": PlainChat("naive", b"", 0, b"", 0, True, True, 0.1),
    # bench/trivial_relay.py: copies bytes, nothing else (the load generator's ceiling)
    "trivial": PlainChat("trivial", b"", 0, b"", 0, True, True, 0.1),
}


def payload(sender: int, seq: int, t_ns: int, size: int) -> bytes:
    head = b"#%d:%d:%d:" % (sender, seq, t_ns)
    pad = size - len(head) - 9
    if pad < 1:
        raise ValueError(f"--size {size} is too small for the message header")
    body = head + PAD[:pad]
    return body + b":%08x" % zlib.crc32(body)


# --- one run's shared state and the connection protocol ------------------------------


class Run:
    def __init__(self) -> None:
        self.delivered = 0  # to counted receivers, since traffic started
        self.target = 0  # deliveries to wait for (final once every sender has stopped)
        self.counted_receivers = 0
        self.sent: list[int] = []  # messages written, per sender
        self.notice_lines = 0  # lines without a message read after a peer was ready
        self.last_notice = 0.0  # when the last of them was read
        self.last_write = 0.0  # when a sender last wrote messages
        self.extra = 0  # to senders (chat rooms) and stalled receivers
        self.last_rx = 0.0  # last read by a counted receiver carrying messages
        self.last_any = mono()  # last read by anyone (for settling)
        self.sent_deliveries = 0  # messages written x counted receivers
        self.window = 0
        self.waiter: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self.disconnects = 0


class Conn(asyncio.Protocol):
    def __init__(
        self, run: Run, need_newlines: int, hello: bytes, counted: bool, where: int = 0
    ) -> None:
        self.run = run
        self.where = where  # index of the port (replica) it is connected to
        self.need = need_newlines
        self.hello = hello
        self.counted = counted
        self.newlines = 0
        self.count = 0
        self.keep: list[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.can_write: asyncio.Event = asyncio.Event()
        self.can_write.set()
        self.lost = False
        self.lost_exc = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.hello:
            self.transport.write(self.hello)  # type: ignore[union-attr]
        if self.need <= 0:
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        run = self.run
        now = mono()
        run.last_any = now
        after = -1  # lines after the peer was ready (-1: the whole chunk)
        if self.need > 0 and not self.ready.done():
            self.newlines += data.count(b"\n")
            after = max(0, self.newlines - self.need)
            if self.newlines >= self.need:
                self.ready.set_result(None)
        if self.keep is not None:
            self.keep.append((mono_ns(), data))
        n = data.count(MARK)
        if not n:
            lines = data.count(b"\n") if after < 0 else after
            if lines:  # notices (a join, a leave): what W6 measures for a chat
                run.notice_lines += lines
                run.last_notice = now
            return
        self.count += n
        if not self.counted:
            run.extra += n
            return
        run.delivered += n
        run.last_rx = now
        if run.waiter is not None and run.sent_deliveries - run.delivered <= run.window // 2:
            if not run.waiter.done():
                run.waiter.set_result(None)
            run.waiter = None
        if run.delivered >= run.target and run.done is not None and not run.done.done():
            run.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_exc = repr(exc) if exc else "closed"
        self.run.disconnects += 1
        self.can_write.set()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {self.lost_exc}"))

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


# --- the server's memory and threads ---------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of ``pid``; empty if unreadable."""
    out: dict[str, int] = {}
    if pid <= 0:
        return out
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def rss_kib(pids: list[int], key: str = "VmRSS") -> int | None:
    """``key`` (KiB) summed over ``pids``; None if none could be read."""
    values = [proc_status(pid).get(key) for pid in pids]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time ``pid`` has used so far; None if unreadable."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_seconds() -> tuple[float | None, float | None, float | None]:
    """CPU seconds all the machine's cores have spent busy (anyone's processes and the
    kernel), stolen by the hypervisor, and in interrupts (of the busy ones), so far."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None, None, None
    if len(ticks) < 8:
        return None, None, None
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    busy = sum(ticks[:8]) - ticks[3] - ticks[4] - ticks[7]
    return busy / hz, ticks[7] / hz, (ticks[5] + ticks[6]) / hz


def cpu_now(pids: list[int], bus_pid: int) -> dict[str, Any]:
    """CPU seconds used so far by each server, the bus, this load generator, and the
    whole machine (other processes included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    machine, steal, irq = machine_seconds()
    return {
        "servers": [cpu_seconds(pid) for pid in pids],
        "bus": cpu_seconds(bus_pid),
        "loadgen": ru.ru_utime + ru.ru_stime,
        "machine": machine,
        "steal": steal,
        "irq": irq,
    }


def cpu_used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds used between two :func:`cpu_now` readings."""

    def diff(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else round(y - x, 3)

    return {
        "servers": [diff(x, y) for x, y in zip(before["servers"], after["servers"], strict=True)],
        "bus": diff(before["bus"], after["bus"]),
        "loadgen": diff(before["loadgen"], after["loadgen"]),
        "machine": diff(before["machine"], after["machine"]),
        "steal": diff(before["steal"], after["steal"]),
        "irq": diff(before["irq"], after["irq"]),
    }


async def sample_memory(pids: list[int], peak: list[int], stop: asyncio.Event) -> None:
    for _ in range(100_000):  # 0.1 s apart: bounded by the run's own deadline anyway
        rss = rss_kib(pids) or 0
        peak[0] = max(peak[0], rss)
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
            return
        except TimeoutError:
            pass


# --- phases ----------------------------------------------------------------------------


async def connect_many(
    ports: list[int],
    n: int,
    make: Callable[[int], Conn],
    concurrency: int,
    limit: float,
) -> list[Conn]:
    """Connect ``n`` peers, peer ``i`` to ``ports[i % len(ports)]``."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    conns: list[Conn] = []

    async def one(i: int) -> None:
        async with sem:
            proto = make(i)
            await loop.create_connection(lambda: proto, HOST, ports[i % len(ports)])
            conns.append(proto)
            await proto.ready

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), limit)
    return conns


async def settle(run: Run, minimum: float, quiet: float, maximum: float) -> tuple[float, bool]:
    """Wait ``minimum`` seconds, then until nobody has read anything for ``quiet`` s
    (at most ``maximum`` s in all): the time waited, and whether it went quiet."""
    start = mono()
    await asyncio.sleep(max(0.0, min(minimum, maximum)))
    for _ in range(int(maximum / 0.05) + 1):
        if mono() - run.last_any >= quiet:
            return mono() - start, True
        if mono() - start >= maximum:
            break
        await asyncio.sleep(0.05)
    return mono() - start, mono() - run.last_any >= quiet


async def wait_for_room(run: Run) -> None:
    """Wait until the receivers have read half the in-flight window (10 s at most)."""
    if run.waiter is None or run.waiter.done():  # one future, shared by all senders
        run.waiter = asyncio.get_running_loop().create_future()
    # after 10 s the receivers have stopped: send anyway; the loss will show
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.waiter), 10.0)


def window_share(run: Run, batch: int, senders: int) -> int:
    """A sender's share of the room left in the window, at most TURN_MAX, in whole
    batches (one at least)."""
    room = run.window - (run.sent_deliveries - run.delivered)
    n = min(TURN_MAX, room // max(1, run.counted_receivers * senders))
    return max(batch, n - n % batch)


async def send_throughput(
    run: Run,
    adapter: Adapter,
    tx: Conn,
    sender: int,
    messages: int,
    size: int,
    batch: int,
    stop_at: float,
    turn: int,
) -> str:
    """Write ``batch`` messages per write() until ``stop_at`` (the duration is up) or
    ``messages`` are written (the cap), whichever comes first; what stopped it.

    Each turn of the event loop (before the receivers may read) it writes ``turn``
    messages, or with ``turn`` 0 its share of what the in-flight window has room for
    (at most TURN_MAX), in write() calls of ``batch`` messages: one message per write()
    offers as much as 50 per write(), in 50 times as many write() calls. (A fixed turn
    ties the sender to the receivers: one turn per pass over every readable receiver,
    so with many receivers the load generator, not the server, sets the pace.)
    """
    seq = 0
    senders = max(1, len(run.sent))
    for _ in range(messages // batch + 2):
        if seq >= messages:
            return "cap"
        if mono() >= stop_at:
            return "duration"
        if tx.lost:
            return "sender disconnected"
        if run.sent_deliveries - run.delivered > run.window:
            await wait_for_room(run)
            if mono() >= stop_at:
                return "duration"
        if not tx.can_write.is_set():
            await asyncio.wait_for(tx.can_write.wait(), 30.0)
        frame = adapter.frame
        assert tx.transport is not None
        n = max(turn, batch) if turn > 0 else window_share(run, batch, senders)
        for _ in range(n // batch):
            k = min(batch, messages - seq)
            if k <= 0:
                break
            t = mono_ns()
            data = b"".join(frame(payload(sender, s, t, size)) for s in range(seq, seq + k))
            seq += k
            run.sent[sender] = seq
            run.sent_deliveries += k * run.counted_receivers
            tx.transport.write(data)
        run.last_write = mono()
        await asyncio.sleep(0)  # let the receivers read
    return "cap"


async def send_rate(
    adapter: Adapter, tx: Conn, messages: int, size: int, rate: float, run: Run, stop_at: float
) -> str:
    """One message per write(), ``rate`` a second, ``messages`` of them."""
    start = mono()
    for seq in range(messages):
        delay = start + seq / rate - mono()
        if delay > 0:
            await asyncio.sleep(delay)
        if tx.lost:
            return "sender disconnected"
        if mono() >= stop_at:
            return "deadline"
        assert tx.transport is not None
        tx.transport.write(adapter.frame(payload(0, seq, mono_ns(), size)))
        run.sent[0] = seq + 1
        run.sent_deliveries += run.counted_receivers
        run.last_write = mono()
    return "cap"


def tcp_state(conn: Conn) -> str:
    """The kernel's view of a connection we stopped reading (did the server close it?)."""
    if conn.lost:
        return "closed"
    sock = conn.transport.get_extra_info("socket") if conn.transport else None
    if sock is None:
        return "unknown"
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return f"reset ({err})"
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        state = struct.unpack("B", info[:1])[0]
    except OSError as exc:
        return f"error {exc}"
    names = {1: "open", 7: "closed", 8: "closed by server (FIN)", 4: "fin-wait", 11: "closing"}
    return names.get(state, f"tcp state {state}")


# --- verification (after the run) ------------------------------------------------------


@dataclass
class Verdict:
    receivers: int = 0
    expected: int = 0
    ok: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    notices: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)


def other_line(verdict: Verdict, line: bytes) -> None:
    """A line without a message, from a system where each line is a message or a notice."""
    if line.startswith((b"*** ", b"* ", b"! ")):
        verdict.notices += 1
        if line.startswith(b"! ") and len(verdict.errors) < 5:
            verdict.errors.append(line.decode(errors="replace"))
    elif line.strip(b"\r"):
        verdict.corrupted += 1


def verify(
    verdict: Verdict,
    chunks: list[tuple[int, bytes]],
    adapter: Adapter,
    sent: list[int],
    size: int,
) -> None:
    """Parse one receiver's whole stream: every message sender ``i`` wrote
    (``sent[i]`` of them, sequence 0 up) must be there once, intact, in order."""
    senders = len(sent)
    seen = [bytearray(n) for n in sent]
    last = [-1] * senders
    carry = b""
    lat = verdict.latencies_ns
    for t, data in chunks:
        lines = (carry + data).split(b"\n")
        carry = lines.pop()
        for line in lines:
            i = line.find(b"#")
            if i < 0:  # no message: a notice (rare), or the framing of a non-strict system
                if adapter.strict_lines:
                    other_line(verdict, line)
                continue
            p = line[i:-1] if line.endswith(b"\r") else line[i:]  # one \r, if any, is framing
            parts = p.split(b":")
            try:
                if (
                    len(p) != size
                    or len(parts) != 5
                    or p.count(b"#") != 1
                    or int(parts[4], 16) != zlib.crc32(p[:-9])
                ):
                    raise ValueError
                sid, seq, ts = int(parts[0][1:]), int(parts[1]), int(parts[2])
                if not (0 <= sid < senders and 0 <= seq < sent[sid]):
                    raise ValueError
            except ValueError:
                verdict.corrupted += 1
                continue
            if seen[sid][seq]:
                verdict.duplicated += 1
                continue
            seen[sid][seq] = 1
            verdict.ok += 1
            if seq < last[sid]:
                verdict.reordered += 1
            else:
                last[sid] = seq
            lat.append(t - ts)
    stream_end(verdict, carry, sent, seen)


def stream_end(verdict: Verdict, carry: bytes, sent: list[int], seen: list[bytearray]) -> None:
    """Count one verified receiver: its partial last line, and the messages it never got."""
    if carry.strip(b"\r"):
        verdict.corrupted += 1  # a partial line at the end
    verdict.receivers += 1
    verdict.expected += sum(sent)
    verdict.lost += sum(sent) - sum(s.count(1) for s in seen)


def merge(verdicts: list[Verdict]) -> Verdict:
    total = Verdict()
    for v in verdicts:
        for name in (
            "receivers", "expected", "ok", "lost", "duplicated", "corrupted", "reordered",
            "notices",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(v, name))
        total.errors += v.errors[: max(0, 5 - len(total.errors))]
        total.latencies_ns += v.latencies_ns
    return total


def percentile(values: list[int], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (ns, sorted by the caller) in ms."""
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6  # ms


# --- one workload ------------------------------------------------------------------------


@dataclass
class Sampling:
    """The servers' memory (and the bus's), sampled 10 times a second through a run."""

    pids: list[int]
    bus_pid: int
    peak: list[int]  # the servers' peak RSS in KiB (a list: the sampler task updates it)
    bus_peak: list[int] = field(default_factory=lambda: [0])
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks.append(asyncio.create_task(sample_memory(self.pids, self.peak, self.stop)))
        if self.bus_pid > 0:
            self.tasks.append(
                asyncio.create_task(sample_memory([self.bus_pid], self.bus_peak, self.stop))
            )

    async def finish(self, result: dict[str, object]) -> None:
        """Stop sampling; the peaks and the servers' high-water mark go to ``result``."""
        self.stop.set()
        for task in self.tasks:
            await task
        result["rss_peak_kib"] = max(self.peak[0], rss_kib(self.pids) or 0)
        result["hwm_kib"] = rss_kib(self.pids, "VmHWM")
        if self.bus_pid > 0:
            result["bus_rss_peak_kib"] = max(self.bus_peak[0], rss_kib([self.bus_pid]) or 0)


@dataclass
class Peers:
    """A workload's connections, as they connected."""

    receivers: list[Conn]
    senders: list[Conn]
    counted: list[Conn]  # the receivers that read, in the order they connected
    stalled: list[Conn]  # the receivers that never read
    sampled: list[Conn]  # the counted receivers verified message by message


def describe(a: argparse.Namespace) -> dict[str, object]:
    """A result's first fields: the workload asked for."""
    result: dict[str, object] = {"system": a.system, "workload": a.workload}
    result["messages"], result["senders"] = a.messages, a.senders
    result["batch"] = 1 if a.rate > 0 else max(1, min(a.batch, a.messages or 1))
    result["duration"] = a.duration
    if len(a.ports) > 1:
        result["ports"] = len(a.ports)
        result["server_pids"] = len(a.pids)
    return result


async def naive_ready(pid: int, threads: int) -> None:
    """Wait (30 s at most) until the naive relay runs ``threads`` threads: one per client."""
    for _ in range(600):
        if proc_status(pid).get("Threads", 0) >= threads:
            break
        await asyncio.sleep(0.05)


async def connect_peers(
    a: argparse.Namespace,
    run: Run,
    adapter: Adapter,
    result: dict[str, object],
    t0: float,
    deadline: float,
) -> tuple[list[Conn], list[Conn]]:
    """Connect the receivers (receiver ``i`` to port ``i`` mod ports), then the senders
    (to the first port); the receivers and the senders, ready."""
    ports, pids = a.ports, a.pids
    n_rx = a.receivers
    stalled_idx = set(range(n_rx - a.stalled, n_rx))  # the last ones never read
    receivers = await connect_many(
        ports,
        n_rx,
        lambda i: Conn(
            run,
            adapter.sub_ready_newlines,
            adapter.sub_hello,
            i not in stalled_idx,
            i % len(ports),
        ),
        a.concurrency,
        max(1.0, deadline - mono()),
    )
    if a.system == "naive" and pids[0] > 0:  # ready when the relay has a thread per client
        await naive_ready(pids[0], n_rx + 1)
    connect_s = mono() - t0
    result["connect_s"] = round(connect_s, 3)
    result["rss_connected_kib"] = rss_kib(pids)
    senders = await connect_many(
        ports[:1],  # every sender on the first replica
        a.senders,
        lambda i: Conn(run, adapter.pub_ready_newlines, adapter.pub_hello, False),
        a.concurrency,
        max(1.0, deadline - mono()),
    )
    return receivers, senders


async def settle_peers(
    a: argparse.Namespace,
    run: Run,
    adapter: Adapter,
    result: dict[str, object],
    t_connected: float,
    deadline: float,
    rss0: int | None,
) -> None:
    """Wait for the connections' notices to end; when the last one came (a chat), and
    the servers' memory then."""
    waited, quiet = await settle(
        run, adapter.min_settle, a.quiet, max(0.0, min(a.settle_max, deadline - mono()))
    )
    result["settle_s"] = round(waited, 3)  # the harness's wait, not a measurement
    result["settled"] = quiet
    if adapter.notices:
        # measured: when the last join notice reached a peer, after the last connection
        result["notices"] = {
            "lines": run.notice_lines,
            "last_after_s": (round(run.last_notice - t_connected, 3) if run.notice_lines else None),
            "still_arriving": not quiet,
            "quiet_s": a.quiet,
        }
    rss_ready = rss_kib(a.pids)
    result["rss_ready_kib"] = rss_ready
    result["disconnects_before_traffic"] = run.disconnects
    if a.receivers and rss0 is not None and rss_ready is not None:
        per = (rss_ready - rss0) / (a.receivers + a.senders)
        result["kib_per_connection"] = round(per, 2)


def pick_sample(counted: list[Conn], n_ports: int, sample: int) -> list[Conn]:
    """The receivers verified in full: evenly spaced (first and last included) among each
    port's receivers, the ports sharing ``sample`` as evenly as they can."""
    sampled = []
    for w in range(n_ports):
        group = [c for c in counted if c.where == w]
        k = min(sample // n_ports + (w < sample % n_ports), len(group))
        if k <= 0:
            continue
        picks = [group[round(j * (len(group) - 1) / max(1, k - 1))] for j in range(k)]
        sampled += list({id(c): c for c in picks}.values())
    return sampled


def start_counting(a: argparse.Namespace, run: Run, peers: Peers) -> None:
    """Every count from zero, the sample keeping what it reads, before the traffic."""
    for c in peers.receivers + peers.senders:
        c.count = 0
    for c in peers.sampled:
        c.keep = []
    run.extra = 0
    run.disconnects = 0
    run.sent = [0] * a.senders
    # until every sender has stopped, the cap; then what they wrote
    run.target = a.messages * a.senders * len(peers.counted)
    run.window = a.window * len(peers.counted)
    run.done = asyncio.get_running_loop().create_future()


def start_senders(
    a: argparse.Namespace, run: Run, adapter: Adapter, senders: list[Conn], stop_at: float
) -> list[asyncio.Task[str]]:
    """The senders' tasks: one at a fixed ``--rate``, else every sender flat out."""
    if a.rate > 0:
        return [
            asyncio.create_task(
                send_rate(adapter, senders[0], a.messages, a.size, a.rate, run, stop_at)
            )
        ]
    batch = max(1, min(a.batch, a.messages))
    return [
        asyncio.create_task(
            send_throughput(run, adapter, tx, i, a.messages, a.size, batch, stop_at, a.turn)
        )
        for i, tx in enumerate(senders)
    ]


async def await_deliveries(
    a: argparse.Namespace,
    run: Run,
    tasks: list[asyncio.Task[str]],
    n_counted: int,
    deadline: float,
) -> str:
    """Wait until the counted receivers have every message, or deliveries stop, or the
    deadline passes; the outcome."""
    assert run.done is not None  # made by start_counting
    progress, progress_at = -1, mono()
    final = False
    for _ in range(int(a.max_seconds / 0.2) + 2):
        try:
            await asyncio.wait_for(asyncio.shield(run.done), 0.2)
            return "complete"
        except TimeoutError:
            pass
        if not final and all(t.done() for t in tasks):
            final = True
            if a.duration > 0:  # now we know what every receiver should get
                run.target = sum(run.sent) * n_counted
                if run.delivered >= run.target:
                    return "complete"
        if run.delivered != progress:
            progress, progress_at = run.delivered, mono()
        elif mono() - progress_at > a.idle_timeout:  # stalled (or finished short)
            return f"stopped: no delivery for {a.idle_timeout:g} s"
        if mono() > deadline:
            return f"deadline: {a.max_seconds:g} s"
    return "deadline"


def how_stopped(tasks: list[asyncio.Task[str]]) -> list[str]:
    """What stopped the senders (each reason once): their results, or exceptions."""
    return sorted(
        {
            (repr(t.exception()) if t.exception() else t.result())
            if t.done() and not t.cancelled()
            else "still sending"
            for t in tasks
        }
    )


async def await_senders(senders: list[Conn], want: int, deadline: float) -> None:
    """Wait until the senders have read ``want`` messages in all (the others', in a chat
    room), 30 s at most and 2 s without progress."""
    seen_tx, seen_at = -1, mono()
    for _ in range(300):  # 30 s at most, 2 s without progress
        got_tx = sum(c.count for c in senders)
        if got_tx >= want or mono() > deadline + 30:
            break
        if got_tx != seen_tx:
            seen_tx, seen_at = got_tx, mono()
        elif mono() - seen_at > 2.0:
            break
        await asyncio.sleep(0.1)


def wrong_counts(peers: Peers, each: int, want_tx: list[int]) -> list[tuple[str, int, int]]:
    """Every peer that got more or fewer messages than it should: who, got, wanted."""
    wrong = [
        (f"receiver {i}", c.count, each) for i, c in enumerate(peers.counted) if c.count != each
    ]
    wrong += [
        (f"sender {i}", c.count, want_tx[i])
        for i, c in enumerate(peers.senders)
        if c.count != want_tx[i]
    ]
    return wrong


def per_receiver(
    counted: list[Conn], each: int, wrong: list[tuple[str, int, int]]
) -> dict[str, object]:
    """The receivers' counts against what each should have got."""
    counts = [c.count for c in counted] or [0]
    return {
        "expected_each": each,
        "receivers": len(counted),
        "min": min(counts),
        "max": max(counts),
        "wrong": len(wrong),
        "short": sum(1 for _, got, want in wrong if got < want),
        "over": sum(1 for _, got, want in wrong if got > want),
        "examples": [f"{who} got {got:,} of {want:,}" for who, got, want in wrong[:3]],
    }


def by_port(counted: list[Conn], n_ports: int, each: int) -> list[dict[str, object]]:
    """Per replica: receivers, deliveries counted, expected."""
    return [
        {
            "receivers": sum(1 for c in counted if c.where == w),
            "delivered": sum(c.count for c in counted if c.where == w),
            "expected": each * sum(1 for c in counted if c.where == w),
        }
        for w in range(n_ports)
    ]


async def stalled_fate(run: Run, stalled: list[Conn], each: int) -> dict[str, object]:
    """What became of the receivers that never read: their connections' state, then
    what they read once they do."""
    states = [tcp_state(c) for c in stalled]
    got_before = sum(c.count for c in stalled)
    for c in stalled:
        if c.transport is not None and not c.lost:
            c.transport.resume_reading()
    await settle(run, 0.2, 0.3, 5.0)
    return {
        "state_at_end": states,
        "messages_read_after_resume": sum(c.count for c in stalled) - got_before,
        "of": each,
        # a close queued behind unread data shows only once the data is read
        "closed_after_draining": sum(1 for c in stalled if c.lost),
    }


def verify_sample(
    result: dict[str, object],
    sampled: list[Conn],
    adapter: Adapter,
    wanted: list[int],
    size: int,
    n_ports: int,
) -> Verdict:
    """Verify the sampled receivers' streams (outside the timed window), per port and in
    all; the figures go to ``result``, the merged verdict is returned."""
    per_port = [Verdict() for _ in range(n_ports)]
    for c in sampled:
        verify(per_port[c.where], c.keep or [], adapter, wanted, size)
        c.keep = None
    for pv in per_port:
        pv.latencies_ns.sort()
    v = merge(per_port)
    v.latencies_ns.sort()
    if n_ports > 1:  # latency directly (first port) and through the bus (others)
        for w, pv in enumerate(per_port):
            by = result["by_port"][w]  # type: ignore[index]
            by["verified_receivers"] = pv.receivers
            by["verified_ok"] = pv.ok
            by["latency_ms"] = {
                "p50": percentile(pv.latencies_ns, 0.50),
                "p99": percentile(pv.latencies_ns, 0.99),
            }
    record_verdict(result, v)
    return v


def record_verdict(result: dict[str, Any], v: Verdict) -> None:
    """Put the merged verdict ``v`` (latencies sorted) in ``result``: ``verified`` and
    ``latency_ms``, as every load generator of bench/ reports them."""
    result["verified"] = {
        "receivers": v.receivers,
        "expected": v.expected,
        "ok": v.ok,
        "lost": v.lost,
        "duplicated": v.duplicated,
        "corrupted": v.corrupted,
        "reordered": v.reordered,
        "notices": v.notices,
        "error_lines": v.errors,
    }
    lat = v.latencies_ns
    result["latency_ms"] = {
        "n": len(lat),
        "p50": percentile(lat, 0.50),
        "p90": percentile(lat, 0.90),
        "p99": percentile(lat, 0.99),
        "max": percentile(lat, 1.0),
    }


async def traffic(
    a: argparse.Namespace,
    run: Run,
    adapter: Adapter,
    result: dict[str, object],
    deadline: float,
    peers: Peers,
) -> None:
    """The timed traffic, then (outside it) every count checked and the sample verified."""
    n_tx, counted, senders = a.senders, peers.counted, peers.senders
    start_counting(a, run, peers)
    cpu0 = cpu_now(a.pids, a.bus_pid)
    t_start = mono()
    stop_at = min(deadline, t_start + a.duration) if a.duration > 0 else deadline
    tasks = start_senders(a, run, adapter, senders, stop_at)
    outcome = await await_deliveries(a, run, tasks, len(counted), deadline)
    sent_done = all(t.done() for t in tasks)
    stopped_by = how_stopped(tasks)
    for t in tasks:
        t.cancel()
    cpu = cpu_used(cpu0, cpu_now(a.pids, a.bus_pid))
    cpu["wall"] = round(mono() - t_start, 3)
    result["cpu_s"] = cpu
    # what each receiver should get: every message written (a fixed duration), or
    # every message it was asked to write (a fixed count: a sender cut short loses)
    wanted = list(run.sent) if a.duration > 0 else [a.messages] * n_tx
    each = sum(wanted)
    run.target = each * len(counted)
    elapsed = max(1e-9, (run.last_rx or mono()) - t_start)
    result["outcome"] = outcome
    result["senders_finished"] = sent_done
    result["stopped_by"] = stopped_by
    result["sent"] = sum(run.sent)
    # from the first write to the last one
    result["sending_s"] = round(max(0.0, run.last_write - t_start), 3)
    result["elapsed_s"] = round(elapsed, 4)
    result["expected"] = run.target
    result["delivered"] = run.delivered
    result["deliveries_per_s"] = round(run.delivered / elapsed, 1)

    # In a chat room a sender gets the others' messages; elsewhere, none. Wait (a
    # little, outside the timed window) for those to arrive, then check everyone.
    want_tx = [each - wanted[i] if adapter.chat else 0 for i in range(n_tx)]
    await await_senders(senders, sum(want_tx), deadline)
    result["extra_to_senders"] = sum(c.count for c in senders)
    wrong = wrong_counts(peers, each, want_tx)
    result["per_receiver"] = per_receiver(counted, each, wrong)
    result["disconnects_during"] = run.disconnects
    result["receivers_lost"] = sum(1 for c in counted if c.lost)
    result["senders_lost"] = sum(1 for c in senders if c.lost)
    if len(a.ports) > 1:  # per replica: receivers, deliveries counted, expected
        result["by_port"] = by_port(counted, len(a.ports), each)
    if peers.stalled:  # what became of the receivers that never read
        result["stalled"] = await stalled_fate(run, peers.stalled, each)

    result["rss_end_kib"] = rss_kib(a.pids)
    # verification, outside the timed window
    v = verify_sample(result, peers.sampled, adapter, wanted, a.size, len(a.ports))
    result["clean"] = (
        # every receiver (and, in a chat room, every sender) got exactly what it
        # should; the sampled receivers are also checked message by message
        run.delivered == run.target
        and not wrong
        and result["senders_lost"] == 0
        and all(x in ("duration", "cap") for x in stopped_by)
        and v.lost == 0
        and v.duplicated == 0
        and v.corrupted == 0
        and v.reordered == 0
    )


async def main_async(a: argparse.Namespace) -> dict[str, object]:
    adapter = ADAPTERS[a.system]
    run = Run()
    result = describe(a)
    rss0 = rss_kib(a.pids)
    result["rss_before_kib"] = rss0
    sampling = Sampling(a.pids, a.bus_pid, [rss0 or 0])
    sampling.start()
    deadline = mono() + a.max_seconds
    run.counted_receivers = a.receivers - a.stalled

    cpu_connect = cpu_now(a.pids, a.bus_pid)
    t0 = mono()
    receivers, senders = await connect_peers(a, run, adapter, result, t0, deadline)
    t_connected = mono()  # the last peer is connected and ready
    await settle_peers(a, run, adapter, result, t_connected, deadline, rss0)

    counted = [c for c in receivers if c.counted]
    peers = Peers(
        receivers,
        senders,
        counted,
        stalled=[c for c in receivers if not c.counted],
        sampled=pick_sample(counted, len(a.ports), a.sample),
    )
    for c in peers.stalled:
        assert c.transport is not None
        c.transport.pause_reading()

    if a.messages > 0 and a.senders > 0:
        await traffic(a, run, adapter, result, deadline, peers)
    else:
        cpu = cpu_used(cpu_connect, cpu_now(a.pids, a.bus_pid))
        cpu["wall"] = round(mono() - t0, 3)
        result["cpu_s"] = cpu  # connecting and settling: there is no traffic
        result["clean"] = run.disconnects == 0
        result["disconnects_during"] = run.disconnects

    await sampling.finish(result)
    for c in receivers + senders:
        if c.transport is not None:
            c.transport.abort()
    await asyncio.sleep(0.05)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description="peerchat benchmark load generator (one run)")
    p.add_argument("--system", choices=sorted(ADAPTERS), required=True)
    p.add_argument("--workload", default="custom")
    p.add_argument("--port", type=int, help="the server's port (or give --ports)")
    p.add_argument(
        "--ports",
        help="P1,P2,...: replicas of one chat; senders use P1, receivers take turns",
    )
    p.add_argument(
        "--pid",
        default="0",
        help="server PID, to read its memory (PID1,PID2,...: summed over replicas)",
    )
    p.add_argument("--bus-pid", type=int, default=0, help="the bus's (Redis's) PID, reported apart")
    p.add_argument("--receivers", type=int, default=100)
    p.add_argument("--senders", type=int, default=1)
    p.add_argument(
        "--messages",
        type=int,
        default=1000,
        help="per sender: how many to write, or with --duration the most it may write; "
        "0: connect only",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="seconds each sender keeps writing (then every receiver must get exactly what "
        "was written); 0: write --messages",
    )
    p.add_argument("--size", type=int, default=100, help="message bytes (without newline)")
    p.add_argument("--rate", type=float, default=0, help="msg/s of one sender; 0: flat out")
    p.add_argument("--stalled", type=int, default=0, help="receivers that never read")
    p.add_argument("--sample", type=int, default=10, help="receivers verified in full")
    p.add_argument("--window", type=int, default=4000, help="messages in flight, at most")
    p.add_argument("--batch", type=int, default=50, help="messages per write()")
    p.add_argument(
        "--turn",
        type=int,
        default=50,
        help="messages a sender writes (in writes of --batch) before the receivers may read; "
        f"0: what the window has room for, at most {TURN_MAX}",
    )
    p.add_argument("--concurrency", type=int, default=256, help="connects in flight")
    p.add_argument("--settle-max", type=float, default=30.0)
    p.add_argument(
        "--quiet",
        type=float,
        default=0.3,
        help="before traffic: wait until nobody has read anything for this long",
    )
    p.add_argument(
        "--idle-timeout", type=float, default=10.0, help="give up after no delivery for this long"
    )
    p.add_argument("--max-seconds", type=float, default=120.0)
    a = p.parse_args()
    try:
        a.ports = [int(x) for x in (a.ports or "").split(",") if x.strip()]
        if a.port is not None:
            a.ports = [a.port, *(x for x in a.ports if x != a.port)]
        a.pids = [int(x) for x in str(a.pid).split(",") if x.strip()] or [0]
    except ValueError:
        p.error("--ports and --pid take integers separated by commas")
    if not a.ports:
        p.error("give --port or --ports")
    try:
        result = asyncio.run(main_async(a))
    except Exception as exc:  # report, do not hide: the runner marks the run failed
        result = {
            "system": a.system,
            "workload": a.workload,
            "clean": False,
            "outcome": f"error: {exc!r}",
        }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
