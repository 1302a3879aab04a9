"""Measures bench/capacity.py's costs and checks its notes against a real run (issue 20);
the figures of docs/scaling.md.

    .venv/bin/python -m bench.capacity_check               # about 85 s
    .venv/bin/python -m bench.capacity_check --only costs  # steps 1 and 2, about 30 s
    .venv/bin/python -m bench.capacity_check --only check  # step 3, about 50 s

1. **Redis's costs**: a Redis Cluster node holding every slot, driven by
   ``redis-benchmark`` (8 clients, 16 commands a round trip: a busy Redis); its CPU time
   (utime + stime, /proc/PID/stat) over the commands gives CPU µs per SPUBLISH that
   nobody follows (a control note), per room publication as a replica sends it (EVAL of
   buslinks.NUMBER with one note: TIME, GET and SET of the room's id key, XADD MAXLEN ~
   1000, EXPIRE, SPUBLISH), whose excess over SPUBLISH is the model's *log*, and per
   delivery (the script with 16 ``redis-cli ssubscribe`` processes, less the script
   alone, over 16); MEMORY USAGE of the log over its length, the bytes of one entry.
   The sequence a room's publication was before bbb3ce1 (XADD, EXPIRE, SPUBLISH) is
   measured too, for comparison only.

2. **A replica's costs**: two ``peerchat-server`` replicas, P and R, on one
   redis-server. 40 plain-text users on P, each alone in its room there, say 50 lines a
   second each for 4 s; R has one silent member in each room. P's CPU per line is a line
   said; R's per note, a note read (applied, and delivered to its member). Then 10 users
   on P say as many lines into one room where R has 100 silent members: what R spends
   beyond its notes, per delivery beyond one a note, is a delivery in a busy room.

3. **Notes received per replica**, on a 3-shard Redis Cluster (``redis-cluster://``)
   and then on one redis-server (``redis://``): 4 replicas (``--quiet``,
   ``--metrics-port``, flood control and per-address limits off, as in bench/run.py),
   200 plain-text users (``/nick``, ``/join``) in 40 rooms of Zipf sizes (s = 1),
   dealt over the replicas in a shuffled order (as a least-connections balancer does).
   Once every user is in its room and the bus is quiet, each replica's
   ``peerchat_bus_notes_received_total`` and ``peerchat_deliveries_total`` are read;
   every user says 10 lines, one every 2 s from a random start; the counters are read
   again once every user got every line of its room. The difference is compared with
   bench.capacity for exactly that placement (``placed_notes``: the messages of each
   room where the replica has a member, its own included, plus the heartbeats, M a
   second), which must be within 15 %, and with the model's expectation over placements
   (``expected_notes``) and with one channel. Each shard's SPUBLISH count (INFO
   commandstats) is set beside the notes of its rooms and the control channel, and
   each replica's CPU beside what the model's costs make of its counts.

Every process is on 127.0.0.1 and stopped by its PID; every wait has a deadline and
every loop a count. Tables go to stdout, every figure to ``--json``; the exit status is
1 if a replica's notes are more than 15 % from the prediction.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import capacity
from bench.run import PEERCHAT_ENV, free_port
from peerchat_server.buslinks import LOG_TTL, NUMBER
from peerchat_server.notes import room_channel, room_ids, room_log

#: The largest error allowed between the notes measured and the exact prediction.
TOLERANCE = 0.15
TICK = os.sysconf("SC_CLK_TCK")
#: A message note as the replicas publish it is about this many bytes.
NOTE_BYTES = 260


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_until(test: Any, seconds: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / step) + 1):
        if test():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(step)
    raise RuntimeError(f"{what}: not in {seconds:g} s")


def cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=20
    )
    return done.stdout


# --- processes -----------------------------------------------------------------------------


class Process:
    """A child process with its output in a file, stopped by its PID."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> bytes:
        return self.log_path.read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def redis_server(tmp: Path, *options: str) -> tuple[Process, int]:
    port = free_port()
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = Process(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
            str(tmp),
            *options,
        ],
        tmp / f"redis-{port}.out",
    )
    try:
        wait_until(
            lambda: listening(port) or proc.proc.poll() is not None, 10, f"redis-server on {port}"
        )
        if proc.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {proc.output()[-500:]!r}")
    except BaseException:
        proc.stop()
        raise
    return proc, port


@contextlib.contextmanager
def redis_bus(kind: str, tmp: Path) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """One redis-server (``redis``) or a 3-shard Redis Cluster (``cluster``): its URL and
    (port, PID) of each shard."""
    procs: list[tuple[Process, int]] = []
    try:
        if kind == "redis":
            procs.append(redis_server(tmp))
            port = procs[0][1]
            yield f"redis://127.0.0.1:{port}/0", [(port, procs[0][0].pid)]
            return
        for n in range(3):
            conf = str(tmp / f"nodes-{n}-{time.monotonic_ns()}.conf")
            procs.append(
                redis_server(
                    tmp,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    conf,
                    "--cluster-port",
                    str(free_port()),
                )
            )
        addresses = [f"127.0.0.1:{port}" for _, port in procs]
        made = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if made.returncode != 0:
            raise RuntimeError(made.stdout + made.stderr)
        wait_until(
            lambda: all("cluster_state:ok" in cli(p, "cluster", "info") for _, p in procs),
            15,
            "the cluster",
        )
        yield "redis-cluster://" + ",".join(addresses), [(p, proc.pid) for proc, p in procs]
    finally:
        for proc, _ in reversed(procs):
            proc.stop()


# --- Redis's own costs ---------------------------------------------------------------------


def _bench(port: int, pid: int, clients: int, pipeline: int, n: int, *command: str) -> float:
    """Redis CPU µs per command of ``redis-benchmark`` running ``command`` ``n`` times
    (over the calls Redis counted); RuntimeError unless Redis ran them all without an
    error (redis-benchmark itself does not fail on error replies)."""
    name = command[0].lower()
    calls_before = _calls(port).get(name, (0, 0))
    before = cpu_seconds(pid)
    subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(port),
            "-c",
            str(clients),
            "-P",
            str(pipeline),
            "-n",
            str(n),
            "-q",
            *command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )
    used = cpu_seconds(pid) - before
    calls_after = _calls(port).get(name, (0, 0))
    calls, failed = calls_after[0] - calls_before[0], calls_after[1] - calls_before[1]
    if calls < n or failed:  # (it may run a few more: whole pipelines)
        raise RuntimeError(f"{name}: {calls} of {n} run, {failed} failed or rejected")
    return used * 1e6 / calls


def _calls(port: int) -> dict[str, tuple[int, int]]:
    """(calls, failed + rejected calls) of each command since the start."""
    found = {}
    for line in cli(port, "info", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            fields = dict(field.split("=") for field in rest.split(","))
            bad = int(fields.get("failed_calls", 0)) + int(fields.get("rejected_calls", 0))
            found[name.removeprefix("cmdstat_")] = (int(fields["calls"]), bad)
    return found


def redis_costs(tmp: Path, subscribers: int = 16, n: int = 300_000) -> dict[str, Any]:
    """CPU µs of one Redis core per SPUBLISH (a control note), per room publication
    (buslinks.NUMBER, as a replica sends it), per delivery to a subscriber, loaded: 8
    clients, 16 commands per round trip (see the module's docstring)."""
    conf = str(tmp / f"costs-{time.monotonic_ns()}.conf")
    proc, port = redis_server(
        tmp,
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        str(free_port()),
        "--cluster-config-file",
        conf,
    )
    subs: list[subprocess.Popen[bytes]] = []
    payload = "x" * NOTE_BYTES
    channel, log, ids = room_channel("r"), room_log("r"), room_ids("r")
    # One room's publication of one note, as buslinks._Publishing.send sends it on a
    # Cluster: EVAL of the script's text (not EVALSHA), keys, data, notes, keep, TTL.
    number = ("eval", NUMBER, "2", log, ids, payload, "1", str(capacity.LOG_KEEP),
              str(LOG_TTL), "spublish", channel)  # fmt: skip
    # What a room's publication was before (bbb3ce1), for comparison: XADD + EXPIRE +
    # SPUBLISH, in a room of its own.
    old_log = room_log("o")
    clients, pipeline = 8, 16
    try:
        cli(port, "cluster", "addslotsrange", "0", "16383")
        wait_until(lambda: "cluster_state:ok" in cli(port, "cluster", "info"), 15, "one node")

        def bench(count: int, *command: str) -> float:
            return _bench(port, proc.pid, clients, pipeline, count, *command)

        bench(n // 4, "spublish", channel, payload)  # warm-up, not counted
        bench(n // 4, *number)  # (and the script compiled, as on a live bus)
        alone = bench(n, "spublish", channel, payload)
        numbered = bench(n, *number)
        xadd = bench(n, "xadd", old_log, "MAXLEN", "~", "1000", "*", "n", payload)
        expire = bench(n, "expire", old_log, "86400")
        entries = int(cli(port, "xlen", log).strip() or 0)
        entry_bytes = int(cli(port, "memory", "usage", log).strip() or 0) / max(1, entries)
        for _ in range(subscribers):
            subs.append(
                subprocess.Popen(
                    ["redis-cli", "-p", str(port), "ssubscribe", channel],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        wait_until(
            lambda: cli(port, "pubsub", "shardnumsub", channel).split()[-1:] == [str(subscribers)],
            10,
            "the subscribers",
        )
        many = bench(n // 2, *number)
        for sub in subs:
            sub.terminate()
        wait_until(
            lambda: cli(port, "pubsub", "shardnumsub", channel).split()[-1:] == ["0"],
            10,
            "the subscribers gone",
        )
        alone = (alone + bench(n, "spublish", channel, payload)) / 2  # before and after
        numbered = (numbered + bench(n, *number)) / 2
    finally:
        for sub in subs:
            sub.terminate()
        for sub in subs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sub.wait(5)
        proc.stop()
    return {
        "clients": clients,
        "pipeline": pipeline,
        "subscribers": subscribers,
        "payload_bytes": NOTE_BYTES,
        "commands": n,
        "publish_us": alone,
        # A room's publication is the script: the model's *publish* plus *log*.
        "number_us": numbered,
        "log_us": numbered - alone,
        "redis_delivery_us": (many - numbered) / subscribers,
        "before_us": alone + xadd + expire,  # (the old sequence; not in the model)
        "log_entries": entries,
        "log_entry_bytes": entry_bytes,
    }


# --- the replicas and their users ------------------------------------------------------------


def metrics(port: int) -> dict[str, float]:
    """A replica's /metrics, as {name: value} (unlabelled samples only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


@dataclass
class Reading:
    """One replica's counters at one moment."""

    at: float
    notes: float
    deliveries: float
    cpu: float

    @classmethod
    def of(cls, metrics_port: int, pid: int) -> Reading:
        m = metrics(metrics_port)
        return cls(
            time.monotonic(),
            m["peerchat_bus_notes_received_total"],
            m["peerchat_deliveries_total"],
            cpu_seconds(pid),
        )


def commandstats(port: int) -> dict[str, int]:
    """Calls of each command since the start (INFO commandstats; a script's commands
    are counted too)."""
    return {name: calls for name, (calls, _) in _calls(port).items()}


@dataclass
class Placement:
    """Who is where: each user's room and replica."""

    sizes: list[int]
    room_of: list[int]
    replica_of: list[int]
    replicas: int

    @classmethod
    def deal(cls, users: int, rooms: int, zipf: float, replicas: int, seed: int) -> Placement:
        sizes = capacity.zipf_sizes(users, rooms, zipf)
        room_of = [r for r, k in enumerate(sizes) for _ in range(k)]
        order = list(range(users))
        random.Random(seed).shuffle(order)  # arrival order; each goes to the least loaded
        replica_of = [0] * users
        for turn, user in enumerate(order):
            replica_of[user] = turn % replicas
        return cls(sizes, room_of, replica_of, replicas)

    def members(self) -> list[list[int]]:
        """members[r][j]: room r's members on replica j."""
        table = [[0] * self.replicas for _ in self.sizes]
        for user, room in enumerate(self.room_of):
            table[room][self.replica_of[user]] += 1
        return table


@dataclass
class User:
    name: str
    room: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    heard: int = 0  # chat lines from others


async def _read(user: User) -> None:
    for _ in range(10_000_000):  # until the connection ends (cancelled at the end)
        line = await user.reader.readline()
        if not line:
            return
        if line.startswith(b"<"):
            user.heard += 1


async def _connect(port: int, name: str, room: str) -> User:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    user = User(name, room, reader, writer)
    for _ in range(2):  # the banner: registered
        await asyncio.wait_for(reader.readline(), 10)
    writer.write(f"/nick {name}\n/join {room}\n".encode())
    await writer.drain()
    return user


def _settle(readers: list[tuple[int, int]], replicas: int, seconds: float = 15) -> None:
    """Wait until each replica reads only heartbeats (M a second) for a second."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds) + 1):
        before = [metrics(p)["peerchat_bus_notes_received_total"] for p, _ in readers]
        time.sleep(1.0)
        after = [metrics(p)["peerchat_bus_notes_received_total"] for p, _ in readers]
        if all(b - a <= replicas + 1 for a, b in zip(before, after, strict=True)):
            return
        if time.monotonic() > deadline:
            break
    raise RuntimeError("the bus did not go quiet")


async def _traffic(users: list[User], lines: int, every: float, seed: int) -> float:
    """Each user says ``lines`` lines, one every ``every`` s from a random start; the
    seconds it took."""
    rng = random.Random(seed)
    plan = sorted(
        (rng.uniform(0, every) + n * every, i) for i in range(len(users)) for n in range(lines)
    )
    start = time.monotonic()
    said = [0] * len(users)
    for at, i in plan:  # bounded: lines per user
        delay = start + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = users[i]
        said[i] += 1
        user.writer.write(f"line {said[i]} of {user.name}\n".encode())
    for user in users:
        await asyncio.wait_for(user.writer.drain(), 10)
    return time.monotonic() - start


async def _all_heard(users: list[User], expected: list[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05) + 1):
        if all(u.heard >= e for u, e in zip(users, expected, strict=True)):
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    short = sum(max(0, e - u.heard) for u, e in zip(users, expected, strict=True))
    raise RuntimeError(f"{short} lines not delivered in {seconds:g} s")


def run_once(kind: str, a: argparse.Namespace, tmp: Path, seed: int) -> dict[str, Any]:
    """One measurement on one bus kind (``cluster`` or ``redis``)."""
    place = Placement.deal(a.users, a.rooms, a.zipf, a.replicas, seed)
    with redis_bus(kind, tmp) as (url, shards):
        servers = _replicas(url, a.replicas, tmp, kind)
        try:
            return asyncio.run(_measure(kind, a, place, place.members(), servers, shards, seed))
        finally:
            for proc, _, _ in reversed(servers):
                proc.stop()


async def _measure(
    kind: str,
    a: argparse.Namespace,
    place: Placement,
    members: list[list[int]],
    servers: list[tuple[Any, int, int]],
    shards: list[tuple[int, int]],
    seed: int,
) -> dict[str, Any]:
    m = a.replicas
    users = []
    for i, (room, j) in enumerate(zip(place.room_of, place.replica_of, strict=True)):
        users.append(await _connect(servers[j][1], f"u{i:03d}", f"r{room:02d}"))
    readers = [asyncio.create_task(_read(u)) for u in users]
    try:
        followed = [sum(1 for row in members if row[j] > 0) for j in range(m)]
        await asyncio.to_thread(
            wait_until,
            lambda: all(
                metrics(mp)["peerchat_bus_rooms_followed"] == followed[j]
                for j, (_, _, mp) in enumerate(servers)
            ),
            20,
            "rooms followed",
        )
        await asyncio.to_thread(_settle, [(mp, p.pid) for p, _, mp in servers], m)
        shard_before = [(commandstats(port), cpu_seconds(pid)) for port, pid in shards]
        before = [Reading.of(mp, p.pid) for p, _, mp in servers]
        took = await _traffic(users, a.lines, 1 / a.rate, seed)
        expected = [(place.sizes[place.room_of[i]] - 1) * a.lines for i in range(len(users))]
        await _all_heard(users, expected, 20)
        await asyncio.sleep(0.5)  # (the last notes counted: they came before the lines)
        after = [Reading.of(mp, p.pid) for p, _, mp in servers]
        shard_after = [(commandstats(port), cpu_seconds(pid)) for port, pid in shards]
    finally:
        for task in readers:
            task.cancel()
        for user in users:
            user.writer.close()
    messages = [k * a.lines for k in place.sizes]
    sent = [[row[j] * a.lines for j in range(m)] for row in members]
    replicas = []
    expectation_rooms = capacity.expected_notes(place.sizes, messages, m, 0.0)
    for j in range(m):
        window = after[j].at - before[j].at
        beats = m / capacity.HEARTBEAT_SECONDS * window
        exact = capacity.placed_notes(members, messages, beats)[j]
        one = capacity.placed_notes(members, messages, beats, capacity.ONE_CHANNEL)[j]
        measured = after[j].notes - before[j].notes
        deliveries = after[j].deliveries - before[j].deliveries
        said = sum(s[j] for s in sent)
        modelled_cpu = sum(capacity.replica_cpu(measured, said, deliveries))
        replicas.append(
            {
                "replica": j + 1,
                "users": sum(row[j] for row in members),
                "rooms_followed": sum(1 for row in members if row[j] > 0),
                "window_s": window,
                "heartbeats": beats,
                "measured": measured,
                "predicted": exact,
                "error": measured / exact - 1,
                "expected": expectation_rooms + beats,
                "one_channel": one,
                "deliveries": deliveries,
                "deliveries_predicted": capacity.placed_deliveries(members, sent)[j],
                "cpu_s": after[j].cpu - before[j].cpu,
                "cpu_s_model": modelled_cpu,
            }
        )
    shard_rows = _shards(kind, place, messages, shards, shard_before, shard_after, before, after)
    return {
        "bus": kind,
        "replicas": replicas,
        "shards": shard_rows,
        "traffic_s": took,
        "lines_per_user": a.lines,
        "messages": sum(messages),
        "sizes": place.sizes,
        "members": members,
    }


def _shards(
    kind: str,
    place: Placement,
    messages: list[int],
    shards: list[tuple[int, int]],
    before: list[tuple[dict[str, int], float]],
    after: list[tuple[dict[str, int], float]],
    r_before: list[Reading],
    r_after: list[Reading],
) -> list[dict[str, Any]]:
    """Each shard's publications (measured) beside the notes of its channels."""
    from redis.crc import key_slot

    from peerchat_server.notes import CONTROL, room_channel

    m = place.replicas
    window = sum(r.at for r in r_after) / m - sum(r.at for r in r_before) / m
    beats = m / capacity.HEARTBEAT_SECONDS * window
    owner: list[tuple[int, int, int]] = []  # (first slot, last slot, shard index)
    if kind == "cluster":
        ports = [port for port, _ in shards]
        out = subprocess.run(
            ["redis-cli", "-p", str(ports[0]), "--json", "cluster", "slots"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        for first, last, master, *_ in json.loads(out):
            owner.append((first, last, ports.index(int(master[1]))))

    def shard_of(channel: str) -> int:
        slot = key_slot(channel.encode())
        return next((s for a, b, s in owner if a <= slot <= b), 0)

    notes = [0.0] * len(shards)
    notes[shard_of(CONTROL)] += beats
    for room, n in enumerate(messages):
        notes[shard_of(room_channel(f"r{room:02d}"))] += n
    command = "spublish" if kind == "cluster" else "publish"
    rows = []
    for s, ((calls0, cpu0), (calls1, cpu1)) in enumerate(zip(before, after, strict=True)):
        pubs = calls1.get(command, 0) - calls0.get(command, 0)
        rows.append(
            {
                "shard": s + 1,
                "notes": notes[s],
                "publications": pubs,
                "xadd": calls1.get("xadd", 0) - calls0.get("xadd", 0),
                "cpu_s": cpu1 - cpu0,
            }
        )
    return rows


# --- a replica's own costs ------------------------------------------------------------------


def _replicas(url: str, count: int, tmp: Path, tag: str) -> list[tuple[Process, int, int]]:
    """``count`` peerchat-server processes on the bus at ``url``: (process, chat port,
    metrics port), each connected to Redis."""
    exe = Path(sys.executable).parent / "peerchat-server"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "peerchat_server"]
    env = {**os.environ, **PEERCHAT_ENV}
    servers: list[tuple[Process, int, int]] = []
    try:
        for j in range(count):
            port, mport = free_port(), free_port()
            cmd = [
                *base,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--metrics-port",
                str(mport),
                "--quiet",
                "--bus",
                url,
            ]
            servers.append((Process(cmd, tmp / f"{tag}-r{j}.out", env), port, mport))
        for proc, _, _ in servers:
            wait_until(
                lambda proc=proc: b"Connected to Redis" in proc.output(),
                20,
                f"replica {proc.pid} on the bus",
            )
    except BaseException:
        for proc, _, _ in reversed(servers):
            proc.stop()
        raise
    return servers


def replica_costs(
    tmp: Path,
    rooms: int = 40,
    rate: float = 50.0,
    lines: int = 200,
    crowd: int = 100,
    voices: int = 10,
) -> dict[str, Any]:
    """CPU µs of a replica per line its peer says, per note it reads and per delivery,
    between two replicas, P and R, on one redis-server.

    Quiet rooms: ``rooms`` senders on P (one a room, alone there on P), and one silent
    member of each room on R; each sender says ``lines`` lines at ``rate`` a second (one
    a write). CPU(P) / lines is a line said (read, published, and its note read back
    from Redis, numbered, and applied); CPU(R) / notes a note read, applied and
    delivered to its one member.
    A busy room: ``voices`` senders on P and ``crowd`` silent members on R in one room,
    the same lines and rate: what R spends beyond its notes, over the deliveries beyond
    one a note, is a delivery in a busy room (one write per member and loop pass
    carries the messages of that pass)."""
    with redis_bus("redis", tmp) as (url, _):
        servers = _replicas(url, 2, tmp, "costs")
        try:
            return asyncio.run(_replica_costs(servers, rooms, rate, lines, crowd, voices))
        finally:
            for proc, _, _ in reversed(servers):
                proc.stop()


async def _phase(
    servers: list[tuple[Process, int, int]],
    senders: list[User],
    silent: list[User],
    lines: int,
    rate: float,
    seed: int,
) -> dict[str, Any]:
    """One run of traffic between P and R: the counters and CPU of each."""
    (p, _, p_metrics), (r, _, r_metrics) = servers
    await asyncio.to_thread(_settle, [(p_metrics, p.pid), (r_metrics, r.pid)], 2)
    heard = [u.heard for u in silent]
    before = [Reading.of(p_metrics, p.pid), Reading.of(r_metrics, r.pid)]
    took = await _traffic(senders, lines, 1 / rate, seed)
    each = lines * len(senders) // len({u.room for u in senders})
    await _all_heard(silent, [h + each for h in heard], 30)
    after = [Reading.of(p_metrics, p.pid), Reading.of(r_metrics, r.pid)]
    return {
        "lines": lines * len(senders),
        "seconds": took,
        "silent": len(silent),
        "p_cpu_s": after[0].cpu - before[0].cpu,
        "r_cpu_s": after[1].cpu - before[1].cpu,
        "p_notes": after[0].notes - before[0].notes,
        "r_notes": after[1].notes - before[1].notes,
        "r_deliveries": after[1].deliveries - before[1].deliveries,
    }


async def _replica_costs(
    servers: list[tuple[Process, int, int]],
    rooms: int,
    rate: float,
    lines: int,
    crowd: int,
    voices: int,
) -> dict[str, Any]:
    (_, p_port, _), (_, r_port, r_metrics) = servers
    users: list[User] = []
    tasks: list[asyncio.Task[None]] = []

    async def join(port: int, name: str, room: str) -> User:
        user = await _connect(port, name, room)
        users.append(user)
        tasks.append(asyncio.create_task(_read(user)))
        return user

    try:
        senders = [await join(p_port, f"s{i:02d}", f"c{i:02d}") for i in range(rooms)]
        silent = [await join(r_port, f"q{i:02d}", f"c{i:02d}") for i in range(rooms)]
        await asyncio.to_thread(
            wait_until,
            lambda: metrics(r_metrics)["peerchat_bus_rooms_followed"] == rooms,
            20,
            "rooms followed",
        )
        quiet = await _phase(servers, senders, silent, lines, rate, 1)
        voiced = [await join(p_port, f"v{i:02d}", "busy") for i in range(voices)]
        crowded = [await join(r_port, f"w{i:03d}", "busy") for i in range(crowd)]
        await asyncio.to_thread(
            wait_until,
            lambda: metrics(r_metrics)["peerchat_bus_rooms_followed"] == rooms + 1,
            20,
            "the busy room followed",
        )
        busy = await _phase(servers, voiced, crowded, lines, rate, 2)
    finally:
        for task in tasks:
            task.cancel()
        for user in users:
            user.writer.close()
    note = quiet["r_cpu_s"] * 1e6 / quiet["r_notes"]
    beyond = busy["r_deliveries"] - busy["r_notes"]
    delivery = (busy["r_cpu_s"] * 1e6 - note * busy["r_notes"]) / beyond
    say = quiet["p_cpu_s"] * 1e6 / quiet["lines"]
    return {
        "rooms": rooms,
        "rate": rate,
        "crowd": crowd,
        "voices": voices,
        "quiet": quiet,
        "busy": busy,
        "note_us": note,
        "delivery_us": delivery,
        "say_us": say,
    }


# --- report --------------------------------------------------------------------------------


def report(runs: list[dict[str, Any]]) -> str:
    out = []
    for run in runs:
        out.append(f"\n{run['bus']}: {run['messages']} messages in {run['traffic_s']:.1f} s")
        out.append(
            "| replica | users | rooms followed | notes measured | predicted (placement) "
            "| error | expected (any placement) | one channel | deliveries measured / "
            "predicted | CPU s measured / model |"
        )
        out.append("| " + " | ".join(["---"] * 10) + " |")
        for r in run["replicas"]:
            out.append(
                f"| {r['replica']} | {r['users']} | {r['rooms_followed']} | {r['measured']:.0f} | "
                f"{r['predicted']:.0f} | {r['error']:+.1%} | {r['expected']:.0f} | "
                f"{r['one_channel']:.0f} | {r['deliveries']:.0f} / "
                f"{r['deliveries_predicted']:.0f} | {r['cpu_s']:.2f} / {r['cpu_s_model']:.2f} |"
            )
        shards = ", ".join(
            f"{s['shard']}: {s['publications']} publications for "
            f"{s['notes']:.0f} notes ({s['cpu_s']:.2f} CPU s)"
            for s in run["shards"]
        )
        out.append(f"shards: {shards}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.capacity_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--rooms", type=int, default=40)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.5, help="lines/s per user")
    ap.add_argument("--lines", type=int, default=10, help="lines per user")
    ap.add_argument("--seed", type=int, default=20, help="the placement and the timing")
    ap.add_argument("--buses", default="cluster,redis", help="cluster, redis, or both")
    ap.add_argument("--only", choices=("costs", "check"), help="only the costs, or the check")
    ap.add_argument("--json", type=Path, default=Path("/tmp/peerchat-capacity/check.json"))
    a = ap.parse_args(argv)
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install redis-server redis-tools)", file=sys.stderr)
            return 2
    started = time.monotonic()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "args": {k: str(v) for k, v in vars(a).items()},
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="peerchat-capacity-") as name:
        tmp = Path(name)
        if a.only != "check":
            c = result["redis_costs"] = redis_costs(tmp)
            print(
                f"Redis CPU µs, loaded: SPUBLISH {c['publish_us']:.2f}; a room's publication "
                f"(EVAL NUMBER) {c['number_us']:.2f}, so numbering and log "
                f"{c['log_us']:.2f}; per delivery {c['redis_delivery_us']:.2f}; before "
                f"bbb3ce1 (XADD + EXPIRE + SPUBLISH) {c['before_us']:.2f}; "
                f"{c['log_entry_bytes']:.0f} bytes per log entry ({c['log_entries']} "
                f"entries)"
            )
            mine = result["replica_costs"] = replica_costs(tmp)
            print(
                f"Replica CPU µs, {mine['rate'] * mine['rooms']:,.0f} lines/s over "
                f"{mine['rooms']} rooms: per line said {mine['say_us']:.0f}, per note read "
                f"{mine['note_us']:.0f}; {mine['rate'] * mine['voices']:,.0f} lines/s to "
                f"{mine['crowd']} members: per delivery {mine['delivery_us']:.2f}"
            )
        if a.only != "costs":
            runs = [run_once(kind, a, tmp, a.seed) for kind in a.buses.split(",")]
            result["runs"] = runs
            print(report(runs))
            worst = max(abs(r["error"]) for run in runs for r in run["replicas"])
            failed = worst > TOLERANCE
            print(
                f"\nlargest error: {worst:.1%} ({'over' if failed else 'within'} {TOLERANCE:.0%})"
            )
    result["seconds"] = time.monotonic() - started
    result["load_after"] = os.getloadavg()[0]
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1))
    print(f"{result['seconds']:.0f} s; figures in {a.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
