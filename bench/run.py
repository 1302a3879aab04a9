"""peerchat benchmark (issues 6 and 13): peerchat vs Redis pub/sub vs NATS vs a naive relay.

    .venv/bin/python -m bench.run            # full run: about 45 minutes on 2 idle cores
                                             # (3 repetitions; each run may wait up to 60 s more
                                             # for a quiet machine)
    .venv/bin/python -m bench.run --quick    # smoke run, under 2 minutes
    .venv/bin/python -m bench.run --help
    .venv/bin/python -m bench.run --replicas-compare          # issue 9: 2 replicas vs 1
    .venv/bin/python -m bench.run --replicas-compare --quick  # its smoke run, to /tmp

For every repetition, workload and system (the systems' order rotates each time), it
waits (at most ``--quiet-max`` s) for the machine to go quiet (whole-machine CPU busy
below ``--quiet-below`` % over ``--quiet-window`` s, from /proc/stat), starts a fresh
server on a free 127.0.0.1 port, runs the load generator (``bench/loadgen.py``) in its
own process against it, and stops the server by its PID. The quiet state before each
run and the machine's CPU during it (busy, not the bench's own processes, stolen by the
hypervisor) are kept with the run and published.

The throughput workloads (W1, W1s, W2, W4) run for a fixed duration: each sender writes
for ``duration`` s (5 s; a message cap and a hard deadline bound it too), then every
receiver must have received exactly what was written. W1s is W1 with one message per
write() instead of 50. Each turn of its event loop the sender writes what the in-flight
window has room for (``--turn 0``), so that the sender is not tied to the receivers'
reads. The single-sender ones (W1, W1s, W2) are also run, in the same rotation, against
``bench/trivial_relay.py`` (a relay that only copies bytes): the load generator's
measured ceiling. A figure at 90 % of it or more, or with the load generator's one
thread 90 % busy or more, is published as limited by the load generator. Each cell is
the median over repetitions with the min–max; each ratio to Redis is the median
(min–max) of per-repetition ratios (peerchat / Redis of the same repetition).
``docs/benchmarks.md`` and ``docs/benchmarks.png`` get the tables;
every run's raw result goes to ``bench/results/latest.json``. A run that lost,
duplicated, corrupted or reordered any message, or where any one receiver got more or
fewer messages than it should, is reported as such, never as a speed.

``peerchat-2r`` (not in the default systems) is peerchat as two replicas sharing one chat
through Redis (``--bus``): one ``redis-server`` and two ``peerchat-server`` processes,
each on a free 127.0.0.1 port, all stopped by their PIDs after the run. The sender
connects to the first replica, receivers alternate between the two. ``--replicas-compare``
runs W1 and W2 for ``peerchat`` and ``peerchat-2r`` and writes only the section
``## Replicas: 2 vs 1`` of ``docs/benchmarks.md`` (a full run keeps that section).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import TURN_MAX
from bench.openloop import MIN_DURATION
from bench.targets import targets_section

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SYSTEMS = ("peerchat", "redis", "nats", "naive")  # the default: make bench
#: peerchat as several replicas sharing one chat through one Redis: name -> replicas.
REPLICATED = {"peerchat-2r": 2}
KNOWN_SYSTEMS = (*SYSTEMS, *REPLICATED)
BASELINE = "redis"
#: bench/trivial_relay.py: copies bytes and nothing else; run in the single-sender
#: throughput workloads, in the same rotation, as the load generator's ceiling.
CEILING = "trivial"
REPLICAS_HEADING = "## Replicas: 2 vs 1"
#: the set-ups --replicas-compare compares: one peerchat server, and 2 replicas
ONE_SERVER, TWO_REPLICAS = "peerchat", "peerchat-2r"
# peerchat's per-peer flood control (5 lines/s after a 20-line burst) would measure the
# limit, not the relay, and W6 opens 10,000 connections from one address: the abuse
# limits are off, as Redis and NATS have none. Environment, not flags, so a server
# without the options still starts.
PEERCHAT_ENV = {
    "PEERCHAT_FLOOD_RATE": "0",
    "PEERCHAT_MAX_CONNECTIONS": "0",
    "PEERCHAT_MAX_PER_ADDRESS": "0",
    "PEERCHAT_ADDRESS_FLOOD_RATE": "0",
    "PEERCHAT_CONNECT_RATE": "0",
    "PEERCHAT_ADDRESS_WAIT_RATE": "0",
}

#: name: (title, load generator options). Messages are 100 bytes. ``duration``: each
#: sender writes for that many seconds, ``messages`` (per sender) being only a cap, far
#: above what any system reaches in that time; without it, ``messages`` are written.
#: ``batch``: messages per write(). ``{duration}`` in a title: the duration run.
FULL: dict[str, tuple[str, dict[str, Any]]] = {
    "W1": (
        "1 sender → 100 receivers, 50 msgs per write(), {duration}",
        {
            "receivers": 100,
            "duration": 5,
            "batch": 50,
            "turn": 0,
            "messages": 3_000_000,
            "max-seconds": 90,
        },
    ),
    "W1s": (
        "1 sender → 100 receivers, 1 msg per write(), {duration}",
        {
            "receivers": 100,
            "duration": 5,
            "batch": 1,
            "turn": 0,
            "messages": 3_000_000,
            "max-seconds": 90,
        },
    ),
    "W2": (
        "1 sender → 1,000 receivers, 50 msgs per write(), {duration}",
        {
            "receivers": 1000,
            "duration": 5,
            "batch": 50,
            "turn": 0,
            "messages": 300_000,
            "max-seconds": 120,
        },
    ),
    "W3": (
        "1 sender at 50 msg/s → 1,000 receivers, 10 s: each message a 1,000-socket fan-out",
        {"receivers": 1000, "messages": 500, "rate": 50},
    ),
    "W4": (
        "50 senders → 50 receivers, 50 msgs per write(), {duration}",
        {
            "receivers": 50,
            "senders": 50,
            "duration": 5,
            "batch": 50,
            "turn": 0,
            "messages": 200_000,
            "max-seconds": 120,
        },
    ),
    "W5": (
        "1 sender → 10 receivers, 1 never reads, 500,000 msgs (50 MB), 50 per write()",
        {
            "receivers": 10,
            "stalled": 1,
            "messages": 500000,
            "batch": 50,
            "turn": 0,
            "max-seconds": 240,
        },
    ),
    "W6": (
        "10,000 idle connections",
        {
            "receivers": 10000,
            "senders": 0,
            "messages": 0,
            "settle-max": 90,
            "quiet": 2,
            "max-seconds": 200,
        },
    ),
}
QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "W1": (
        "1 → 100, 50 per write(), {duration} (quick)",
        {"receivers": 100, "duration": 1, "batch": 50, "turn": 0, "messages": 500_000},
    ),
    "W1s": (
        "1 → 100, 1 per write(), {duration} (quick)",
        {"receivers": 100, "duration": 1, "batch": 1, "turn": 0, "messages": 500_000},
    ),
    "W2": (
        "1 → 300, 50 per write(), {duration} (quick)",
        {"receivers": 300, "duration": 1, "batch": 50, "turn": 0, "messages": 100_000},
    ),
    "W3": ("1 at 50 msg/s → 200, 2 s (quick)", {"receivers": 200, "messages": 100, "rate": 50}),
    "W4": (
        "20 senders → 20, 50 per write(), {duration} (quick)",
        {
            "receivers": 20,
            "senders": 20,
            "duration": 1,
            "batch": 50,
            "turn": 0,
            "messages": 100_000,
        },
    ),
    "W5": (
        "1 → 10, 1 never reads, 20,000 msgs (quick)",
        {
            "receivers": 10,
            "stalled": 1,
            "messages": 20000,
            "batch": 50,
            "turn": 0,
            "idle-timeout": 3,
        },
    ),
    "W6": (
        "1,000 idle connections (quick)",
        {"receivers": 1000, "senders": 0, "messages": 0, "settle-max": 10, "quiet": 1},
    ),
}
#: the open-loop shape (issue 16), run by ``bench/openloop.py``: sender processes apart
#: from receiver processes, 64 messages per write() as fast as TCP takes them, no window;
#: receivers read 64 KiB per recv(). O1c: O1 with traffic the moment the receivers are
#: ready (cold: peerchat's receivers have not sent a line). Never under 3 s of traffic.
OPEN_FULL: dict[str, tuple[str, dict[str, Any]]] = {
    "O1": ("open loop: 1 sender → 100 receivers, 64 per write(), {duration}", {"receivers": 100}),
    "O2": (
        "open loop: 1 sender → 1,000 receivers, 64 per write(), {duration}",
        {"receivers": 1000, "rx-procs": 2},
    ),
    "O4": (
        "open loop: 50 senders → 50 receivers, 64 per write(), {duration}",
        {"receivers": 50, "senders": 50, "rx-procs": 2},
    ),
    "O1c": (
        "open loop, cold: 1 sender → 100 receivers, traffic at once, {duration}",
        {"receivers": 100, "cold": 1},
    ),
}
OPEN_QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "O1": ("open loop: 1 → 100, 64 per write(), {duration} (quick)", {"receivers": 100}),
    "O2": (
        "open loop: 1 → 300, 64 per write(), {duration} (quick)",
        {"receivers": 300, "rx-procs": 2},  # one process alone falls behind: dropped
    ),
    "O4": (
        "open loop: 20 → 20, 64 per write(), {duration} (quick)",
        {"receivers": 20, "senders": 20, "rx-procs": 2},
    ),
    "O1c": ("open loop, cold: 1 → 100, {duration} (quick)", {"receivers": 100, "cold": 1}),
}
# full: 5 s of traffic a run; quick: 3 s (the least any throughput run gets: MIN_DURATION)
for _table, _open, _d in ((FULL, OPEN_FULL, 5.0), (QUICK, OPEN_QUICK, MIN_DURATION)):
    for _wl, (_title, _o) in _open.items():
        _table[_wl] = (_title, {"duration": _d, "batch": 64, "max-seconds": 120, **_o})
OPEN = frozenset(OPEN_FULL)
#: each open-loop workload beside its windowed counterpart (O1c has none)
OPEN_PAIRS = (("W1", "O1"), ("W2", "O2"), ("W4", "O4"), (None, "O1c"))
#: both shapes, and the cold run (issue 16)
DEFAULT_WORKLOADS = "W1,W1s,W2,W3,W4,W5,W6,O1,O2,O4,O1c"
#: a run's figures that are a speed: not given for a run that was not clean
SPEED = ("rate", "p50", "p99", "cpu_us")
#: a system at this share of the load generator's ceiling is limited by it
AT_CEILING = 0.9


def has_ceiling(opts: dict[str, Any]) -> bool:
    """A single-sender, fixed-duration workload: the copy relay can carry it."""
    return bool(opts.get("duration")) and opts.get("senders", 1) == 1 and not opts.get("stalled")


INSTALL_HINT = (
    "Install them with bench/install-deps.sh (apt-get install redis-server nats-server),\n"
    "or leave them out with --systems peerchat,naive."
)


# --- environment -------------------------------------------------------------------------


def find_exe(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):  # nats-server is in /usr/sbin
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return None


def check_deps(systems: list[str], chart: bool) -> dict[str, str]:
    exes: dict[str, str] = {}
    missing = []
    for system, exe in (("redis", "redis-server"), ("nats", "nats-server")):
        if system in systems or (system == "redis" and any(s in REPLICATED for s in systems)):
            path = find_exe(exe)
            if path is None:
                missing.append(exe)
            else:
                exes[system] = path
    if missing:
        sys.exit(f"ERROR: {' and '.join(missing)} not installed.\n{INSTALL_HINT}")
    if chart:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.exit(
                f"ERROR: matplotlib is missing: {sys.executable} -m pip install matplotlib\n"
                "(or pass --no-chart)."
            )
    return exes


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def machine_info(exes: dict[str, str]) -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "server", "protocol"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": version([exes["redis"], "--version"]) if "redis" in exes else "-",
        "nats": version([exes["nats"], "--version"]) if "nats" in exes else "-",
        "peerchat": commit + (" + uncommitted server/protocol changes" if dirty else ""),
    }


# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(
    system: str,
    port: int,
    tmp: Path,
    a: argparse.Namespace,
    exes: dict[str, str],
    bus: str | None = None,
) -> list[str]:
    if system == "peerchat" or system in REPLICATED:
        with_bus = ["--bus", bus] if bus else []
        if a.peerchat_cmd:
            return [*shlex.split(a.peerchat_cmd.format(port=port)), *with_bus]
        exe = Path(sys.executable).parent / "peerchat-server"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "peerchat_server"]
        return [*base, "--host", "127.0.0.1", "--port", str(port), "--quiet", *with_bus]
    if system == "redis":
        return [
            exes["redis"],
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--maxclients",
            "11000",
            "--dir",
            str(tmp),
            "--logfile",
            str(tmp / f"redis-{port}.log"),
        ]
    if system == "nats":
        return [
            exes["nats"],
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-l",
            str(tmp / f"nats-{port}.log"),
        ]
    if system in ("naive", "trivial"):
        return [sys.executable, str(BENCH / f"{system}_relay.py"), "--port", str(port)]
    raise ValueError(system)


class Server:
    def __init__(self, system: str, cmd: list[str], port: int, log: Path) -> None:
        self.system, self.port = system, port
        self.log_path = log
        self.log = log.open("wb")
        env = dict(os.environ)
        if system == "peerchat" or system in REPLICATED:
            env.update(PEERCHAT_ENV)
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + 15
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{system} exited with {self.proc.returncode}; see {log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{system} did not listen on 127.0.0.1:{port} in 15 s; see {log}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, text: str, seconds: float) -> None:
        """Wait until the server's output holds ``text`` (e.g. ``Connected to Redis``)."""
        deadline = time.monotonic() + seconds
        for _ in range(int(seconds / 0.05) + 1):
            if text.encode() in self.log_path.read_bytes():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.system} exited with {self.proc.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.system} on port {self.port} did not print {text!r} in {seconds:g} s; "
            f"see {self.log_path}"
        )

    def output_count(self, text: str) -> int:
        try:
            return self.log_path.read_bytes().count(text.encode())
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


class Deployment:
    """Every process of one system for one run: one server, or Redis and the replicas.

    Started in order, stopped by their PIDs in the reverse order (:meth:`stop`), also
    when starting one of them fails.
    """

    def __init__(
        self,
        system: str,
        wl: str,
        a: argparse.Namespace,
        exes: dict[str, str],
        tmp: Path,
    ) -> None:
        self.procs: list[Server] = []
        self.bus: Server | None = None
        self.replicas: list[Server] = []
        try:
            n = REPLICATED.get(system, 0)
            if not n:
                port = free_port()
                cmd = server_command(system, port, tmp, a, exes)
                self.replicas = [Server(system, cmd, port, tmp / f"{system}-{wl}-{port}.out")]
                self.procs = list(self.replicas)
                return
            bus_port = free_port()
            cmd = server_command("redis", bus_port, tmp, a, exes)
            self.bus = Server("redis", cmd, bus_port, tmp / f"{system}-{wl}-redis-{bus_port}.out")
            self.procs.append(self.bus)
            url = f"redis://127.0.0.1:{bus_port}/0"
            ports: list[int] = []
            for _ in range(20 * n):  # distinct free ports (they are free only for now)
                port = free_port()
                if port != bus_port and port not in ports:
                    ports.append(port)
                if len(ports) == n:
                    break
            for i, port in enumerate(ports):
                cmd = server_command(system, port, tmp, a, exes, bus=url)
                log = tmp / f"{system}-{wl}-r{i + 1}-{port}.out"
                server = Server(system, cmd, port, log)
                self.procs.append(server)
                self.replicas.append(server)
            for server in self.replicas:  # both subscribed before any load
                server.wait_for("Connected to Redis", 15)
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.replicas]

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.replicas]

    def bus_troubles(self) -> dict[str, int]:
        """What the replicas said about the bus that a clean run should never show."""
        found = {}
        for text in (
            "Lost Redis",
            "Could not publish",
            "Ignored a bad note",
            "Redis did not hand back",  # own lines delivered without their number
            "notes wait for Redis",  # the publisher's queue full: notes dropped
            "Could not read the log",
        ):
            n = sum(s.output_count(text) for s in self.replicas)
            if n:
                found[text] = n
        return found

    def stop(self) -> None:
        for server in reversed(self.procs):
            server.stop()


# --- a quiet machine -------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int, int] | None:
    """Jiffies all cores have spent busy (anyone's processes and the kernel), stolen by
    the hypervisor, and in all, since boot (the first line of /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(ticks) < 8:
        return None
    # user nice system idle iowait irq softirq steal
    return sum(ticks) - ticks[3] - ticks[4] - ticks[7], ticks[7], sum(ticks)


def wait_quiet(below: float, window: float, most: float) -> dict[str, Any]:
    """Wait until the whole machine's CPU was below ``below`` % busy (of all its cores)
    over the last ``window`` s, for at most ``most`` s; what it was, and how long it took."""
    start = time.monotonic()
    busy = steal = None
    quiet = False
    for _ in range(int(most / max(window, 0.05)) + 1):
        t1 = cpu_ticks()
        time.sleep(window)
        t2 = cpu_ticks()
        if t1 is None or t2 is None or t2[2] <= t1[2]:
            break  # no /proc/stat: nothing to wait for
        busy = 100 * (t2[0] - t1[0]) / (t2[2] - t1[2])
        steal = 100 * (t2[1] - t1[1]) / (t2[2] - t1[2])
        if busy < below:
            quiet = True
            break
        if time.monotonic() - start >= most:
            break
    return {
        "busy_pct": None if busy is None else round(busy, 1),
        "steal_pct": None if steal is None else round(steal, 1),
        "load1": round(os.getloadavg()[0], 2),
        "waited_s": round(time.monotonic() - start, 1),
        "timed_out": not quiet and busy is not None,
        "below_pct": below,
        "window_s": window,
    }


def one_run(
    system: str,
    wl: str,
    opts: dict[str, Any],
    a: argparse.Namespace,
    exes: dict[str, str],
    tmp: Path,
) -> dict[str, Any]:
    started = time.monotonic()
    quiet = wait_quiet(a.quiet_below, a.quiet_window, a.quiet_max)
    load_before = os.getloadavg()[0]
    servers = Deployment(system, wl, a, exes, tmp)
    try:
        args = [
            sys.executable,
            "-m",
            "bench.openloop" if wl in OPEN else "bench.loadgen",
            "--system",
            system,
            "--workload",
            wl,
            "--ports",
            ",".join(map(str, servers.ports)),
            "--pid",
            ",".join(map(str, servers.pids)),
            "--sample",
            str(a.sample),
        ]
        args += [] if wl in OPEN else ["--window", str(a.window)]
        if servers.bus is not None:
            args += ["--bus-pid", str(servers.bus.pid)]
        for k, v in opts.items():
            args += [f"--{k}", str(v)]
        # the load generator's own deadline, then its verification (outside it)
        limit = float(opts.get("max-seconds", 120)) + 180
        lg = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = lg.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.kill(lg.pid, signal.SIGKILL)
            out, err = lg.communicate(timeout=10)
            result: dict[str, Any] = {
                "system": system,
                "workload": wl,
                "clean": False,
                "outcome": f"load generator killed after {limit:g} s",
            }
        else:
            try:
                result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                result = {
                    "system": system,
                    "workload": wl,
                    "clean": False,
                    "outcome": f"load generator failed: {err.strip()[-300:]}",
                }
        finally:
            if lg.poll() is None:  # interrupted: stop our load generator by its PID
                os.kill(lg.pid, signal.SIGKILL)
                lg.wait(10)
    finally:
        servers.stop()
    result["quiet_before"] = quiet
    result["run_s"] = round(time.monotonic() - started, 1)  # the quiet wait included
    result["load_avg_before"] = round(load_before, 2)
    result["server_log"] = str(servers.replicas[0].log_path)
    if servers.bus is not None:
        result["server_logs"] = [str(s.log_path) for s in servers.procs]
        result["bus_troubles"] = servers.bus_troubles()
    return result


# --- summaries ------------------------------------------------------------------------------


def title(template: str, opts: dict[str, Any]) -> str:
    """A workload's title, with the duration it was run for."""
    d = opts.get("duration")
    return template.format(duration=f"{d:g} s" if d else "")


def med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def spread(values: list[float | None]) -> tuple[float, float, float, int] | None:
    """Median, min, max and count of the known ``values``."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return statistics.median(known), min(known), max(known), len(known)


def count_problems(r: dict[str, Any]) -> list[str]:
    """What is wrong with a run's counts: in all, and receiver by receiver."""
    parts = []
    each = r.get("per_receiver") or {}
    if r.get("expected") is not None and r.get("delivered", 0) < r["expected"]:
        parts.append(f"lost {r['expected'] - r['delivered']:,}")
    elif r.get("expected") is not None and r.get("delivered", 0) > r["expected"]:
        parts.append(f"{r['delivered'] - r['expected']:,} extra")
    if each.get("wrong"):
        how = [f"{each[k]:,} {k}" for k in ("short", "over") if each.get(k)]
        first = (each.get("examples") or ["?"])[0]
        parts.append(f"{each['wrong']:,} peers with a wrong count ({', '.join(how)}; e.g. {first})")
    return parts


def problems(r: dict[str, Any]) -> str:
    """Why a run is not a clean one, or ''."""
    if r.get("clean"):
        return ""
    parts = count_problems(r)
    v = r.get("verified") or {}
    parts += [f"{v[key]:,} {key}" for key in ("duplicated", "corrupted", "reordered") if v.get(key)]
    if v.get("lost") and not parts:
        parts.append(f"lost {v['lost']:,} (verified)")
    if r.get("senders_lost"):
        parts.append(f"{r['senders_lost']} sender(s) disconnected")
    odd = [x for x in r.get("stopped_by") or [] if x not in ("duration", "cap")]
    if odd:
        parts.append("senders: " + ", ".join(odd))
    if not parts:
        parts.append(str(r.get("outcome", "failed")))
    elif r.get("outcome", "complete") != "complete":
        parts.append(str(r["outcome"]))
    return ", ".join(parts)


def _kib(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: r[key] / 1024 if r.get(key) else None


def _cpu_total(r: dict[str, Any]) -> float | None:
    c = r.get("cpu_s") or {}
    if not c.get("wall"):
        return None
    return (
        sum(x or 0 for x in c.get("servers") or []) + (c.get("bus") or 0) + (c.get("loadgen") or 0)
    )


def _cpu_per_delivery(r: dict[str, Any]) -> float | None:
    c = r.get("cpu_s") or {}
    servers = [x for x in c.get("servers") or [] if x is not None]
    if not servers or not r.get("delivered"):
        return None
    return (sum(servers) + (c.get("bus") or 0)) / r["delivered"] * 1e6


#: one run's figures, by name
METRICS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "rate": lambda r: r.get("deliveries_per_s"),
    "p50": lambda r: (r.get("latency_ms") or {}).get("p50"),
    "p99": lambda r: (r.get("latency_ms") or {}).get("p99"),
    "connect_s": lambda r: r.get("connect_s"),
    "kib_per_conn": lambda r: r.get("kib_per_connection"),
    "peak_mib": _kib("rss_peak_kib"),
    "hwm_mib": _kib("hwm_kib"),
    "peak_with_bus_mib": lambda r: (
        ((r.get("rss_peak_kib") or 0) + (r.get("bus_rss_peak_kib") or 0)) / 1024
        if r.get("rss_peak_kib")
        else None
    ),
    "cpu_total": _cpu_total,
    # the servers' (and bus's) CPU per delivery, in µs: not the load generator's speed
    "cpu_us": _cpu_per_delivery,
    # the load generator's one thread: the share of the traffic time it was busy
    "lg_core": lambda r: (
        (r["cpu_s"].get("loadgen") or 0) / r["cpu_s"]["wall"]
        if (r.get("cpu_s") or {}).get("wall") and r.get("sent")
        else None
    ),
    "got_pct": lambda r: 100 * r["delivered"] / r["expected"] if r.get("expected") else None,
    "extra": lambda r: r.get("extra_to_senders"),
    "notice_s": lambda r: (r.get("notices") or {}).get("last_after_s"),
    "notice_lines": lambda r: (r.get("notices") or {}).get("lines"),
}


def metric(r: dict[str, Any], key: str) -> float | None:
    if key in SPEED and problems(r):
        return None
    return METRICS[key](r)


def by_rep(runs: list[dict[str, Any]], system: str, wl: str, key: str) -> dict[int, float | None]:
    return {
        r.get("rep", 1): metric(r, key)
        for r in runs
        if r["system"] == system and r["workload"] == wl
    }


def rep_ratios(
    runs: list[dict[str, Any]], wl: str, system: str, base: str, key: str
) -> tuple[float, float, float, int] | None:
    """Median, min, max of ``system``'s figure over ``base``'s in the same repetition."""
    mine, theirs = by_rep(runs, system, wl, key), by_rep(runs, base, wl, key)
    return spread(
        [
            x / theirs[rep]  # type: ignore[operator]
            for rep, x in mine.items()
            if x is not None and theirs.get(rep)
        ]
    )


def summarize(
    runs: list[dict[str, Any]], systems: list[str], workloads: list[str], base: str = BASELINE
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in workloads:
        out[wl] = {}
        for system in systems:
            rs = [r for r in runs if r["system"] == system and r["workload"] == wl]
            if not rs:
                continue
            dirty = [r for r in rs if problems(r)]
            s: dict[str, Any] = {
                "runs": len(rs),
                "dirty": [problems(r) for r in dirty],
                "stats": {k: spread([metric(r, k) for r in rs]) for k in METRICS},
                "ratio": {
                    k: rep_ratios(runs, wl, system, base, k) for k in METRICS if system != base
                },
                "share": (
                    rep_ratios(runs, wl, system, CEILING, "rate") if system != CEILING else None
                ),
                "corrupted": sum((r.get("verified") or {}).get("corrupted", 0) for r in rs),
                "verified": sum((r.get("verified") or {}).get("expected", 0) for r in rs),
                "stalled": [r.get("stalled") for r in rs if r.get("stalled")],
                "disconnects": [r.get("disconnects_before_traffic", 0) for r in rs],
                "notices_still": sum(
                    1 for r in rs if (r.get("notices") or {}).get("still_arriving")
                ),
                "has_notices": any("notices" in r for r in rs),
            }
            for k, st in s["stats"].items():  # the medians, by name
                s[k] = st[0] if st else None
            out[wl][system] = s
    return out


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.0f} k/s"


def fmt_range(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    """``lo–hi``, the unit once if both have the same."""
    a, b = fmt(lo), fmt(hi)
    if a == b:
        return ""
    if " " in a and a.rpartition(" ")[2] == b.rpartition(" ")[2]:
        return f"{a.rpartition(' ')[0]}–{b}"
    return f"{a}–{b}"


def fmt_stat(st: tuple[float, float, float, int] | None, fmt: Callable[[float], str]) -> str:
    """The median, and the min–max over repetitions when there are several."""
    if st is None:
        return "-"
    m, lo, hi, n = st
    r = fmt_range(lo, hi, fmt) if n > 1 else ""
    return fmt(m) + (f" ({r})" if r else "")


def fmt_x(st: tuple[float, float, float, int] | None) -> str:
    """A median ratio of repetitions, with its min–max."""
    if st is None:
        return ""
    m, lo, hi, n = st
    text = f"{m:.2f}×"
    if n > 1 and f"{lo:.2f}" != f"{hi:.2f}":
        text += f" ({lo:.2f}–{hi:.2f})"
    return text


def fmt_pct(st: tuple[float, float, float, int] | None) -> str:
    return fmt_stat(st, lambda v: f"{100 * v:.0f} %") if st else "-"


def cell(
    s: dict[str, Any] | None, key: str, fmt: Callable[[float], str], ratio: bool = True
) -> str:
    if s is None:
        return "-"
    if s["dirty"] and key in SPEED:
        return f"✗ {len(s['dirty'])}/{s['runs']} runs: {s['dirty'][0]}"
    text = fmt_stat(s["stats"].get(key), fmt)
    x = fmt_x(s["ratio"].get(key)) if ratio and text != "-" else ""
    return text + (f" · {x}" if x else "")


def stalled_fate(s: dict[str, Any] | None) -> str:
    if not s or not s["stalled"]:
        return "-"
    st = s["stalled"][0]
    got = f"{st['messages_read_after_resume']:,}/{st['of']:,} reached it (read after the run)"
    closed = st.get("closed_after_draining")
    if closed is None:
        return got
    return got + ("; then closed by the server" if closed else "; connection still open")


def notices_cell(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    if not s["has_notices"]:
        return "n/a (sends none)"
    text = fmt_stat(s["stats"]["notice_s"], lambda v: f"{v:.1f} s")
    if text == "-":
        return "none arrived (0 notice lines)"
    lines = s["stats"]["notice_lines"]
    if lines:
        text += f"; {lines[0]:,.0f} notice lines"
    if s["notices_still"]:
        text += f" (≥: still arriving when the wait ended in {s['notices_still']} run(s))"
    return text


def run_cpu(r: dict[str, Any], nproc: int) -> dict[str, float] | None:
    """The whole machine's CPU during a run's traffic (W6: connecting), as % of all its
    cores: busy, of which not the bench's own processes, and stolen by the hypervisor."""
    c = r.get("cpu_s") or {}
    wall = c.get("wall")
    if not wall or c.get("machine") is None:
        return None
    own = _cpu_total(r) or 0
    cores = wall * max(1, nproc)
    return {
        "busy": 100 * c["machine"] / cores,
        "others": 100 * max(0.0, c["machine"] - own) / cores,
        "steal": 100 * (c.get("steal") or 0) / cores,
    }


def quiet_text(q: dict[str, Any] | None) -> str:
    if not q or q.get("busy_pct") is None:
        return "-"
    text = f"{q['busy_pct']:.0f} % · {q['load1']:.2f} · {q['waited_s']:g} s"
    return text + (" (timed out)" if q.get("timed_out") else "")


def cpu_text(r: dict[str, Any], nproc: int) -> str:
    c = run_cpu(r, nproc)
    if c is None:
        return "-"
    busy = min(100.0, c["busy"])  # /proc/stat counts in ticks: a short run can show 101 %
    return f"{busy:.0f} % ({c['others']:.0f} % not the bench's) · {c['steal']:.1f} %"


def machine_state(runs: list[dict[str, Any]], nproc: int, a: argparse.Namespace) -> str:
    """A sentence on how quiet the machine was before and during the runs."""
    qs = [r.get("quiet_before") or {} for r in runs]
    qs = [q for q in qs if q.get("busy_pct") is not None]
    cpus = [c for c in (run_cpu(r, nproc) for r in runs) if c]
    if not qs and not cpus:
        return "not measured (no /proc/stat)"
    out = []
    if qs:
        late = [q for q in qs if q.get("timed_out")]
        out.append(
            f"before each run the harness waited (at most {a.quiet_max:g} s) until the "
            f"whole machine was under {a.quiet_below:g} % CPU busy over {a.quiet_window:g} s: "
            f"{len(qs) - len(late)} of {len(qs)} runs started so"
            + (
                f", {len(late)} when the wait ran out (then "
                + fmt_range(
                    min(q["busy_pct"] for q in late),
                    max(q["busy_pct"] for q in late),
                    lambda v: f"{v:.0f} %",
                )
                + " busy)"
                if late
                else ""
            )
        )
    if cpus:
        others = spread([c["others"] for c in cpus])
        steal = spread([c["steal"] for c in cpus])
        assert others is not None
        assert steal is not None
        out.append(
            "during the runs, the CPU time not charged to the bench's processes (its "
            "servers and load generator: so other processes', and kernel work charged to "
            f"none, such as network interrupts) was a median {others[0]:.0f} % of the "
            f"machine (at most {others[2]:.0f} %), and the hypervisor stole a median "
            f"{steal[0]:.1f} % (at most {steal[2]:.1f} %)"
        )
    return "; ".join(out) + ". Each run's figures are in the last table."


def ceiling_figures(
    summary: dict[str, dict[str, dict[str, Any]]], with_ceiling: list[str]
) -> list[str]:
    """The copy relay's deliveries/s in each workload it ran in."""
    parts = []
    for wl in with_ceiling:
        c = summary[wl].get(CEILING)
        if c is None:
            continue
        if c["dirty"]:
            parts.append(f"{wl}: ✗ not measured ({c['dirty'][0]})")
            continue
        parts.append(f"{wl} **{fmt_stat(c['stats']['rate'], fmt_rate)}**")
    return parts


def limited_figures(
    summary: dict[str, dict[str, dict[str, Any]]], systems: list[str], timed: list[str]
) -> tuple[list[str], list[str]]:
    """The figures the load generator limited (near its ceiling, or it was busy), and
    those that went over the ceiling in some repetition."""
    limited, odd = [], []
    for wl in timed:
        for system in systems:
            s = summary[wl].get(system)
            if not s or s["dirty"]:
                continue
            why = []
            share = s["share"]
            if share and share[0] >= AT_CEILING:
                why.append(f"{fmt_pct(share)} of the ceiling")
            if share and share[2] > 1.1:
                odd.append(f"{system} in {wl}")
            busy = s["stats"].get("lg_core")
            if busy and busy[0] >= AT_CEILING:
                why.append(f"load generator {100 * busy[0]:.0f} % busy")
            if why:
                limited.append(f"{system} in {wl} ({'; '.join(why)})")
    return limited, odd


def ceiling_text(
    summary: dict[str, dict[str, dict[str, Any]]],
    systems: list[str],
    with_ceiling: list[str],
    timed: list[str],
) -> str:
    """The measured ceiling, and which figures the load generator limited, said plainly."""
    parts = ceiling_figures(summary, with_ceiling)
    limited, odd = limited_figures(summary, systems, timed)
    text = ""
    if parts:
        text = (
            "- **Load generator ceiling (measured):** the same load generator against "
            "`bench/trivial_relay.py`, a relay that copies bytes and does nothing else "
            "(written unparsed to every receiver, 64 KiB or 5 ms at a time), in the same "
            "shape and duration, in the same rotation as the systems: " + "; ".join(parts) + "."
        )
        if odd:
            text += (
                " In some repetitions "
                + ", ".join(odd)
                + " went over the copy relay's figure: the ceiling is a measurement with "
                "its own noise, not a hard bound."
            )
    text += ("\n" if text else "") + "- **Limited by the load generator:** "
    if limited:
        text += (
            "**"
            + ", ".join(limited)
            + f".** A figure at {100 * AT_CEILING:.0f} % or more of the ceiling, or with "
            f"the load generator's one thread busy {100 * AT_CEILING:.0f} % or more of the "
            "traffic time, measures the load generator (one Python thread, sharing the "
            "cores with the server) as much as the server: the server delivers at least "
            "that much; how much more, this set-up cannot show, and its ratio to a figure "
            "that is not so limited is a lower bound."
        )
    else:
        text += (
            f"no figure reached {100 * AT_CEILING:.0f} % of the ceiling, nor kept the "
            f"load generator's one thread {100 * AT_CEILING:.0f} % busy: the figures are "
            "the servers'."
        )
    return text


def fmt_ms(v: float) -> str:
    return f"{v:.1f} ms"


def fmt_share(v: float) -> str:
    """A share (0.5) as a percentage (50 %)."""
    return f"{100 * v:.0f} %"


def intro_lines(
    summary: dict[str, dict[str, dict[str, Any]]],
    opts: dict[str, dict[str, Any]],
    info: dict[str, str],
    a: argparse.Namespace,
    runs: list[dict[str, Any]],
    load: tuple[float, float],
    timed: list[str],
    nproc: int,
) -> list[str]:
    """The title, and the list of how the figures were taken."""
    reps = max((r.get("rep", 1) for r in runs), default=1)
    batches = sorted({opts[wl].get("batch", 50) for wl in timed if opts[wl].get("batch", 50) > 1})
    durations = sorted({opts[wl]["duration"] for wl in timed})
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run"
        + (" --quick" if a.quick else "")
        + "`; method in `bench/run.py` and `bench/loadgen.py`, issues 6 and 13). peerchat "
        "(plain-text peers) against Redis pub/sub, NATS and the seed's naive "
        "thread-per-client relay, side by side in one run, the systems' order rotating "
        "each repetition, each run with a fresh server on 127.0.0.1 and one load "
        "generator process (Python, one thread) on the same machine.",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['nproc']} cores, {info['cpu']}, {info['memory']}, "
        f"Linux {info['kernel']}; load average {load[0]:.2f} before, {load[1]:.2f} after "
        "(other sessions may share the machine)",
        f"- **Versions:** Python {info['python']}; {info['redis']}; {info['nats']}; "
        f"peerchat {info['peerchat']}",
        f"- **Runs:** {reps} repetition(s) of every cell: each cell is the median, with the "
        "min–max over repetitions in brackets; each ratio (`×`) is the median, with the "
        "min–max, of the per-repetition ratios to Redis (the system's run over Redis's run "
        "of the same repetition; `×` > 1: more deliveries/s, or a longer latency or time, "
        "or more memory). Messages of 100 bytes; at most "
        f"{a.window:,} messages in flight per receiver.",
    ]
    if timed:
        lines.append(
            f"- **Fixed duration:** in {', '.join(timed)} every sender writes for "
            + " or ".join(f"{d:g} s" for d in durations)
            + " (bounded also by a cap of messages per sender, never reached unless the "
            "last table says `cap`, and a hard deadline); then every receiver must get "
            "exactly what was written. *deliveries/s* is the messages all counted "
            "receivers got, over the time from the first write to the last message read."
        )
    if batches:
        lines.append(
            f"- **Write batch:** the sender puts **{', '.join(map(str, batches))} messages "
            "in one write()** (the load generator's `--batch`) in "
            + ", ".join(
                wl
                for wl in summary
                if opts[wl].get("messages")
                and not opts[wl].get("rate")
                and opts[wl].get("batch", 50) > 1
            )
            + "; W1s is W1 with **one message per write()**, and W3 writes one at a time. "
            "A relay then reads many messages per recv(), and one that joins what it has "
            "for a receiver into one write (peerchat joins every broadcast waiting in a "
            "room into one write per member) makes far fewer system calls per message: "
            "the batch favours it. Compare W1 with W1s."
            + (
                " Each turn of its event loop (between two passes over the receivers), "
                "the load generator's sender writes what the in-flight window has room "
                f"for, at most {TURN_MAX:,} messages, in as many write() calls as that "
                "takes (`--turn 0`)."
                if any(opts[wl].get("turn") == 0 for wl in summary)
                else ""
            )
        )
    lines += [
        f"- **Every receiver checked:** each counted receiver's count of messages must "
        "equal what the senders wrote (and, in a chat room, each sender's what the others "
        f"wrote): one receiver short or over fails the run, whatever the total. {a.sample} "
        "receivers per run are also checked message by message (sender, sequence, CRC, "
        "order, latency).",
        "- **peerchat settings:** its abuse limits off, as Redis and NATS have none: "
        + ", ".join(f"`{k}={v}`" for k, v in PEERCHAT_ENV.items())
        + " (flood control, connection limits for W6, and the per-address budgets, "
        "which would lump every peer of 127.0.0.1 together).",
        "- **Machine state:** " + machine_state(runs, nproc, a),
    ]
    return lines


@dataclass
class SummaryTable:
    """The summary table: a row per workload and metric, a column per system (and the
    copy relay's, the ceiling, if it ran)."""

    summary: dict[str, dict[str, dict[str, Any]]]
    titles: dict[str, str]
    systems: list[str]
    with_ceiling: list[str]  # the workloads the copy relay ran in
    lines: list[str] = field(default_factory=list)

    @property
    def cols(self) -> list[str]:
        return self.systems + ([CEILING] if self.with_ceiling else [])

    def head(self) -> None:
        head = "| workload | metric | " + " | ".join(
            "ceiling: copy relay" if c == CEILING else c for c in self.cols
        )
        self.lines += [head + " |", "|" + " --- |" * (len(self.cols) + 2)]

    def add(self, wl: str, metric: str, cells: list[str]) -> None:
        self.lines.append(f"| {wl}: {self.titles[wl]} | {metric} | " + " | ".join(cells) + " |")

    def row(
        self, wl: str, metric: str, key: str, fmt: Callable[[float], str], ratio: bool = True
    ) -> None:
        """A figure of every system; the ceiling's too, if it is its rate or load."""
        cells = [cell(self.summary[wl].get(sy), key, fmt, ratio) for sy in self.systems]
        if self.with_ceiling:
            c = self.summary[wl].get(CEILING)
            shown = c and key in ("rate", "lg_core")
            cells.append(cell(c, key, fmt, ratio=False) if shown else "-")
        self.add(wl, metric, cells)

    def row_text(self, wl: str, metric: str, fn: Callable[[dict[str, Any] | None], str]) -> None:
        """A row of text made from each system's summary; none for the ceiling."""
        self.add(
            wl,
            metric,
            [fn(self.summary[wl].get(sy)) for sy in self.systems]
            + ["-"] * (len(self.cols) - len(self.systems)),
        )

    def workload(self, wl: str, timed: bool) -> None:
        """The rows of one workload: the speed of a timed one, then its own."""
        if timed:
            self.row(wl, "deliveries/s", "rate", fmt_rate)
            self.row(wl, "latency p99 (saturated)", "p99", fmt_ms)
            self.row(wl, "load generator busy (its one thread)", "lg_core", fmt_share, ratio=False)
        if wl in self.with_ceiling:
            self.row_text(
                wl,
                "share of the load generator's ceiling",
                lambda s: "-" if not s or s["dirty"] else fmt_pct(s["share"]),
            )
        own = WORKLOAD_ROWS.get(wl)
        if own:
            own(self, wl)


def w3_rows(t: SummaryTable, wl: str) -> None:
    t.row(wl, "latency p50 (whole fan-out)", "p50", fmt_ms)
    t.row(wl, "latency p99 (whole fan-out)", "p99", fmt_ms)


def w4_rows(t: SummaryTable, wl: str) -> None:
    t.row_text(
        wl,
        "lines corrupted (verified sample)",
        lambda s: "-" if not s else f"{s['corrupted']:,} of {s['verified']:,}",
    )
    t.row_text(
        wl,
        "also delivered to the senders (chat room)",
        lambda s: "-" if not s or not s["extra"] else f"{s['extra']:,.0f}",
    )


def w5_rows(t: SummaryTable, wl: str) -> None:
    t.row(wl, "healthy 9: deliveries/s", "rate", fmt_rate)
    t.row_text(
        wl,
        "healthy 9: share received",
        lambda s: "-" if not s or s["got_pct"] is None else f"{s['got_pct']:.2f} %",
    )
    t.row(wl, "healthy 9: latency p99", "p99", fmt_ms)
    t.row_text(wl, "the stalled one", stalled_fate)
    t.row(wl, "server peak RSS", "peak_mib", lambda v: f"{v:.0f} MiB")


def w6_rows(t: SummaryTable, wl: str) -> None:
    t.row(wl, "time to connect all", "connect_s", lambda v: f"{v:.2f} s")
    t.row(wl, "server memory per connection", "kib_per_conn", lambda v: f"{v:.1f} KiB")
    t.row_text(wl, "last join notice, after the last connection (measured)", notices_cell)
    t.row(wl, "server peak RSS", "peak_mib", lambda v: f"{v:.0f} MiB")


#: the rows a workload has of its own, after the speed rows of every timed one
WORKLOAD_ROWS: dict[str, Callable[[SummaryTable, str], None]] = {
    "W3": w3_rows,
    "W4": w4_rows,
    "W5": w5_rows,
    "W6": w6_rows,
}


def how_to_read(opts: dict[str, dict[str, Any]]) -> list[str]:
    """The notes on reading the tables, and the head of the table of every run."""
    w6_quiet = float(opts["W6"].get("quiet", 0.3)) if "W6" in opts else 2.0
    w3_rx = int(opts["W3"]["receivers"]) if "W3" in opts else 1000
    w3_rate = float(opts["W3"].get("rate", 50)) if "W3" in opts else 50.0
    return [
        "## How to read it",
        "",
        "- *deliveries/s*: messages received by all counted receivers, divided by the time "
        "from the first message written to the last one read.",
        "- Latency under W1/W1s/W2/W4/W5 is time in queues at saturation (bounded by the "
        "in-flight window): how far behind the receivers run when the sender writes as fast "
        "as it can.",
        f"- W3 is not the latency of a lightly loaded server. One sender writes {w3_rate:g} "
        f"messages a second, one per write(); each is forwarded to {w3_rx:,} sockets (by "
        "peerchat's one Python process; Redis's one thread; NATS's Go runtime; the naive "
        f"relay's reading thread, one sendall after another) and read from those {w3_rx:,} "
        "sockets by one load generator process (one Python thread). Its latency is from "
        f"the write to each receiver's read: the time one whole {w3_rx:,}-socket fan-out "
        "takes at both ends, the p99 being about the last receivers served. It says "
        "nothing of a message to a few peers.",
        "- W4: peerchat and the naive relay are chat rooms, so each sender also receives the "
        "other senders' messages (about twice the fan-out work); only the receivers' "
        "deliveries are counted (each sender's count is checked too). The naive relay "
        "forwards raw 1024-byte chunks, so lines from different senders interleave "
        "mid-line: corrupted.",
        "- W5: one receiver pauses reading; the sender waits for the healthy nine. "
        "peerchat drops a peer over `--max-send-buffer` (1 MiB); Redis over "
        "`client-output-buffer-limit pubsub 32mb 8mb 60`; NATS over `max_pending` (64 MB) "
        "or its write deadline; the naive relay blocks in `sendall`, stalling everyone. "
        "A dropped reader gets what the kernel's socket buffers held (about 3-4 MB), then "
        "the close (checked by `bench/loadgen.py`: `closed_after_draining`).",
        "- W6: memory per connection is (RSS with every connection open and quiet − RSS "
        "before) / connections. peerchat announces a plain peer to its room 0.5 s after it "
        "connects, in rooms of up to 1,000 members (`--join-notices-up-to`); the *last join "
        "notice* row is measured: from the moment the last connection was ready to the "
        "moment the last notice line reached any peer (negative: before it; the load "
        "generator waits until "
        f"nothing has arrived for {w6_quiet:g} s), "
        "with the number of notice lines all peers read. The others send no notices.",
        "- *Machine state*, last table: *before* is the whole machine's CPU busy % over the "
        "quiet-check window, the 1-minute load average, and how long the harness waited "
        "for quiet; *during* is the whole machine's CPU busy % during the traffic (W6: "
        "while connecting), of all cores, with in brackets the part not charged to the "
        "bench's own processes (its servers and load generator): other processes', and "
        "kernel work charged to none (network interrupts, a few % even on an idle "
        "machine); then the hypervisor's steal.",
        "",
        "## Every run",
        "",
        "| rep | workload | system | deliveries/s | sent (s writing) | p50 / p99 ms | connect s "
        "| peak RSS MiB | before: CPU busy · load · waited | during: CPU busy (not the bench's) · "
        "steal "
        "| verdict |",
        "|" + " --- |" * 11,
    ]


def every_run_row(r: dict[str, Any], nproc: int) -> str:
    """One run's row in the table of every run."""
    lat = r.get("latency_ms") or {}
    p50, p99 = lat.get("p50"), lat.get("p99")
    latency = f"{p50:.1f} / {p99:.1f}" if p50 is not None and p99 is not None else "-"
    rate = r.get("deliveries_per_s")
    sent = (
        f"{r['sent']:,} ({r.get('sending_s', '-')} s"
        + (", cap" if "cap" in (r.get("stopped_by") or []) and r.get("duration") else "")
        + ")"
        if r.get("sent")
        else "-"
    )
    return (
        f"| {r.get('rep', 1)} | {r['workload']} | {r['system']} "
        f"| {fmt_rate(rate) if rate else '-'} | {sent} "
        f"| {latency} | {r.get('connect_s', '-')} "
        f"| {(r.get('rss_peak_kib') or 0) / 1024:.0f} | {quiet_text(r.get('quiet_before'))} "
        f"| {cpu_text(r, nproc)} | {problems(r) or 'clean'} |"
    )


def markdown(
    summary: dict[str, dict[str, dict[str, Any]]],
    titles: dict[str, str],
    opts: dict[str, dict[str, Any]],
    systems: list[str],
    info: dict[str, str],
    a: argparse.Namespace,
    runs: list[dict[str, Any]],
    load: tuple[float, float],
    chart: str | None,
    shapes: list[str] | None = None,
) -> str:
    """``docs/benchmarks.md`` (without its replicas section) from a run's summary;
    ``shapes``: the section comparing both shapes, before the notes (if any)."""
    nproc = int(info["nproc"]) if info["nproc"].isdigit() else 1
    timed = [wl for wl in summary if opts[wl].get("duration")]
    with_ceiling = [wl for wl in summary if any(s == CEILING for s in summary[wl])]
    lines = intro_lines(summary, opts, info, a, runs, load, timed, nproc)
    lines += ceiling_text(summary, systems, with_ceiling, timed).split("\n")
    lines += [
        "",
        "✗: a run lost, duplicated, corrupted or reordered messages, or a receiver got a "
        "wrong count, so no speed is given.",
        "",
    ]
    table = SummaryTable(summary, titles, systems, with_ceiling)
    table.head()
    for wl in summary:
        table.workload(wl, wl in timed)
    lines += table.lines
    if chart:
        lines += ["", f"![deliveries per second per workload]({chart})"]
    said = reading(summary, systems, opts)
    lines += ["", said, ""] if said else [""]
    lines += shapes or []
    lines += how_to_read(opts)
    lines += [every_run_row(r, nproc) for r in runs]
    return "\n".join(lines) + "\n"


def reading(
    summary: dict[str, dict[str, dict[str, Any]]],
    systems: list[str],
    opts: dict[str, dict[str, Any]],
) -> str:
    """What the batch does to each system's figure, written from the figures."""
    if "W1" not in summary or "W1s" not in summary:
        return ""
    parts = []
    for system in systems:
        s1, s2 = summary["W1"].get(system), summary["W1s"].get(system)
        if not s1 or not s2 or s1["dirty"] or s2["dirty"] or not s1["rate"] or not s2["rate"]:
            continue
        x1, x2 = s1["ratio"].get("rate"), s2["ratio"].get("rate")
        part = f"{system} {fmt_rate(s2['rate'])} ({s2['rate'] / s1['rate']:.2f}× its W1"
        if system != BASELINE and x1 and x2:
            part += f"; to Redis {fmt_x(x2)} instead of {fmt_x(x1)}"
        parts.append(part + ")")
    if not parts:
        return ""
    b1 = opts["W1"].get("batch", 50)
    return (
        f"**The write batch.** With one message per write() instead of {b1} (W1s against "
        "W1), the same fan-out delivered: " + "; ".join(parts) + "."
    )


SHAPES_HEADING = "## Both shapes: windowed and open loop"


def fmt_us(v: float) -> str:
    return f"{v:.3f} µs"


def shapes_intro(opts: dict[str, dict[str, Any]], pairs: list[tuple[str | None, str]]) -> str:
    """How the open-loop shape is run and what its figures mean."""
    durations = sorted({float(opts[o]["duration"]) for _, o in pairs})
    return (
        "Each open-loop workload (`bench/openloop.py`, issue 16) beside its windowed "
        "counterpart above. Open loop: every sender is its own process and writes "
        f"{opts[pairs[0][1]].get('batch', 64)} messages per write() as fast as TCP takes "
        "them, with no window of messages in flight (it also reads what its socket "
        "receives: in a chat room, the others' messages); the receivers, in another "
        "process, read 64 KiB per recv(). Traffic lasts "
        + " or ".join(f"{d:g} s" for d in durations)
        + "; warm workloads start it 1 s after every peer is ready, O1c (cold) the moment "
        "the last receiver is ready (senders connect first; peerchat's receivers have not "
        "sent a line). Every receiver is subscribed (banner, SUBSCRIBE reply, PONG, or its "
        "thread running) before the first message is written and stays connected to the "
        "end, so each must get exactly what all senders wrote (in a chat room each sender "
        "exactly what the others wrote); a sample is verified message by message as "
        "above. *server CPU µs per delivery*: the server's (and, for replicas, the bus's) "
        "utime + stime from /proc/PID/stat, read before the first write and after the last "
        "delivery, over the deliveries: a cost that does not depend on the load "
        "generator's speed (`×` < 1: less CPU per delivery than Redis). The copy relay's "
        "column is the open-loop load generator's own ceiling in the single-sender ones."
    )


def shapes_section(
    summary: dict[str, dict[str, dict[str, Any]]],
    titles: dict[str, str],
    opts: dict[str, dict[str, Any]],
    systems: list[str],
) -> list[str]:
    """The section comparing both shapes, if an open-loop workload ran: deliveries/s
    and server CPU µs per delivery, windowed above open loop."""
    pairs = [(w, o) for w, o in OPEN_PAIRS if o in summary]
    if not pairs:
        return []
    with_ceiling = [wl for wl in summary if CEILING in summary[wl]]
    t = SummaryTable(summary, titles, systems, with_ceiling)
    t.head()
    for w, o in pairs:
        shown = [wl for wl in (w, o) if wl in summary]
        for wl in shown:
            t.row(wl, "deliveries/s", "rate", fmt_rate)
        for wl in shown:
            t.row(wl, "server CPU µs per delivery", "cpu_us", fmt_us)
    return [SHAPES_HEADING, "", shapes_intro(opts, pairs), "", *t.lines, ""]


def draw_chart(
    summary: dict[str, dict[str, dict[str, Any]]],
    systems: list[str],
    path: Path,
    info: dict[str, str],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("W1", "W1s", "W2", "W4", "W5", "O1", "O2", "O4", "O1c")  # W3 is fixed-rate
    wls = [w for w in shown if w in summary]
    fig, ax = plt.subplots(figsize=(14.5, 5.5))
    width = 0.8 / max(1, len(systems))
    for j, system in enumerate(systems):
        xs, ys, lo, hi = [], [], [], []
        for i, wl in enumerate(wls):
            s = summary[wl].get(system)
            x = i + (j - (len(systems) - 1) / 2) * width
            if s is None:
                continue
            st = s["stats"].get("rate")
            if s["dirty"] or st is None:
                ax.text(x, 0, "✗", ha="center", va="bottom", color="red", fontsize=12)
                continue
            xs.append(x)
            ys.append(st[0] / 1e6)
            lo.append((st[0] - st[1]) / 1e6)
            hi.append((st[2] - st[0]) / 1e6)
        ax.bar(xs, ys, width, label=system, yerr=[lo, hi], capsize=2)
    labelled = False
    for i, wl in enumerate(wls):
        c = summary[wl].get(CEILING)
        if c is None or c["dirty"] or c["rate"] is None:
            continue
        ax.hlines(
            c["rate"] / 1e6,
            i - 0.45,
            i + 0.45,
            colors="grey",
            linestyles="--",
            linewidth=1.2,
            label=None if labelled else "load generator ceiling (copy relay), measured",
        )
        labelled = True
    ax.set_xticks(range(len(wls)), wls)
    ax.set_ylabel("deliveries per second (millions)")
    ax.set_title(
        f"peerchat benchmark, {info['date']}: {info['nproc']} cores, {info['cpu']}\n"
        "median of repetitions, bars: min–max; W1s: one message per write(); "
        "W3 is fixed-rate (see the table); O: open loop (O1c cold); "
        "✗ = lost, duplicated, corrupted or a wrong count",
        fontsize=9,
    )
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- issue 9: 2 replicas vs 1 server (a section of docs/benchmarks.md) ---------------------


def split_section(text: str, heading: str) -> tuple[str, str, str]:
    """``text`` cut around the section under ``heading`` (up to the next ``## ``)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return text, "", ""
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    return "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])


def place_section(text: str, section: str) -> str:
    """``text`` with ``section`` in place of its own, or before ``## Every run``, or last."""
    section = section.rstrip("\n") + "\n"
    before, old, after = split_section(text, REPLICAS_HEADING)
    if not old:
        before, old, after = split_section(text, "## Every run")
        after = old + after
    if not old:
        return text.rstrip("\n") + "\n\n" + section
    return before + section + ("\n" + after if after else "")


def keep_replicas_section(out: Path, text: str) -> str:
    """A full run's ``text``, with the replicas section ``out`` already has, if any."""
    try:
        _, section, _ = split_section(out.read_text(), REPLICAS_HEADING)
    except OSError:
        return text
    return place_section(text, section) if section else text


def clean_runs(runs: list[dict[str, Any]], system: str, wl: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["system"] == system and r["workload"] == wl and not problems(r)]


def cpu_shares(runs: list[dict[str, Any]], system: str, wl: str) -> dict[str, Any]:
    """Medians over clean runs: CPU seconds during the traffic, in all, and the
    share of a core each process used (CPU s / wall s)."""
    rs = [r for r in clean_runs(runs, system, wl) if (r.get("cpu_s") or {}).get("wall")]
    c = [r["cpu_s"] for r in rs]
    if not c:
        return {}
    names = [f"replica {i + 1}" for i in range(len(c[0]["servers"]))]
    if len(names) == 1:
        names = ["server"]
    rows = [
        dict(zip(names, v["servers"], strict=True))
        | ({"Redis": v.get("bus")} if system in REPLICATED else {})
        | {"load gen.": v.get("loadgen")}
        for v in c
    ]
    total = [sum(x or 0 for x in row.values()) for row in rows]
    return {
        "total": med(total),
        "wall": med([v["wall"] for v in c]),
        "busy": med([t / v["wall"] for t, v in zip(total, c, strict=True)]),
        # the servers' CPU per message written, in µs
        "per_message_us": med(
            [
                sum(x or 0 for x in v["servers"]) / r["sent"] * 1e6
                for v, r in zip(c, rs, strict=True)
                if r.get("sent")
            ]
        ),
        # every process on the machine, other sessions' included; and what the
        # hypervisor took
        "machine": med([v["machine"] / v["wall"] for v in c if v.get("machine")]),
        "steal": med([v["steal"] / v["wall"] for v in c if v.get("steal") is not None]),
        "cores": {
            name: med([(row[name] or 0) / v["wall"] for row, v in zip(rows, c, strict=True)])
            for name in rows[0]
        },
    }


def cores_text(c: dict[str, Any]) -> str:
    """The share of a core each process used, and in all."""
    text = " + ".join(f"{name} {x:.2f}" for name, x in c["cores"].items())
    text += f" = {c['busy']:.2f}"
    if c.get("machine") is not None:
        text += f" (whole machine: {c['machine']:.2f})"
    return text


def path_p99(runs: list[dict[str, Any]], wl: str, port: int) -> float | None:
    """The median p99 of 2 replicas' receivers on one port: 0, the sender's replica; 1,
    the other one (both get each message once Redis hands it back)."""
    return med(
        [
            ((r.get("by_port") or [{}, {}])[port].get("latency_ms") or {}).get("p99")
            for r in clean_runs(runs, TWO_REPLICAS, wl)
        ]
    )


def fmt_mib(v: float) -> str:
    return f"{v:.0f} MiB"


def replica_cell(s: dict[str, Any] | None, key: str, fmt: Callable[[float], str]) -> str:
    """A set-up's figure, or why its runs give none."""
    if s is None:
        return "-"
    if s["dirty"]:
        return f"✗ {len(s['dirty'])}/{s['runs']} runs: {s['dirty'][0]}"
    return fmt_stat(s["stats"].get(key), fmt)


def replica_ratio(s1: dict[str, Any] | None, s2: dict[str, Any] | None, key: str) -> str:
    """2 replicas over 1 server, if both were clean."""
    if not s1 or not s2 or s1["dirty"] or s2["dirty"]:
        return ""
    return fmt_x(s2["ratio"].get(key))


def replicas_intro(
    runs: list[dict[str, Any]],
    info: dict[str, str],
    a: argparse.Namespace,
    load: tuple[float, float],
    nproc: int,
) -> list[str]:
    """The section's heading, how it was measured, and its table's head."""
    reps = max((r.get("rep", 1) for r in runs), default=1)
    durations = sorted({r["duration"] for r in runs if r.get("duration")})
    flags = " --quick" if a.quick else ""  # and the options that differ from the defaults
    flags += f" --reps {a.reps}" if a.reps != (1 if a.quick else 3) else ""
    flags += f" --duration {a.duration:g}" if a.duration is not None else ""
    return [
        REPLICAS_HEADING,
        "",
        "Written by `.venv/bin/python -m bench.run --replicas-compare"
        + flags
        + "` (issues 9 and 13; method in `bench/run.py` and `bench/loadgen.py`). "
        "W1 and W2 against one peerchat server, and against **2 replicas** sharing the "
        "chat through one Redis (`peerchat-server --bus redis://…`; `redis-server --save "
        "'' --appendonly no`), every process on 127.0.0.1 with the same settings as above "
        "(flood control and connection limits off). The sender connects to the first "
        "replica; receivers alternate between the two, so half are on the sender's replica "
        "and half on the other one. Both get each message only once Redis hands it back: "
        "Redis numbers each room's messages (one Lua script a publication, "
        "`buslinks.NUMBER`), and every replica, the sender's too, delivers them in that "
        "order under those ids. "
        + (
            f"The sender writes for {' or '.join(f'{d:g} s' for d in durations)}, 50 "
            "messages per write(). "
            if durations
            else ""
        )
        + f"The two set-ups alternate; {reps} repetition(s): each cell is the median "
        "(min–max), and the ratio the median (min–max) of the per-repetition ratios. Every "
        "receiver must get exactly what was written, and "
        f"{a.sample} receivers per run are verified in full (with 2 replicas, half on "
        "each): none may lose, duplicate, corrupt or reorder a message.",
        "",
        f"- **Date:** {info['date']}; load average {load[0]:.2f} before, {load[1]:.2f} "
        "after (another session may share the machine)",
        f"- **Machine:** {info['nproc']} cores, {info['cpu']}, {info['memory']}; "
        f"Python {info['python']}; {info['redis'].split(' sha=')[0]}; "
        f"peerchat {info['peerchat']}",
        "- **Machine state:** " + machine_state(runs, nproc, a),
        "",
        "| workload | metric | 1 server | 2 replicas | 2 replicas / 1 server |",
        "| --- | --- | --- | --- | --- |",
    ]


def replica_rows(
    runs: list[dict[str, Any]],
    wl: str,
    name: str,
    s1: dict[str, Any] | None,
    s2: dict[str, Any] | None,
) -> list[str]:
    """The rows of one workload: 1 server (``s1``) against 2 replicas (``s2``)."""
    rows = [
        f"| {name} | deliveries/s | {replica_cell(s1, 'rate', fmt_rate)} | "
        f"{replica_cell(s2, 'rate', fmt_rate)} | {replica_ratio(s1, s2, 'rate')} |",
        f"| {name} | latency p99 (saturated) | {replica_cell(s1, 'p99', fmt_ms)} | "
        f"{replica_cell(s2, 'p99', fmt_ms)} | {replica_ratio(s1, s2, 'p99')} |",
    ]
    direct, via = path_p99(runs, wl, 0), path_p99(runs, wl, 1)
    if direct is not None and via is not None:
        rows.append(
            f"| {name} | p99, 2 replicas: sender's replica / the other one | - | "
            f"{fmt_ms(direct)} / {fmt_ms(via)} | |"
        )
    bus_mib = med(
        [(r.get("bus_rss_peak_kib") or 0) / 1024 for r in clean_runs(runs, TWO_REPLICAS, wl)]
    )
    if s1 and s2 and not s1["dirty"] and not s2["dirty"] and s1["peak_mib"] and s2["peak_mib"]:
        rows.append(
            f"| {name} | peak RSS (2 replicas: summed; Redis apart) | "
            f"{fmt_mib(s1['peak_mib'])} | {fmt_mib(s2['peak_mib'])} "
            f"+ Redis {fmt_mib(bus_mib or 0)} | "
            f"{replica_ratio(s1, s2, 'peak_with_bus_mib')} with Redis |"
        )
    c1, c2 = cpu_shares(runs, ONE_SERVER, wl), cpu_shares(runs, TWO_REPLICAS, wl)
    if c1 and c2:
        rows.append(
            f"| {name} | cores used during the traffic (CPU s / s) | {cores_text(c1)} | "
            f"{cores_text(c2)} | {replica_ratio(s1, s2, 'cpu_total')} the CPU s |"
        )
    return rows


def replicas_every_run(runs: list[dict[str, Any]], nproc: int) -> str:
    """Every run, in one paragraph."""
    return (
        "Every run (rep, set-up, deliveries/s, p99; the whole machine's CPU before it: busy %, "
        "load average, wait; during it: busy %, of which not the bench's, steal %; verdict): "
        + "; ".join(
            f"{r['workload']} #{r.get('rep', 1)} {'2r' if r['system'] == TWO_REPLICAS else '1'} "
            f"{fmt_rate(r.get('deliveries_per_s')) if r.get('deliveries_per_s') else '-'} "
            f"{((r.get('latency_ms') or {}).get('p99') or 0):.0f} ms "
            f"(before {quiet_text(r.get('quiet_before'))}; during {cpu_text(r, nproc)}) "
            f"{problems(r) or 'clean'}"
            + (f", bus: {r['bus_troubles']}" if r.get("bus_troubles") else "")
            for r in runs
        )
        + "."
    )


def replicas_section(
    runs: list[dict[str, Any]],
    workloads: list[str],
    titles: dict[str, str],
    info: dict[str, str],
    a: argparse.Namespace,
    load: tuple[float, float],
    shapes: dict[str, int],
) -> str:
    """The section ``## Replicas: 2 vs 1``; ``shapes``: workload -> receivers."""
    one, two = ONE_SERVER, TWO_REPLICAS
    summary = summarize(runs, [one, two], workloads, base=one)
    nproc = int(info["nproc"]) if info["nproc"].isdigit() else 1
    lines = replicas_intro(runs, info, a, load, nproc)
    for wl in workloads:
        s1, s2 = summary[wl].get(one), summary[wl].get(two)
        lines += replica_rows(runs, wl, f"{wl}: {titles[wl]}", s1, s2)
    p99s = {wl: (path_p99(runs, wl, 0), path_p99(runs, wl, 1)) for wl in workloads}
    cpu = functools.partial(cpu_shares, runs)
    lines += ["", replicas_reading(summary, workloads, info, cpu, shapes, p99s), ""]
    lines.append(replicas_every_run(runs, nproc))
    return "\n".join(lines) + "\n"


def cores_reading(c: dict[str, tuple[dict[str, Any], dict[str, Any]]], nproc: int) -> str:
    """Whether the cores were saturated with 2 replicas, said from ``c``: workload ->
    (1 server's, 2 replicas' :func:`cpu_shares`)."""
    busy = [pair[1].get("machine") for pair in c.values()]
    ours = [pair[1]["busy"] for pair in c.values()]
    steal = [pair[1].get("steal") or 0 for pair in c.values()]
    if all(b is not None and b + st >= 0.85 * nproc for b, st in zip(busy, steal, strict=True)):
        others = ", ".join(f"{max(0.0, b - o):.2f}" for b, o in zip(busy, ours, strict=True))
        return (
            f" The cores were the first limit: two replicas, Redis and the load "
            f"generator share them, and they were saturated during the traffic (the "
            f"whole machine {', '.join(f'{b:.2f}' for b in busy)} of {nproc} cores "
            f"busy in {', '.join(c)}; of that, {others} not charged to the bench's "
            "processes"
            + (
                f"; the hypervisor took {', '.join(f'{x:.2f}' for x in steal)} more"
                if max(steal) >= 0.05
                else ""
            )
            + ")."
        )
    return (
        " The cores were not saturated (busy: "
        + ", ".join(f"{b:.2f}" for b in busy if b is not None)
        + f" of {nproc})."
    )


def per_message_reading(
    c: dict[str, tuple[dict[str, Any], dict[str, Any]]], shapes: dict[str, int]
) -> str:
    """What going through Redis costs per message, said from ``c`` (as in
    :func:`cores_reading`) and ``shapes``: workload -> receivers."""
    extra = {}
    for wl, (c1, c2) in c.items():
        if c1.get("per_message_us") is not None and c2.get("per_message_us") is not None:
            extra[wl] = c2["per_message_us"] - c1["per_message_us"]
    if not extra:
        return ""
    text = (
        " Another limit is the work per message: each message also goes through Redis "
        "(the sender's replica encodes and publishes it, and delivers it once Redis "
        "hands it back numbered; the other replica reads, decodes and applies it), which "
        "cost the replicas "
        + " and ".join(f"{us:.0f} µs ({wl})" for wl, us in extra.items())
        + " of CPU per message more than one server, however many receivers it has."
    )
    if {"W1", "W2"} <= set(extra) and shapes.get("W1") and shapes.get("W2"):
        r1, r2 = shapes["W1"], shapes["W2"]
        text += (
            f" A message of W1 goes to {r1:,} receivers, one of W2 to {r2:,}: W1 "
            f"pays that {r2 / r1:.0f} times as often per delivery, hence the gap "
            "between them."
        )
    return text


def replicas_reading(
    summary: dict[str, dict[str, dict[str, Any]]],
    workloads: list[str],
    info: dict[str, str],
    cpu: Any,
    shapes: dict[str, int],
    p99s: dict[str, tuple[float | None, float | None]],
) -> str:
    """What the figures show, in a few sentences written from the figures."""
    one, two = ONE_SERVER, TWO_REPLICAS
    rates = []
    for wl in workloads:
        s1, s2 = summary[wl].get(one), summary[wl].get(two)
        if s1 and s2 and not s1["dirty"] and not s2["dirty"] and s2["ratio"].get("rate"):
            rates.append(f"{fmt_x(s2['ratio']['rate'])} ({wl})")
    if not rates:
        return "Some runs were not clean (✗ above): no speed is compared."
    nproc = int(info["nproc"]) if info["nproc"].isdigit() else 2
    text = (
        f"**What it shows.** On this {nproc}-core machine, 2 replicas delivered "
        + " and ".join(rates)
        + " the deliveries/s of one server (median of the per-repetition ratios)."
    )
    c = {wl: (cpu(one, wl), cpu(two, wl)) for wl in workloads}
    c = {wl: pair for wl, pair in c.items() if pair[0] and pair[1]}
    if c:
        text += cores_reading(c, nproc) + per_message_reading(c, shapes)
    late = [
        f"{via:.0f} / {direct:.0f} ms in {wl}"
        for wl, (direct, via) in p99s.items()
        if direct is not None and via is not None
    ]
    if late:
        text += (
            " Every receiver waits for the round trip through Redis (p99 on the other "
            "replica / on the sender's replica: " + ", ".join(late) + ")."
        )
    return text + (
        " Replicas are for more cores or machines than one process can use, and for "
        "restarting servers one at a time; one 2-core machine that also runs the load "
        "generator cannot show the first."
    )


def write_replicas_section(
    saved: dict[str, Any],
    a: argparse.Namespace,
    workloads: list[str],
    table: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """Write (or replace) the replicas section of ``a.output``, and nothing else of it."""
    opts = saved.get("workloads") or {wl: table[wl][1] for wl in workloads}
    section = replicas_section(
        saved["runs"],
        workloads,
        {w: title(table[w][0], opts.get(w, table[w][1])) for w in workloads},
        saved["machine"],
        a,
        (saved["load"][0], saved["load"][1]),
        {wl: int(opts.get(wl, table[wl][1])["receivers"]) for wl in workloads},
    )
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.read_text() if out.exists() else ""
    out.write_text(place_section(old, section) if old.strip() else section)
    print(f"wrote the section {REPLICAS_HEADING!r} of {out}")


def write_doc(
    saved: dict[str, Any],
    a: argparse.Namespace,
    systems: list[str],
    workloads: list[str],
    table: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """``a.output`` (keeping its replicas section) and its chart, from a run's results."""
    runs = saved["runs"]
    opts = saved.get("workloads") or {wl: table[wl][1] for wl in workloads}
    cols = [*systems, CEILING] if any(r["system"] == CEILING for r in runs) else systems
    summary = summarize(runs, cols, workloads)
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = None
    if not a.no_chart:
        png = out.with_suffix(".png")
        draw_chart(summary, systems, png, saved["machine"])
        chart = png.name
    titles = {w: title(table[w][0], opts[w]) for w in workloads}
    windowed = {wl: s for wl, s in summary.items() if wl not in OPEN}
    text = markdown(
        windowed,
        titles,
        opts,
        systems,
        saved["machine"],
        a,
        runs,
        (saved["load"][0], saved["load"][1]),
        chart,
        shapes_section(summary, titles, opts, systems) + targets_section(summary),
    )
    out.write_text(keep_replicas_section(out, text))
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if chart else ""))


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="peerchat vs Redis pub/sub vs NATS vs naive relay")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (< 2 min)")
    p.add_argument("--reps", type=int, help="repetitions per cell (default 3; quick: 1)")
    p.add_argument(
        "--systems",
        help=f"default {','.join(SYSTEMS)}; also known: {', '.join(REPLICATED)} "
        "(peerchat as 2 replicas sharing the chat through one Redis)",
    )
    p.add_argument("--workloads", help=f"default {DEFAULT_WORKLOADS} (--replicas-compare: W1,W2)")
    p.add_argument(
        "--replicas-compare",
        action="store_true",
        help="issue 9: W1 and W2, 1 peerchat server vs 2 replicas + Redis (peerchat-2r), "
        f"interleaved; writes only the section {REPLICAS_HEADING!r} of --output "
        "(with --quick: to /tmp/peerchat-bench/replicas.md)",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="seconds each sender writes in the fixed-duration workloads (default 5; quick: 1)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply message counts (caps), durations and W6's connections by this",
    )
    p.add_argument("--sample", type=int, default=10, help="receivers verified in full per run")
    p.add_argument("--window", type=int, default=4000, help="messages in flight per receiver")
    p.add_argument(
        "--quiet-below",
        type=float,
        default=10.0,
        help="before each run, wait until the whole machine's CPU is below this %% busy",
    )
    p.add_argument(
        "--quiet-window", type=float, help="over this many seconds (default 2; quick: 0.5)"
    )
    p.add_argument(
        "--quiet-max", type=float, help="for at most this many seconds (default 60; quick: 0.5)"
    )
    p.add_argument(
        "--peerchat-cmd", help="command to start peerchat, with {port}; e.g. a patched copy"
    )
    p.add_argument(
        "--no-ceiling",
        action="store_true",
        help="do not measure the load generator's ceiling (the copy relay)",
    )
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--output", help="default docs/benchmarks.md")
    p.add_argument(
        "--json",
        help="raw results; default bench/results/latest.json (--replicas-compare: "
        "bench/results/replicas.json; with --quick: /tmp/peerchat-bench/replicas.json)",
    )
    p.add_argument(
        "--from-json", metavar="PATH", help="only write the table and chart again from a saved run"
    )
    return p.parse_args()


def on_term(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so every server and load generator stops


def resolve_args(
    a: argparse.Namespace,
) -> tuple[list[str], list[str], dict[str, tuple[str, dict[str, Any]]]]:
    """Fill in the defaults that depend on other options (in ``a``); the systems, the
    workloads and their table. Exits on an unknown system or workload."""
    a.reps = a.reps or (1 if a.quick else 3)
    a.quiet_window = a.quiet_window if a.quiet_window is not None else (0.5 if a.quick else 2.0)
    a.quiet_max = a.quiet_max if a.quiet_max is not None else (0.5 if a.quick else 60.0)
    compare = a.replicas_compare
    if compare and a.systems:
        sys.exit("ERROR: --replicas-compare runs peerchat and peerchat-2r: leave out --systems")
    if compare:
        systems = ["peerchat", *REPLICATED]
        a.no_ceiling = a.no_chart = True  # the section has neither
        quick_dir = Path("/tmp/peerchat-bench")
        a.output = a.output or str(
            quick_dir / "replicas.md" if a.quick else ROOT / "docs" / "benchmarks.md"
        )
        a.json = a.json or str(
            quick_dir / "replicas.json" if a.quick else BENCH / "results" / "replicas.json"
        )
    else:
        systems = [s for s in (a.systems or ",".join(SYSTEMS)).split(",") if s]
        a.output = a.output or str(ROOT / "docs" / "benchmarks.md")
        a.json = a.json or str(BENCH / "results" / "latest.json")
    default_wls = "W1,W2" if compare else DEFAULT_WORKLOADS
    workloads = [w for w in (a.workloads or default_wls).split(",") if w]
    table = QUICK if a.quick else FULL
    for s in systems:
        if s not in KNOWN_SYSTEMS:
            sys.exit(f"ERROR: unknown system {s!r}; choose from {', '.join(KNOWN_SYSTEMS)}")
    for w in workloads:
        if w not in table:
            sys.exit(f"ERROR: unknown workload {w!r}; choose from {', '.join(table)}")
    return systems, workloads, table


def rewrite_from_json(a: argparse.Namespace, systems: list[str], workloads: list[str]) -> None:
    """``--from-json``: write the document (or the replicas section) again from a saved
    run, with the options that run had."""
    saved = json.loads(Path(a.from_json).read_text())
    for key in (
        "reps", "window", "sample", "quick", "scale", "quiet_below", "quiet_window",
        "quiet_max", "duration",
    ):  # fmt: skip
        if key in saved.get("args", {}):
            setattr(a, key, saved["args"][key])
    table = QUICK if a.quick else FULL
    if a.replicas_compare:
        write_replicas_section(saved, a, workloads, table)
    else:
        write_doc(saved, a, systems, workloads, table)


def scaled(opts: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
    """A workload's load generator options, with ``--duration`` and ``--scale`` applied."""
    o = dict(opts)
    if a.duration is not None and o.get("duration"):
        o["duration"] = a.duration
    if a.scale != 1.0:
        if o.get("messages"):
            o["messages"] = max(1, int(o["messages"] * a.scale))
        if o.get("duration"):
            o["duration"] = round(o["duration"] * a.scale, 3)
        if not o.get("messages"):
            o["receivers"] = max(1, int(o["receivers"] * a.scale))
    return o


def scaled_for(wl: str, opts: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
    """:func:`scaled`, an open-loop workload never under MIN_DURATION s of traffic."""
    o = scaled(opts, a)
    if wl in OPEN:
        o["duration"] = max(MIN_DURATION, float(o.get("duration") or 0))
    return o


def make_plan(
    a: argparse.Namespace,
    systems: list[str],
    workloads: list[str],
    opts: dict[str, dict[str, Any]],
) -> list[tuple[int, str, str]]:
    """Every run in order (repetition, workload, system): the systems (and the copy relay,
    where it runs) rotate by one each workload and repetition."""
    plan: list[tuple[int, str, str]] = []
    for rep in range(1, a.reps + 1):
        for wi, wl in enumerate(workloads):
            cast = systems + ([CEILING] if not a.no_ceiling and has_ceiling(opts[wl]) else [])
            k = (rep - 1 + wi) % len(cast)
            plan += [(rep, wl, system) for system in cast[k:] + cast[:k]]
    return plan


def run_plan(
    plan: list[tuple[int, str, str]],
    opts: dict[str, dict[str, Any]],
    a: argparse.Namespace,
    exes: dict[str, str],
    tmp: Path,
    started: float,
) -> list[dict[str, Any]]:
    """Every run of ``plan``, one after the other, each said in a line as it ends."""
    nproc = os.cpu_count() or 1
    runs: list[dict[str, Any]] = []
    for n, (rep, wl, system) in enumerate(plan, 1):
        r = one_run(system, wl, opts[wl], a, exes, tmp)
        r["rep"] = rep
        runs.append(r)
        lat = r.get("latency_ms") or {}
        print(
            f"[{n}/{len(plan)} {(time.monotonic() - started) / 60:.1f} min] rep {rep} {wl:3} "
            f"{system:8} {fmt_rate(r.get('deliveries_per_s')):>10}  "
            f"p99 {lat.get('p99') or 0:8.1f} ms  connect {r.get('connect_s', '-')} s  "
            f"peak {(r.get('rss_peak_kib') or 0) / 1024:.0f} MiB  "
            f"before {quiet_text(r.get('quiet_before'))}  during {cpu_text(r, nproc)}  "
            f"{problems(r) or 'clean'}",
            flush=True,
        )
        by = r.get("by_port") or []
        if len(by) > 1:
            p99s = [((x.get("latency_ms") or {}).get("p99") or 0) for x in by]
            cpu = r.get("cpu_s") or {}
            print(
                f"      p99 on the sender's replica {p99s[0]:.1f} ms, on the other "
                f"{p99s[1]:.1f} ms; CPU s: replicas {cpu.get('servers')}, Redis "
                f"{cpu.get('bus')}, load generator {cpu.get('loadgen')} in "
                f"{cpu.get('wall')} s"
                + (f"; bus: {r['bus_troubles']}" if r.get("bus_troubles") else ""),
                flush=True,
            )
    return runs


def main() -> None:
    a = parse_args()
    signal.signal(signal.SIGTERM, on_term)
    systems, workloads, table = resolve_args(a)
    compare = a.replicas_compare
    if a.from_json:
        rewrite_from_json(a, systems, workloads)
        return
    exes = check_deps(systems, not a.no_chart)
    raise_fd_limit()
    info = machine_info(exes)
    tmp = Path(tempfile.mkdtemp(prefix="peerchat-bench-"))
    load_start = os.getloadavg()[0]
    opts = {wl: scaled_for(wl, table[wl][1], a) for wl in workloads}
    plan = make_plan(a, systems, workloads, opts)
    traffic = sum(o.get("duration") or 0 for _, wl, _ in plan for o in [opts[wl]])
    print(
        f"peerchat benchmark: {info['nproc']} cores, {info['cpu']}; load {load_start:.2f}; "
        f"{len(plan)} runs ({traffic:.0f} s of fixed-duration traffic, plus "
        f"waits for a quiet machine of {a.quiet_window:g}-{a.quiet_max:g} s each); "
        f"logs in {tmp}",
        flush=True,
    )
    started = time.monotonic()
    runs = run_plan(plan, opts, a, exes, tmp, started)
    load_end = os.getloadavg()[0]
    saved = {
        "machine": info,
        "runs": runs,
        "workloads": opts,
        "load": [load_start, load_end],
        "args": vars(a),
    }
    js = Path(a.json)
    js.parent.mkdir(parents=True, exist_ok=True)
    if compare:
        saved["mode"] = "replicas-compare"
        js.write_text(json.dumps(saved, indent=1))
        write_replicas_section(saved, a, workloads, table)
    else:
        js.write_text(json.dumps(saved, indent=1))
        write_doc(saved, a, systems, workloads, table)
    print(f"raw: {js}; {(time.monotonic() - started) / 60:.1f} min in all")


if __name__ == "__main__":
    main()
