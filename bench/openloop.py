"""Open-loop load generator: senders and receivers in separate processes, no window.

Run by ``bench/run.py`` for the open-loop workloads (O1, O2, O4, O1c), or by hand
against a server you started::

    .venv/bin/python -m bench.openloop --system peerchat --port 9000 --pid 1234 \\
        --receivers 100 --senders 1 --duration 3

Each sender process writes ``--batch`` (64) messages per write() as fast as TCP lets it
(it waits only for its socket to be writable: no window of messages in flight) for
``--duration`` s (at least 3), and reads what its socket receives (a chat room sends
senders each other's messages; Redis its PUBLISH replies). Receiver processes read with
64 KiB recv()s and count messages with one ``bytes.count(b"#")`` per read. Messages
are loadgen's (``#SENDER:SEQ:T_NS:PADDING:CRC32``, ``--size`` bytes), so a sample of
receivers is verified with loadgen's own :func:`bench.loadgen.verify`.

Warm (default): receivers connect, then senders; traffic starts ``--settle`` (1) s after
the last peer is ready. Cold (``--cold``): senders connect first, then receivers, and
traffic starts the moment the last receiver is ready, with no settle time (for
peerchat: receivers that have not sent a line, inside their first 0.5 s).

"Connected" (what a receiver must get all of): a receiver is connected from the moment
its subscription is confirmed (peerchat: its 2 banner lines read; Redis: its SUBSCRIBE
reply; NATS: the PONG after its SUB; the naive relay: a thread per peer running) and
stays connected until the check. Every receiver is connected before the first message
is written, so each must receive exactly the sum of what every sender wrote, no more, no
less; in a chat room each sender exactly what the others wrote.

Server CPU: utime+stime of the server (and bus) processes from /proc/PID/stat, read
just before the first write and just after the last counted delivery; divided by the
deliveries, it gives ``cpu_us_per_delivery``, a figure that does not depend on the load
generator's speed. One JSON result on stdout, with loadgen's field names.

Only 127.0.0.1. Every wait has a deadline; every loop a count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.loadgen import (
    ADAPTERS,
    Adapter,
    Verdict,
    cpu_now,
    cpu_used,
    merge,
    payload,
    proc_status,
    record_verdict,
    rss_kib,
    verify,
)

HOST = "127.0.0.1"
RECV = 65536  # bytes per recv(): the shape the benchmark used
MIN_DURATION = 3.0  # seconds of steady traffic, at least (shorter runs are not stable)
LAT_KEEP = 500_000  # latencies a receiver process returns, at most (evenly strided)
mono = time.monotonic
mono_ns = time.monotonic_ns


@dataclass
class Spec:
    """What a worker process needs (inherited through fork)."""

    system: str
    port: int
    size: int
    batch: int
    cap: int  # messages per sender, at most
    deadline: float  # monotonic: every worker gives up by then
    idle_timeout: float


# --- both sides: connecting ------------------------------------------------------------


def connect_ready(spec: Spec, hello: bytes, need: int) -> socket.socket:
    """One connection, its hello written and ``need`` newlines read (subscribed); returned
    non-blocking. Raises on timeout or close."""
    left = max(0.5, min(30.0, spec.deadline - mono()))
    sock = socket.create_connection((HOST, spec.port), timeout=left)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hello:
        sock.sendall(hello)
    seen = 0
    for _ in range(1000):  # the readiness lines come in a few reads
        if seen >= need:
            break
        data = sock.recv(RECV)
        if not data:
            raise ConnectionError("closed before ready")
        seen += data.count(b"\n")
    if seen < need:
        raise ConnectionError("not ready after 1000 reads")
    sock.setblocking(False)
    return sock


def connect_all(spec: Spec, n: int, hello: bytes, need: int) -> list[socket.socket]:
    return [connect_ready(spec, hello, need) for _ in range(n)]


def send_msg(pipe: Connection, *msg: Any) -> None:
    pipe.send(msg)


def recv_msg(pipe: Connection, kind: str, timeout: float) -> tuple[Any, ...]:
    """The next message from the other end, which must be of ``kind``; raises on a
    timeout, an error reported by the other end, or another kind."""
    if not pipe.poll(max(0.0, timeout)):
        raise TimeoutError(f"no {kind!r} in {timeout:.0f} s")
    msg = pipe.recv()
    if msg[0] == "error":
        raise RuntimeError(msg[1])
    if msg[0] != kind:
        raise RuntimeError(f"expected {kind!r}, got {msg[0]!r}")
    return tuple(msg)


def worker(pipe: Connection, body: Any, *args: Any) -> None:
    """Run a worker's body; report any exception to the coordinator (never hide it)."""
    try:
        body(pipe, *args)
    except BaseException as exc:  # reported, then the process ends
        with contextlib.suppress(OSError):
            send_msg(pipe, "error", repr(exc))
    finally:
        pipe.close()


# --- receivers -------------------------------------------------------------------------


@dataclass
class Readers:
    """One process's receivers: counts, and the sampled ones' streams."""

    socks: list[socket.socket]
    sampled: set[int]  # local indices kept in full for verification
    counts: list[int] = field(default_factory=list)
    keep: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    last_rx: float = 0.0
    sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.socks)
        self.keep = {i: [] for i in self.sampled}
        for i, s in enumerate(self.socks):
            self.sel.register(s, selectors.EVENT_READ, i)

    def have(self, each: int) -> bool:
        """Every receiver still connected has ``each`` messages (or more)."""
        return all(c >= each for i, c in enumerate(self.counts) if i not in self.lost)

    def read_once(self, timeout: float) -> None:
        """One pass over the readable receivers: one 64 KiB recv() each."""
        for key, _ in self.sel.select(timeout):
            i = key.data
            try:
                data = key.fileobj.recv(RECV)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server: the count will show what it missed
                self.lost.add(i)
                self.sel.unregister(key.fileobj)
                continue
            n = data.count(b"#")
            self.counts[i] += n
            if i in self.sampled:
                self.keep[i].append((mono_ns(), data))
            if n:
                self.last_rx = mono()

    def read_until(self, stop: Any, limit: float, idle: float) -> str:
        """Read until ``stop()``, ``limit`` (monotonic) or ``idle`` s without a read
        carrying messages; what ended it."""
        progress, since = sum(self.counts), mono()
        for _ in range(10_000_000):  # bounded by ``limit`` long before
            if stop():
                return "complete"
            now = mono()
            if now > limit:
                return "deadline"
            self.read_once(0.05)
            total = sum(self.counts) if now - since > 0.2 else progress
            if total != progress:
                progress, since = total, now
            elif now - since > idle:
                return f"stopped: no delivery for {idle:g} s"
        return "deadline"


def verify_kept(r: Readers, sent: list[int], adapter: Adapter, size: int) -> Verdict:
    """Verify the sampled receivers (loadgen's checks), keeping at most LAT_KEEP
    latencies (evenly strided) for the percentiles: the verdict goes back by pipe."""
    v = Verdict()
    for i in sorted(r.sampled):
        verify(v, r.keep.pop(i, []), adapter, sent, size)
    v.latencies_ns = v.latencies_ns[:: max(1, len(v.latencies_ns) // LAT_KEEP)]
    return v


def rx_body(pipe: Connection, spec: Spec, n: int, sampled: set[int]) -> None:
    """A receiver process: connect ``n`` receivers, read until told how many each must
    get and they have it, then verify the sample."""
    adapter = ADAPTERS[spec.system]
    r = Readers(connect_all(spec, n, adapter.sub_hello, adapter.sub_ready_newlines), sampled)
    send_msg(pipe, "ready", n)
    # read (join notices, then the traffic) until the coordinator knows the target
    r.read_until(pipe.poll, spec.deadline, spec.deadline)
    _, each = recv_msg(pipe, "target", 1.0)
    ended = r.read_until(lambda: r.have(each), spec.deadline, spec.idle_timeout)
    send_msg(pipe, "drained", ended, r.last_rx)
    # a little longer, outside the timed window: a duplicate would show as a count over
    grace = mono() + 0.2
    r.read_until(lambda: mono() > grace, grace + 0.1, 1.0)
    _, sent = recv_msg(pipe, "verify", max(1.0, spec.deadline - mono()))
    verdict = verify_kept(r, sent, adapter, spec.size)
    send_msg(pipe, "result", r.counts, sorted(r.lost), verdict)
    for s in r.socks:
        s.close()


# --- senders ---------------------------------------------------------------------------


@dataclass
class Writer:
    """One sender: its socket, the batch still to write, and what it wrote and read."""

    sock: socket.socket
    sid: int
    seq: int = 0
    pending: memoryview | None = None
    got: int = 0  # messages read (others', in a chat room)
    lost: bool = False

    def next_batch(self, spec: Spec, adapter: Adapter) -> None:
        """The next ``batch`` messages, stamped now, as one buffer to write."""
        k = min(spec.batch, spec.cap - self.seq)
        if k <= 0:
            return
        t = mono_ns()
        frame, size, sid, seq = adapter.frame, spec.size, self.sid, self.seq
        data = b"".join(frame(payload(sid, s, t, size)) for s in range(seq, seq + k))
        self.seq += k
        self.pending = memoryview(data)

    def write(self, spec: Spec, adapter: Adapter, more: bool) -> None:
        """Write what the socket takes of the pending batch (a new one if ``more``)."""
        if self.pending is None and more:
            self.next_batch(spec, adapter)
        if self.pending is None:
            return
        try:
            n = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.lost, self.pending = True, None
            return
        self.pending = self.pending[n:] if n < len(self.pending) else None

    def read(self) -> None:
        """Read all there is (64 KiB a recv(), 64 at most): in a chat room a sender gets
        the others' messages, many times what it writes, and a sender that read less
        than it gets would be dropped as a slow consumer."""
        for _ in range(64):
            try:
                data = self.sock.recv(RECV)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.lost = True
                return
            self.got += data.count(b"#")


def pump(ws: list[Writer], spec: Spec, adapter: Adapter, stop_at: float) -> float:
    """Write batches as fast as the sockets take them until ``stop_at``, then finish the
    batches begun (never a cut message); read whatever arrives. The last write's time."""
    sel = selectors.DefaultSelector()
    for w in ws:
        sel.register(w.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, w)
    last = mono()
    for _ in range(100_000_000):  # bounded by stop_at and the deadline long before
        now = mono()
        more = now < stop_at
        if (not more and all(w.pending is None for w in ws)) or now > spec.deadline:
            break
        for key, ev in sel.select(0.05):
            w = key.data
            if ev & selectors.EVENT_READ:
                w.read()
            if ev & selectors.EVENT_WRITE and not w.lost:
                w.write(spec, adapter, more)
                last = now
    sel.close()
    return last


def drain_senders(ws: list[Writer], want: list[int], spec: Spec) -> None:
    """Read until every sender has ``want`` messages (the others'), the deadline, or
    ``idle_timeout`` s without progress."""
    sel = selectors.DefaultSelector()
    for w in ws:
        sel.register(w.sock, selectors.EVENT_READ, w)
    progress, since = -1, mono()
    for _ in range(10_000_000):
        got = sum(w.got for w in ws)
        if all(w.got >= x for w, x in zip(ws, want, strict=True)) or mono() > spec.deadline:
            break
        if got != progress:
            progress, since = got, mono()
        elif mono() - since > spec.idle_timeout:
            break
        for key, _ in sel.select(0.05):
            key.data.read()
    sel.close()


def read_until_told(ws: list[Writer], pipe: Connection, spec: Spec) -> None:
    """Keep reading what the senders' sockets receive until the coordinator speaks (or
    the deadline): the others may still be writing, and in a chat room a sender is a
    reader too, which a server may drop, or wait for, if it stops reading."""
    sel = selectors.DefaultSelector()
    for w in ws:
        sel.register(w.sock, selectors.EVENT_READ, w)
    for _ in range(10_000_000):  # bounded by the deadline long before
        if pipe.poll(0) or mono() > spec.deadline:
            break
        for key, _ in sel.select(0.02):
            key.data.read()
    sel.close()


def tx_body(pipe: Connection, spec: Spec, ids: list[int]) -> None:
    """A sender process: connect its senders, write flat out from "go" to the stop time,
    then read what the others wrote (a chat room)."""
    adapter = ADAPTERS[spec.system]
    socks = connect_all(spec, len(ids), adapter.pub_hello, adapter.pub_ready_newlines)
    ws = [Writer(s, sid) for s, sid in zip(socks, ids, strict=True)]
    send_msg(pipe, "ready", len(ws))
    _, stop_at = recv_msg(pipe, "go", max(1.0, spec.deadline - mono()))
    last = pump(ws, spec, adapter, stop_at)
    send_msg(pipe, "sent", [w.seq for w in ws], last, [w.lost for w in ws])
    read_until_told(ws, pipe, spec)  # a chat room's sender that stops reading is dropped
    _, want = recv_msg(pipe, "expect", max(1.0, spec.deadline - mono()))
    drain_senders(ws, want, spec)
    send_msg(pipe, "received", [w.got for w in ws], [w.lost for w in ws])
    for s in socks:
        s.close()


# --- the coordinator -------------------------------------------------------------------


@dataclass
class Group:
    """Worker processes of one side, and the coordinator's ends of their pipes."""

    procs: list[Any] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)

    def start(self, ctx: Any, body: Any, args: list[tuple[Any, ...]]) -> None:
        for a in args:
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=worker, args=(theirs, body, *a), daemon=True)
            p.start()
            theirs.close()
            self.procs.append(p)
            self.pipes.append(mine)

    def ask(self, kind: str, timeout: float) -> list[tuple[Any, ...]]:
        """The next message of ``kind`` from every worker (``timeout`` s in all)."""
        until = mono() + timeout
        return [recv_msg(p, kind, until - mono()) for p in self.pipes]

    def tell(self, *msg: Any) -> None:
        for p in self.pipes:
            send_msg(p, *msg)

    def stop(self) -> None:
        """Wait for the workers (5 s), then end any left by its own Process handle."""
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)


def split(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` near-equal shares (no empty share)."""
    parts = max(1, min(parts, n))
    return [n // parts + (i < n % parts) for i in range(parts)]


def sample_of(counts: list[int], sample: int) -> list[set[int]]:
    """Local indices to verify in each receiver process: ``sample`` receivers evenly
    spread over all of them, first and last included."""
    total = sum(counts)
    k = min(sample, total)
    picks = {round(j * (total - 1) / max(1, k - 1)) for j in range(k)} if k else set()
    out, base = [], 0
    for c in counts:
        out.append({i - base for i in picks if base <= i < base + c})
        base += c
    return out


def start_receivers(ctx: Any, a: argparse.Namespace, spec: Spec, g: Group) -> None:
    counts = split(a.receivers, a.rx_procs)
    samples = sample_of(counts, a.sample)
    g.start(ctx, rx_body, [(spec, n, s) for n, s in zip(counts, samples, strict=True)])
    g.ask("ready", max(1.0, spec.deadline - mono()))


def start_senders(ctx: Any, a: argparse.Namespace, spec: Spec, g: Group) -> None:
    shares = split(a.senders, a.tx_procs)
    firsts = [sum(shares[:i]) for i in range(len(shares))]
    g.start(
        ctx, tx_body, [(spec, list(range(f, f + n))) for f, n in zip(firsts, shares, strict=True)]
    )
    g.ask("ready", max(1.0, spec.deadline - mono()))


def naive_ready(pid: int, threads: int, limit: float) -> None:
    """The naive relay forwards to a peer once its thread runs: wait for them all."""
    for _ in range(int(limit / 0.01) + 1):
        if pid <= 0 or proc_status(pid).get("Threads", 0) >= threads:
            return
        time.sleep(0.01)
    raise TimeoutError(f"the naive relay has not started {threads} threads")


def connect_phase(ctx: Any, a: argparse.Namespace, spec: Spec, rx: Group, tx: Group) -> float:
    """Connect both sides (warm: receivers first; cold: senders first); the time it took
    to connect the receivers."""
    if a.cold:
        start_senders(ctx, a, spec, tx)
    t0 = mono()
    start_receivers(ctx, a, spec, rx)
    connect_s = mono() - t0
    if not a.cold:
        start_senders(ctx, a, spec, tx)
    if a.system == "naive":
        naive_ready(a.pids[0], a.receivers + a.senders + 1, 10.0)
    return connect_s


def worker_pids(*groups: Group) -> list[int]:
    return [p.pid or 0 for g in groups for p in g.procs]


def cpu_reading(a: argparse.Namespace, workers: list[int]) -> dict[str, Any]:
    """loadgen's CPU reading, with ``loadgen`` the worker processes' CPU summed."""
    c = cpu_now(a.pids + workers, a.bus_pid)
    n = len(a.pids)
    c["loadgen"] = sum(x or 0 for x in c["servers"][n:])
    c["servers"] = c["servers"][:n]
    return c


def traffic(a: argparse.Namespace, rx: Group, tx: Group, result: dict[str, Any]) -> list[int]:
    """Go, then wait for the senders to stop and the receivers to have it all: the
    timed window, with the server CPU read at both ends. What each sender wrote."""
    workers = worker_pids(rx, tx)
    cpu0 = cpu_reading(a, workers)
    t_start = mono()
    tx.tell("go", t_start + a.duration)
    sent_msgs = tx.ask("sent", a.duration + 60)
    sent = [x for m in sent_msgs for x in m[1]]
    last_write = max(m[2] for m in sent_msgs)
    rx.tell("target", sum(sent))
    drained = rx.ask("drained", max(1.0, a.deadline - mono()))
    cpu = cpu_used(cpu0, cpu_reading(a, workers))
    last_rx = max((m[2] for m in drained), default=0.0) or mono()
    cpu["wall"] = round(last_rx - t_start, 3)
    result["cpu_s"] = cpu
    result["outcome"] = next((m[1] for m in drained if m[1] != "complete"), "complete")
    result["sending_s"] = round(last_write - t_start, 3)
    result["elapsed_s"] = round(max(1e-9, last_rx - t_start), 4)
    result["senders_lost"] = sum(1 for m in sent_msgs for x in m[3] if x)
    return sent


def check_senders(
    a: argparse.Namespace, tx: Group, sent: list[int], result: dict[str, Any]
) -> bool:
    """In a chat room every sender gets what the others wrote; elsewhere none. Whether
    every sender's count is right."""
    chat = ADAPTERS[a.system].chat
    want = [sum(sent) - x if chat else 0 for x in sent]
    shares = split(a.senders, a.tx_procs)
    firsts = [sum(shares[:i]) for i in range(len(shares))]
    for pipe, f, n in zip(tx.pipes, firsts, shares, strict=True):
        send_msg(pipe, "expect", want[f : f + n])
    got = [x for m in tx.ask("received", 60) for x in m[1]]
    result["extra_to_senders"] = sum(got)
    wrong = [
        (f"sender {i}", g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w
    ]
    result["senders_wrong"] = [f"{who} got {g:,} of {w:,}" for who, g, w in wrong[:3]]
    return not wrong


def per_receiver(counts: list[int], each: int) -> dict[str, Any]:
    """The receivers' counts against what each should have got (loadgen's fields)."""
    wrong = [(i, c) for i, c in enumerate(counts) if c != each]
    return {
        "expected_each": each,
        "receivers": len(counts),
        "min": min(counts, default=0),
        "max": max(counts, default=0),
        "wrong": len(wrong),
        "short": sum(1 for _, c in wrong if c < each),
        "over": sum(1 for _, c in wrong if c > each),
        "examples": [f"receiver {i} got {c:,} of {each:,}" for i, c in wrong[:3]],
    }


def merge_verdicts(parts: list[Verdict], result: dict[str, Any]) -> Verdict:
    """The receiver processes' verdicts as one, in ``result`` as loadgen reports it."""
    v = merge(parts)
    v.latencies_ns.sort()
    record_verdict(result, v)
    return v


def check_receivers(rx: Group, sent: list[int], result: dict[str, Any]) -> bool:
    """Every receiver's count, and the sample message by message; whether all is right."""
    rx.tell("verify", sent)
    msgs = rx.ask("result", 120)
    counts = [c for m in msgs for c in m[1]]
    each = sum(sent)
    pr = per_receiver(counts, each)
    result["per_receiver"] = pr
    result["receivers_lost"] = sum(len(m[2]) for m in msgs)
    result["expected"] = each * len(counts)
    result["delivered"] = sum(counts)
    v = merge_verdicts([m[3] for m in msgs], result)
    bad = v.lost + v.duplicated + v.corrupted + v.reordered
    return pr["wrong"] == 0 and result["receivers_lost"] == 0 and bad == 0


def figures(a: argparse.Namespace, result: dict[str, Any]) -> None:
    """deliveries/s and the server CPU µs per delivery (servers and bus)."""
    delivered = result.get("delivered") or 0
    result["deliveries_per_s"] = round(delivered / result["elapsed_s"], 1)
    cpu = result["cpu_s"]
    server = sum(x or 0 for x in cpu["servers"]) + (cpu.get("bus") or 0)
    result["server_cpu_s"] = round(server, 3)
    result["cpu_us_per_delivery"] = round(server / delivered * 1e6, 4) if delivered else None


def run(a: argparse.Namespace) -> dict[str, Any]:
    """One workload: connect, traffic, checks; the result."""
    spec = Spec(a.system, a.ports[0], a.size, a.batch, a.messages, a.deadline, a.idle_timeout)
    result: dict[str, Any] = {"system": a.system, "workload": a.workload, "shape": "open"}
    result |= {"senders": a.senders, "receivers": a.receivers, "batch": a.batch}
    result |= {"duration": a.duration, "messages": a.messages, "cold": a.cold}
    result["rss_before_kib"] = rss_kib(a.pids)
    ctx = mp.get_context("fork")  # the workers inherit Spec and the imports
    rx, tx = Group(), Group()  # filled as they start: stopped whatever happens
    try:
        connect_s = connect_phase(ctx, a, spec, rx, tx)
        result["connect_s"] = round(connect_s, 3)
        result["rss_ready_kib"] = rss_kib(a.pids)
        if not a.cold:  # warm: traffic 1 s after every peer is ready
            time.sleep(a.settle)
        sent = traffic(a, rx, tx, result)
        result["sent"] = sum(sent)
        result["stopped_by"] = ["cap" if a.messages in sent else "duration"]
        result["rss_end_kib"] = rss_kib(a.pids)
        # not sampled through the run: the most of the three readings, and the kernel's
        result["rss_peak_kib"] = max(
            result[k] or 0 for k in ("rss_before_kib", "rss_ready_kib", "rss_end_kib")
        )
        result["hwm_kib"] = rss_kib(a.pids, "VmHWM")
        senders_ok = check_senders(a, tx, sent, result)
        receivers_ok = check_receivers(rx, sent, result)
        figures(a, result)
        ok = result["outcome"] == "complete" and result["senders_lost"] == 0
        result["clean"] = ok and senders_ok and receivers_ok
    finally:
        rx.stop()
        tx.stop()
    return result


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="open-loop load generator (one run)")
    p.add_argument("--system", choices=sorted(ADAPTERS), required=True)
    p.add_argument("--workload", default="custom")
    p.add_argument("--port", type=int, help="the server's port (or --ports: the first)")
    p.add_argument("--ports", default="", help="accepted for bench/run.py: the first is used")
    p.add_argument("--pid", default="0", help="server PID(s), for its CPU and memory")
    p.add_argument("--bus-pid", type=int, default=0)
    p.add_argument("--receivers", type=int, default=100)
    p.add_argument("--senders", type=int, default=1)
    p.add_argument("--duration", type=float, default=MIN_DURATION, help="seconds, at least 3")
    p.add_argument("--messages", type=int, default=50_000_000, help="cap per sender")
    p.add_argument("--batch", type=int, default=64, help="messages per write()")
    p.add_argument("--size", type=int, default=100, help="message bytes (without newline)")
    p.add_argument("--cold", type=int, default=0, help="1: traffic the moment receivers are ready")
    p.add_argument("--settle", type=float, default=1.0, help="warm: seconds before traffic")
    p.add_argument("--rx-procs", type=int, default=1, help="receiver processes")
    p.add_argument("--tx-procs", type=int, default=0, help="sender processes (0: one each)")
    p.add_argument("--sample", type=int, default=10, help="receivers verified in full")
    p.add_argument("--idle-timeout", type=float, default=10.0)
    p.add_argument("--max-seconds", type=float, default=120.0)
    a = p.parse_args()
    try:
        ports = [int(x) for x in a.ports.split(",") if x.strip()]
        a.pids = [int(x) for x in str(a.pid).split(",") if x.strip()] or [0]
    except ValueError:
        p.error("--ports and --pid take integers separated by commas")
    a.ports = [a.port] if a.port is not None else ports[:1]
    if not a.ports:
        p.error("give --port or --ports")
    if a.duration < MIN_DURATION:
        p.error(f"--duration must be at least {MIN_DURATION:g} s of steady traffic")
    a.tx_procs = a.tx_procs or a.senders
    a.deadline = mono() + a.max_seconds
    return a


def main() -> None:
    a = parse()
    try:
        result = run(a)
    except Exception as exc:  # report, do not hide: the runner marks the run failed
        result = {"system": a.system, "workload": a.workload, "clean": False}
        result["outcome"] = f"error: {exc!r}"
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
