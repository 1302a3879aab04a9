"""peerchat benchmark (issue 6): peerchat vs Redis pub/sub vs NATS vs a naive relay.

    .venv/bin/python -m bench.run            # full run (about 15-25 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # smoke run, under a minute
    .venv/bin/python -m bench.run --help
    .venv/bin/python -m bench.run --replicas-compare          # issue 9: 2 replicas vs 1
    .venv/bin/python -m bench.run --replicas-compare --quick  # its smoke run, to /tmp

For every repetition, workload and system (the systems' order rotates each time), it
starts a fresh server on a free 127.0.0.1 port, runs the load generator
(``bench/loadgen.py``) in its own process against it, and stops the server by its
PID. Medians over repetitions go to ``docs/benchmarks.md`` and ``docs/benchmarks.png``;
every run's raw result to ``bench/results/latest.json``. A run that lost, duplicated,
corrupted or reordered any message is reported as such, never as a speed.

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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SYSTEMS = ("peerchat", "redis", "nats", "naive")  # the default: make bench
#: peerchat as several replicas sharing one chat through one Redis: name -> replicas.
REPLICATED = {"peerchat-2r": 2}
KNOWN_SYSTEMS = (*SYSTEMS, *REPLICATED)
BASELINE = "redis"
REPLICAS_HEADING = "## Replicas: 2 vs 1"
#: peerchat's per-peer flood control (5 lines/s after a 20-line burst) would measure
#: the limit, not the relay: it is turned off, as Redis and NATS have no such limit.
#: Environment, not a flag, so a server without the option still starts.
# Abuse limits off: Redis and NATS have no flood control, and W6 opens 10,000
# connections from one address.
PEERCHAT_ENV = {
    "PEERCHAT_FLOOD_RATE": "0",
    "PEERCHAT_MAX_CONNECTIONS": "0",
    "PEERCHAT_MAX_PER_ADDRESS": "0",
}

#: name: (title, load generator options). Message size is 100 bytes unless given.
FULL: dict[str, tuple[str, dict[str, Any]]] = {
    "W1": ("1 sender → 100 receivers, 20,000 msgs", {"receivers": 100, "messages": 20000}),
    "W2": ("1 sender → 1,000 receivers, 2,000 msgs", {"receivers": 1000, "messages": 2000}),
    "W3": (
        "1 sender at 50 msg/s → 1,000 receivers, 10 s",
        {"receivers": 1000, "messages": 500, "rate": 50},
    ),
    "W4": (
        "50 senders × 200 msgs → 50 receivers",
        {"receivers": 50, "senders": 50, "messages": 200},
    ),
    "W5": (
        "1 sender → 10 receivers, 1 never reads, 500,000 msgs (50 MB)",
        {"receivers": 10, "stalled": 1, "messages": 500000, "max-seconds": 240},
    ),
    "W6": (
        "10,000 idle connections",
        {"receivers": 10000, "senders": 0, "messages": 0, "settle-max": 90, "max-seconds": 200},
    ),
}
QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "W1": ("1 → 100, 2,000 msgs (quick)", {"receivers": 100, "messages": 2000}),
    "W2": ("1 → 300, 300 msgs (quick)", {"receivers": 300, "messages": 300}),
    "W3": ("1 at 50 msg/s → 200, 2 s (quick)", {"receivers": 200, "messages": 100, "rate": 50}),
    "W4": ("20 senders × 50 → 20 (quick)", {"receivers": 20, "senders": 20, "messages": 50}),
    "W5": (
        "1 → 10, 1 never reads, 20,000 msgs (quick)",
        {"receivers": 10, "stalled": 1, "messages": 20000},
    ),
    "W6": (
        "1,000 idle connections (quick)",
        {"receivers": 1000, "senders": 0, "messages": 0, "settle-max": 10},
    ),
}
#: The load generator's ceiling: the trivial relay, single-sender shapes.
CEILING_FULL = {"receivers": 100, "messages": 20000}
CEILING_QUICK = {"receivers": 100, "messages": 2000}

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
        for text in ("Lost Redis", "Could not publish", "Ignored a bad note"):
            n = sum(s.output_count(text) for s in self.replicas)
            if n:
                found[text] = n
        return found

    def stop(self) -> None:
        for server in reversed(self.procs):
            server.stop()


def one_run(
    system: str,
    wl: str,
    opts: dict[str, Any],
    a: argparse.Namespace,
    exes: dict[str, str],
    tmp: Path,
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    servers = Deployment(system, wl, a, exes, tmp)
    try:
        args = [
            sys.executable,
            "-m",
            "bench.loadgen",
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
            "--window",
            str(a.window),
        ]
        if servers.bus is not None:
            args += ["--bus-pid", str(servers.bus.pid)]
        for k, v in opts.items():
            args += [f"--{k}", str(v)]
        limit = float(opts.get("max-seconds", 120)) + 60
        lg = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = lg.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.kill(lg.pid, signal.SIGKILL)
            out, err = lg.communicate(timeout=10)
            return {
                "system": system,
                "workload": wl,
                "clean": False,
                "outcome": f"load generator killed after {limit:g} s",
            }
        finally:
            if lg.poll() is None:  # interrupted: stop our load generator by its PID
                os.kill(lg.pid, signal.SIGKILL)
                lg.wait(10)
        try:
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {
                "system": system,
                "workload": wl,
                "clean": False,
                "outcome": f"load generator failed: {err.strip()[-300:]}",
            }
    finally:
        servers.stop()
    result["load_avg_before"] = round(load_before, 2)
    result["server_log"] = str(servers.replicas[0].log_path)
    if servers.bus is not None:
        result["server_logs"] = [str(s.log_path) for s in servers.procs]
        result["bus_troubles"] = servers.bus_troubles()
    return result


# --- summaries ------------------------------------------------------------------------------


def med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def problems(r: dict[str, Any]) -> str:
    """Why a run is not a clean one, or ''."""
    if r.get("clean"):
        return ""
    parts = []
    v = r.get("verified") or {}
    if r.get("expected") is not None and r.get("delivered", 0) < r["expected"]:
        parts.append(f"lost {r['expected'] - r['delivered']:,}")
    elif r.get("expected") is not None and r.get("delivered", 0) > r["expected"]:
        parts.append(f"{r['delivered'] - r['expected']:,} extra")
    for key in ("duplicated", "corrupted", "reordered"):
        if v.get(key):
            parts.append(f"{v[key]:,} {key}")
    if v.get("lost") and not parts:
        parts.append(f"lost {v['lost']:,} (verified)")
    if not parts:
        parts.append(str(r.get("outcome", "failed")))
    elif r.get("outcome", "complete") != "complete":
        parts.append(str(r["outcome"]))
    return ", ".join(parts)


def summarize(
    runs: list[dict[str, Any]], systems: list[str], workloads: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for wl in workloads:
        out[wl] = {}
        for system in systems:
            rs = [r for r in runs if r["system"] == system and r["workload"] == wl]
            if not rs:
                continue
            dirty = [r for r in rs if problems(r)]
            lat = [r.get("latency_ms") or {} for r in rs]
            s: dict[str, Any] = {
                "runs": len(rs),
                "dirty": [problems(r) for r in dirty],
                "rate": med([r.get("deliveries_per_s") for r in rs]),
                "p50": med([x.get("p50") for x in lat]),
                "p99": med([x.get("p99") for x in lat]),
                "connect_s": med([r.get("connect_s") for r in rs]),
                "settle_s": med([r.get("settle_s") for r in rs]),
                "kib_per_conn": med([r.get("kib_per_connection") for r in rs]),
                "peak_mib": med([(r.get("rss_peak_kib") or 0) / 1024 for r in rs]),
                "hwm_mib": med([(r.get("hwm_kib") or 0) / 1024 for r in rs]),
                "got_pct": med(
                    [100 * r["delivered"] / r["expected"] for r in rs if r.get("expected")]
                ),
                "corrupted": sum((r.get("verified") or {}).get("corrupted", 0) for r in rs),
                "verified": sum((r.get("verified") or {}).get("expected", 0) for r in rs),
                "extra": med([r.get("extra_to_senders") for r in rs]),
                "stalled": [r.get("stalled") for r in rs if r.get("stalled")],
                "disconnects": [r.get("disconnects_before_traffic", 0) for r in rs],
            }
            out[wl][system] = s
    return out


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.0f} k/s"


def fmt_ratio(x: float | None, base: float | None) -> str:
    if x is None or not base:
        return ""
    return f" ({x / base:.2f}×)"


def cell(s: dict[str, Any] | None, key: str, base: dict[str, Any] | None, fmt: Any) -> str:
    if s is None:
        return "-"
    if s["dirty"] and key in ("rate", "p50", "p99"):
        return f"✗ {len(s['dirty'])}/{s['runs']} runs: {s['dirty'][0]}"
    value = s.get(key)
    if value is None:
        return "-"
    b = base.get(key) if base and not base["dirty"] else None
    return fmt(value) + fmt_ratio(value, b)


def stalled_fate(s: dict[str, Any] | None) -> str:
    if not s or not s["stalled"]:
        return "-"
    st = s["stalled"][0]
    got = f"{st['messages_read_after_resume']:,}/{st['of']:,} reached it (read after the run)"
    closed = st.get("closed_after_draining")
    if closed is None:
        return got
    return got + ("; then closed by the server" if closed else "; connection still open")


def markdown(
    summary: dict[str, dict[str, dict[str, Any]]],
    titles: dict[str, str],
    systems: list[str],
    info: dict[str, str],
    ceiling: dict[str, Any] | None,
    a: argparse.Namespace,
    runs: list[dict[str, Any]],
    load: tuple[float, float],
    chart: str | None,
) -> str:
    ms = lambda v: f"{v:.1f} ms"  # noqa: E731
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run"
        + (" --quick" if a.quick else "")
        + "`; method in `bench/run.py` and "
        "`bench/loadgen.py`, issue 6). peerchat (plain-text peers) against Redis "
        "pub/sub, NATS and the seed's naive thread-per-client relay, side by side in "
        "one run, the systems' order rotating each time, each run "
        "with a fresh server on 127.0.0.1.",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['nproc']} cores, {info['cpu']}, {info['memory']}, "
        f"Linux {info['kernel']}; load average {load[0]:.2f} before, {load[1]:.2f} after "
        "(other sessions may share the machine)",
        f"- **Versions:** Python {info['python']}; {info['redis']}; {info['nats']}; "
        f"peerchat {info['peerchat']}",
        f"- **Runs:** median of {a.reps} repetition(s) per cell; messages of 100 bytes; "
        f"at most {a.window:,} messages in flight per receiver; {a.sample} receivers per run "
        "verified in full (every message: sender, sequence, CRC, order, latency); "
        "every receiver counted. peerchat runs with `PEERCHAT_FLOOD_RATE=0` (its per-peer "
        "flood control off: Redis and NATS have none).",
    ]
    if ceiling:
        best = max((r.get("deliveries_per_s") or 0 for r in runs if not problems(r)), default=0)
        lines.append(
            f"- **Load generator ceiling:** against `bench/trivial_relay.py` (W1's shape) it "
            f"counted **{fmt_rate(ceiling['rate'])}**; the best clean run of any system "
            f"reached **{fmt_rate(best)}**, so one load generator process can count at least "
            f"{fmt_rate(max(best, ceiling['rate'] or 0))} on this machine (the trivial relay, "
            "itself Python, can be the slower side). Figures near it measure the load "
            "generator as much as the server; both share the 2 cores."
        )
    lines += [
        "",
        "Ratios in brackets are to Redis in the same run (`×` > 1: more "
        "deliveries/s, or a longer latency/time/memory). ✗: a run lost, duplicated, "
        "corrupted or reordered messages, so no speed is given.",
        "",
    ]
    head = "| workload | metric | " + " | ".join(systems) + " |"
    lines += [head, "|" + " --- |" * (len(systems) + 2)]

    def row(wl: str, metric: str, key: str, fmt: Any) -> None:
        base = summary[wl].get(BASELINE)
        cells = [cell(summary[wl].get(sy), key, base, fmt) for sy in systems]
        lines.append(f"| {wl}: {titles[wl]} | {metric} | " + " | ".join(cells) + " |")

    def row_text(wl: str, metric: str, fn: Any) -> None:
        cells = [fn(summary[wl].get(sy)) for sy in systems]
        lines.append(f"| {wl}: {titles[wl]} | {metric} | " + " | ".join(cells) + " |")

    for wl in summary:
        if wl in ("W1", "W2", "W4"):
            row(wl, "deliveries/s", "rate", fmt_rate)
            row(wl, "latency p99 (saturated)", "p99", ms)
        if wl == "W4":
            row_text(
                wl,
                "lines corrupted (verified sample)",
                lambda s: "-" if not s else f"{s['corrupted']:,} of {s['verified']:,}",
            )
            row_text(
                wl,
                "also delivered to the senders (chat room)",
                lambda s: "-" if not s or not s["extra"] else f"{s['extra']:,.0f}",
            )
        if wl == "W3":
            row(wl, "latency p50", "p50", ms)
            row(wl, "latency p99", "p99", ms)
        if wl == "W5":
            row(wl, "healthy 9: deliveries/s", "rate", fmt_rate)
            row_text(
                wl,
                "healthy 9: share received",
                lambda s: "-" if not s or s["got_pct"] is None else f"{s['got_pct']:.2f} %",
            )
            row(wl, "healthy 9: latency p99", "p99", ms)
            row_text(wl, "the stalled one", stalled_fate)
            row(wl, "server peak RSS", "peak_mib", lambda v: f"{v:.0f} MiB")
        if wl == "W6":
            row(wl, "time to connect all", "connect_s", lambda v: f"{v:.2f} s")
            row(wl, "server memory per connection", "kib_per_conn", lambda v: f"{v:.1f} KiB")
            row(wl, "until quiet (join notices)", "settle_s", lambda v: f"{v:.1f} s")
            row(wl, "server peak RSS", "peak_mib", lambda v: f"{v:.0f} MiB")
    if chart:
        lines += ["", f"![deliveries per second per workload]({chart})"]
    lines += [
        "",
        "## How to read it",
        "",
        "- *deliveries/s*: messages received by all counted receivers, divided by the time "
        "from the first message sent to the last one received.",
        "- Latency under W1/W2/W4/W5 is time in queues at saturation (bounded by the "
        "in-flight window), not the latency of a lightly loaded server: W3 measures that.",
        "- W4: peerchat and the naive relay are chat rooms, so each sender also receives the "
        "other 49 senders' messages (about twice the fan-out work); only the 50 receivers' "
        "deliveries are counted. The naive relay forwards raw 1024-byte chunks, so lines "
        "from different senders interleave mid-line: corrupted.",
        "- W5: one receiver pauses reading; the sender waits for the healthy nine. "
        "peerchat drops a peer over `--max-send-buffer` (1 MiB); Redis over "
        "`client-output-buffer-limit pubsub 32mb 8mb 60`; NATS over `max_pending` (64 MB) "
        "or its write deadline; the naive relay blocks in `sendall`, stalling everyone. "
        "A dropped reader gets what the kernel's socket buffers held (about 3-4 MB), then "
        "the close (checked by `bench/loadgen.py`: `closed_after_draining`).",
        "- W6: memory per connection is (RSS with every connection open and quiet − RSS "
        "before) / connections. peerchat announces a plain peer to its room 0.5 s after "
        "it connects, in rooms of up to 1,000 members (`--join-notices-up-to`): *until "
        "quiet* is how long those notices take to drain.",
        "",
        "## Every run",
        "",
        "| workload | system | deliveries/s | p50 / p99 ms | connect s | peak RSS MiB "
        "| load avg | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        lat = r.get("latency_ms") or {}
        p50, p99 = lat.get("p50"), lat.get("p99")
        latency = f"{p50:.1f} / {p99:.1f}" if p50 is not None and p99 is not None else "-"
        rate = r.get("deliveries_per_s")
        lines.append(
            f"| {r['workload']} | {r['system']} | {fmt_rate(rate) if rate else '-'} "
            f"| {latency} | {r.get('connect_s', '-')} "
            f"| {(r.get('rss_peak_kib') or 0) / 1024:.0f} | {r.get('load_avg_before', '-')} "
            f"| {problems(r) or 'clean'} |"
        )
    return "\n".join(lines) + "\n"


def draw_chart(
    summary: dict[str, dict[str, dict[str, Any]]],
    systems: list[str],
    ceiling: dict[str, Any] | None,
    path: Path,
    info: dict[str, str],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wls = [w for w in ("W1", "W2", "W4", "W5") if w in summary]  # W3 is fixed-rate
    fig, ax = plt.subplots(figsize=(10, 5.5))
    width = 0.8 / max(1, len(systems))
    for j, system in enumerate(systems):
        xs, ys = [], []
        for i, wl in enumerate(wls):
            s = summary[wl].get(system)
            x = i + (j - (len(systems) - 1) / 2) * width
            if s is None:
                continue
            if s["dirty"] or s["rate"] is None:
                ax.text(x, 0, "✗", ha="center", va="bottom", color="red", fontsize=12)
                continue
            xs.append(x)
            ys.append(s["rate"] / 1e6)
        ax.bar(xs, ys, width, label=system)
    if ceiling:
        ax.axhline(
            ceiling["rate"] / 1e6,
            color="grey",
            linestyle="--",
            linewidth=1,
            label="trivial relay (load generator can count at least this)",
        )
    ax.set_xticks(range(len(wls)), wls)
    ax.set_ylabel("deliveries per second (millions)")
    ax.set_title(
        f"peerchat benchmark, {info['date']}: {info['nproc']} cores, {info['cpu']}"
        "\n(W3 is fixed-rate: see the table) ✗ = lost, duplicated or corrupted (no speed)",
        fontsize=10,
    )
    ax.legend()
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


def replicas_section(
    runs: list[dict[str, Any]],
    workloads: list[str],
    titles: dict[str, str],
    info: dict[str, str],
    a: argparse.Namespace,
    load: tuple[float, float],
    shapes: dict[str, tuple[int, int]],
) -> str:
    """The section ``## Replicas: 2 vs 1``; ``shapes``: workload -> (messages, receivers)."""
    one, two = "peerchat", "peerchat-2r"
    summary = summarize(runs, [one, two], workloads)

    def ms(v: float) -> str:
        return f"{v:.1f} ms"

    def mib(v: float) -> str:
        return f"{v:.0f} MiB"

    def clean_runs(system: str, wl: str) -> list[dict[str, Any]]:
        return [
            r for r in runs if r["system"] == system and r["workload"] == wl and not problems(r)
        ]

    def cpu(system: str, wl: str) -> dict[str, Any]:
        """Medians over clean runs: CPU seconds during the traffic, in all, and the
        share of a core each process used (CPU s / wall s)."""
        c = [r["cpu_s"] for r in clean_runs(system, wl) if (r.get("cpu_s") or {}).get("wall")]
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
            "servers": med([sum(x or 0 for x in v["servers"]) for v in c]),
            # every process on the machine, other sessions' included; and what the
            # hypervisor took
            "machine": med([v["machine"] / v["wall"] for v in c if v.get("machine")]),
            "steal": med([v["steal"] / v["wall"] for v in c if v.get("steal") is not None]),
            "cores": {
                name: med([(row[name] or 0) / v["wall"] for row, v in zip(rows, c, strict=True)])
                for name in rows[0]
            },
        }

    def cores(c: dict[str, Any]) -> str:
        text = " + ".join(f"{name} {x:.2f}" for name, x in c["cores"].items())
        text += f" = {c['busy']:.2f}"
        if c.get("machine") is not None:
            text += f" (whole machine: {c['machine']:.2f})"
        return text

    def path_p99(wl: str, port: int) -> float | None:
        return med(
            [
                ((r.get("by_port") or [{}, {}])[port].get("latency_ms") or {}).get("p99")
                for r in clean_runs(two, wl)
            ]
        )

    def ratio(x: float | None, y: float | None) -> str:
        return f"{y / x:.2f}×" if x and y is not None else ""

    reps = max((r.get("rep", 1) for r in runs), default=1)
    lines = [
        REPLICAS_HEADING,
        "",
        "Written by `.venv/bin/python -m bench.run --replicas-compare"
        + (" --quick" if a.quick else "")
        + "` (issue 9; method in `bench/run.py` and `bench/loadgen.py`). "
        "W1 and W2 against one peerchat server, and against **2 replicas** sharing the "
        "chat through one Redis (`peerchat-server --bus redis://…`; `redis-server --save "
        "'' --appendonly no`), every process on 127.0.0.1 with the same settings as above "
        "(flood control and connection limits off). The sender connects to the first "
        "replica; receivers alternate between the two, so half get each message from the "
        "sender's replica and half from the other one, through Redis. The two set-ups "
        f"alternate; median of {reps} repetition(s); {a.sample} receivers per run "
        "verified in full (with 2 replicas, half on each): none may lose, duplicate, "
        "corrupt or reorder a message.",
        "",
        f"- **Date:** {info['date']}; load average {load[0]:.2f} before, {load[1]:.2f} "
        "after (another session may share the machine)",
        f"- **Machine:** {info['nproc']} cores, {info['cpu']}, {info['memory']}; "
        f"Python {info['python']}; {info['redis'].split(' sha=')[0]}; "
        f"peerchat {info['peerchat']}",
        "",
        "| workload | metric | 1 server | 2 replicas | 2 replicas / 1 server |",
        "| --- | --- | --- | --- | --- |",
    ]
    for wl in workloads:
        s1, s2 = summary[wl].get(one), summary[wl].get(two)
        name = f"{wl}: {titles[wl]}"

        def val(s: dict[str, Any] | None, key: str, fmt: Any) -> str:
            if s is None:
                return "-"
            if s["dirty"]:
                return f"✗ {len(s['dirty'])}/{s['runs']} runs: {s['dirty'][0]}"
            return "-" if s.get(key) is None else fmt(s[key])

        def ok(s: dict[str, Any] | None, key: str) -> float | None:
            return None if s is None or s["dirty"] else s.get(key)

        lines.append(
            f"| {name} | deliveries/s | {val(s1, 'rate', fmt_rate)} | "
            f"{val(s2, 'rate', fmt_rate)} | {ratio(ok(s1, 'rate'), ok(s2, 'rate'))} |"
        )
        lines.append(
            f"| {name} | latency p99 (saturated) | {val(s1, 'p99', ms)} | "
            f"{val(s2, 'p99', ms)} | {ratio(ok(s1, 'p99'), ok(s2, 'p99'))} |"
        )
        direct, via = path_p99(wl, 0), path_p99(wl, 1)
        if direct is not None and via is not None:
            lines.append(
                f"| {name} | p99, 2 replicas: sender's replica / through Redis | - | "
                f"{ms(direct)} / {ms(via)} | |"
            )
        bus_mib = med([(r.get("bus_rss_peak_kib") or 0) / 1024 for r in clean_runs(two, wl)])
        p1, p2 = ok(s1, "peak_mib"), ok(s2, "peak_mib")
        if p1 is not None and p2 is not None:
            both = p2 + (bus_mib or 0)
            lines.append(
                f"| {name} | peak RSS (2 replicas: summed; Redis apart) | {mib(p1)} | "
                f"{mib(p2)} + Redis {mib(bus_mib or 0)} | {ratio(p1, both)} with Redis |"
            )
        c1, c2 = cpu(one, wl), cpu(two, wl)
        if c1 and c2:
            lines.append(
                f"| {name} | cores used during the traffic (CPU s / s) | {cores(c1)} | "
                f"{cores(c2)} | {ratio(c1['total'], c2['total'])} the CPU s |"
            )
    p99s = {wl: (path_p99(wl, 0), path_p99(wl, 1)) for wl in workloads}
    lines += ["", replicas_reading(summary, workloads, info, cpu, shapes, p99s), ""]
    lines += [
        "Every run (rep, set-up, deliveries/s, p99, load average before it, verdict): "
        + "; ".join(
            f"{r['workload']} #{r.get('rep', 1)} {'2r' if r['system'] == two else '1'} "
            f"{fmt_rate(r.get('deliveries_per_s')) if r.get('deliveries_per_s') else '-'} "
            f"{((r.get('latency_ms') or {}).get('p99') or 0):.0f} ms "
            f"(load {r.get('load_avg_before', '-')}) {problems(r) or 'clean'}"
            + (f", bus: {r['bus_troubles']}" if r.get("bus_troubles") else "")
            for r in runs
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def replicas_reading(
    summary: dict[str, dict[str, dict[str, Any]]],
    workloads: list[str],
    info: dict[str, str],
    cpu: Any,
    shapes: dict[str, tuple[int, int]],
    p99s: dict[str, tuple[float | None, float | None]],
) -> str:
    """What the figures show, in a few sentences written from the figures."""
    one, two = "peerchat", "peerchat-2r"
    rates = []
    for wl in workloads:
        s1, s2 = summary[wl].get(one), summary[wl].get(two)
        if s1 and s2 and not s1["dirty"] and not s2["dirty"] and s1["rate"] and s2["rate"]:
            rates.append(f"{s2['rate'] / s1['rate']:.2f}× ({wl})")
    if not rates:
        return "Some runs were not clean (✗ above): no speed is compared."
    nproc = int(info["nproc"]) if info["nproc"].isdigit() else 2
    text = (
        f"**What it shows.** On this {nproc}-core machine, 2 replicas delivered "
        + " and ".join(rates)
        + " the deliveries/s of one server: no speed-up, as expected here."
    )
    c = {wl: (cpu(one, wl), cpu(two, wl)) for wl in workloads}
    c = {wl: pair for wl, pair in c.items() if pair[0] and pair[1]}
    if c:
        busy = [pair[1].get("machine") for pair in c.values()]
        ours = [pair[1]["busy"] for pair in c.values()]
        steal = [pair[1].get("steal") or 0 for pair in c.values()]
        if all(b is not None and b + st >= 0.85 * nproc for b, st in zip(busy, steal, strict=True)):
            others = ", ".join(f"{b - o:.2f}" for b, o in zip(busy, ours, strict=True))
            text += (
                f" The cores were the first limit: two replicas, Redis and the load "
                f"generator share them, and they were saturated during the traffic (the "
                f"whole machine {', '.join(f'{b:.2f}' for b in busy)} of {nproc} cores "
                f"busy in {', '.join(c)}; of that, {others} by other sessions' processes, "
                "not the bench's"
                + (
                    f"; the hypervisor took {', '.join(f'{x:.2f}' for x in steal)} more"
                    if max(steal) >= 0.05
                    else ""
                )
                + ")."
            )
        else:
            text += (
                " The cores were not saturated (busy: "
                + ", ".join(f"{b:.2f}" for b in busy if b is not None)
                + f" of {nproc})."
            )
        extra = {}
        for wl, (c1, c2) in c.items():
            messages = shapes.get(wl, (0, 0))[0]
            if messages and c1["servers"] is not None and c2["servers"] is not None:
                extra[wl] = (c2["servers"] - c1["servers"]) / messages * 1e6
        if extra:
            text += (
                " The work per message is the second: each message also goes through Redis "
                "(the sender's replica encodes and publishes it, the other replica reads and "
                "decodes it), which cost the replicas "
                + " and ".join(f"{us:.0f} µs ({wl})" for wl, us in extra.items())
                + " of CPU per message more than one server, however many receivers it has."
            )
            if {"W1", "W2"} <= set(extra):
                (m1, r1), (m2, r2) = shapes["W1"], shapes["W2"]
                text += (
                    f" W1 ({m1:,} messages to {r1:,} receivers) pays that {m1 / m2:.0f} "
                    f"times as often as W2 ({m2:,} to {r2:,}) for the same deliveries, "
                    "hence the gap between them."
                )
    late = [
        f"{via:.0f} / {direct:.0f} ms in {wl}"
        for wl, (direct, via) in p99s.items()
        if direct is not None and via is not None
    ]
    if late:
        text += (
            " The receivers behind Redis are served last (p99 through Redis / on the "
            "sender's replica: " + ", ".join(late) + ")."
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
    shapes = {}
    for wl in workloads:
        opts = table[wl][1]
        messages = opts.get("messages", 0) * opts.get("senders", 1)
        rs = [r for r in saved["runs"] if r["workload"] == wl and r.get("messages")]
        if rs:  # what the load generator was told (--scale included)
            messages = rs[0]["messages"] * rs[0].get("senders", 1)
        elif getattr(a, "scale", 1.0) != 1.0:
            messages = max(1, int(messages * a.scale))
        shapes[wl] = (messages, opts["receivers"])
    section = replicas_section(
        saved["runs"],
        workloads,
        {w: table[w][0] for w in workloads},
        saved["machine"],
        a,
        (saved["load"][0], saved["load"][1]),
        shapes,
    )
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.read_text() if out.exists() else ""
    out.write_text(place_section(old, section) if old.strip() else section)
    print(f"wrote the section {REPLICAS_HEADING!r} of {out}")


def rerender(
    saved: dict[str, Any],
    a: argparse.Namespace,
    systems: list[str],
    workloads: list[str],
    table: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    for key in ("reps", "window", "sample", "quick"):
        if key in saved.get("args", {}):
            setattr(a, key, saved["args"][key])
    runs = saved["runs"]
    summary = summarize(runs, systems, workloads)
    out = Path(a.output)
    chart = None
    if not a.no_chart:
        png = out.with_suffix(".png")
        draw_chart(summary, systems, saved.get("ceiling"), png, saved["machine"])
        chart = png.name
    text = markdown(
        summary,
        {w: table[w][0] for w in workloads},
        systems,
        saved["machine"],
        saved.get("ceiling"),
        a,
        runs,
        tuple(saved["load"]),
        chart,
    )
    out.write_text(keep_replicas_section(out, text))
    print(f"wrote {out}")


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description="peerchat vs Redis pub/sub vs NATS vs naive relay")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (< 1 min)")
    p.add_argument("--reps", type=int, help="repetitions per cell (default 3; quick: 1)")
    p.add_argument(
        "--systems",
        help=f"default {','.join(SYSTEMS)}; also known: {', '.join(REPLICATED)} "
        "(peerchat as 2 replicas sharing the chat through one Redis)",
    )
    p.add_argument("--workloads", help="default W1,W2,W3,W4,W5,W6 (--replicas-compare: W1,W2)")
    p.add_argument(
        "--replicas-compare",
        action="store_true",
        help="issue 9: W1 and W2, 1 peerchat server vs 2 replicas + Redis (peerchat-2r), "
        f"interleaved; writes only the section {REPLICAS_HEADING!r} of --output "
        "(with --quick: to /tmp/peerchat-bench/replicas.md)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply message counts and W6's connections by this",
    )
    p.add_argument("--sample", type=int, default=10, help="receivers verified in full per run")
    p.add_argument("--window", type=int, default=4000, help="messages in flight per receiver")
    p.add_argument(
        "--peerchat-cmd", help="command to start peerchat, with {port}; e.g. a patched copy"
    )
    p.add_argument("--no-ceiling", action="store_true")
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
    a = p.parse_args()

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds, so every server and load generator stops

    signal.signal(signal.SIGTERM, on_term)
    a.reps = a.reps or (1 if a.quick else 3)
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
    default_wls = "W1,W2" if compare else "W1,W2,W3,W4,W5,W6"
    workloads = [w for w in (a.workloads or default_wls).split(",") if w]
    table = QUICK if a.quick else FULL
    for s in systems:
        if s not in KNOWN_SYSTEMS:
            sys.exit(f"ERROR: unknown system {s!r}; choose from {', '.join(KNOWN_SYSTEMS)}")
    for w in workloads:
        if w not in table:
            sys.exit(f"ERROR: unknown workload {w!r}; choose from {', '.join(table)}")
    if a.from_json:
        saved = json.loads(Path(a.from_json).read_text())
        if compare:
            for key in ("reps", "window", "sample", "quick", "scale"):
                if key in saved.get("args", {}):
                    setattr(a, key, saved["args"][key])
            write_replicas_section(saved, a, workloads, QUICK if a.quick else FULL)
        else:
            rerender(saved, a, systems, workloads, QUICK if a.quick else FULL)
        return
    exes = check_deps(systems, not a.no_chart)
    raise_fd_limit()
    info = machine_info(exes)
    tmp = Path(tempfile.mkdtemp(prefix="peerchat-bench-"))
    load_start = os.getloadavg()[0]
    print(
        f"peerchat benchmark: {info['nproc']} cores, {info['cpu']}; load {load_start:.2f}; "
        f"logs in {tmp}",
        flush=True,
    )

    def scaled(opts: dict[str, Any]) -> dict[str, Any]:
        o = dict(opts)
        if a.scale != 1.0:
            if o.get("messages"):
                o["messages"] = max(1, int(o["messages"] * a.scale))
            if not o.get("messages"):
                o["receivers"] = max(1, int(o["receivers"] * a.scale))
        return o

    ceiling = None
    if not a.no_ceiling:
        opts = scaled(CEILING_QUICK if a.quick else CEILING_FULL)
        rs = [one_run("trivial", "ceiling", opts, a, exes, tmp) for _ in range(a.reps)]
        ceiling = {"rate": med([r.get("deliveries_per_s") for r in rs]), "runs": rs}
        print(
            f"load generator ceiling (trivial relay, W1 shape): {fmt_rate(ceiling['rate'])}",
            flush=True,
        )

    runs: list[dict[str, Any]] = []
    n = 0
    for rep in range(a.reps):
        for wi, wl in enumerate(workloads):
            k = (rep + wi) % len(systems)
            for system in systems[k:] + systems[:k]:
                n += 1
                r = one_run(system, wl, scaled(table[wl][1]), a, exes, tmp)
                r["rep"] = rep + 1
                runs.append(r)
                lat = r.get("latency_ms") or {}
                print(
                    f"[{n}/{a.reps * len(workloads) * len(systems)}] rep {rep + 1} {wl} "
                    f"{system:8} {fmt_rate(r.get('deliveries_per_s')):>10}  "
                    f"p99 {lat.get('p99') or 0:8.1f} ms  connect {r.get('connect_s', '-')} s  "
                    f"peak {(r.get('rss_peak_kib') or 0) / 1024:.0f} MiB  "
                    f"{problems(r) or 'clean'}",
                    flush=True,
                )
                by = r.get("by_port") or []
                if len(by) > 1:
                    p99s = [((x.get("latency_ms") or {}).get("p99") or 0) for x in by]
                    cpu = r.get("cpu_s") or {}
                    print(
                        f"      p99 on the sender's replica {p99s[0]:.1f} ms, through Redis "
                        f"{p99s[1]:.1f} ms; CPU s: replicas {cpu.get('servers')}, Redis "
                        f"{cpu.get('bus')}, load generator {cpu.get('loadgen')} in "
                        f"{cpu.get('wall')} s"
                        + (f"; bus: {r['bus_troubles']}" if r.get("bus_troubles") else ""),
                        flush=True,
                    )
    load_end = os.getloadavg()[0]
    if compare:
        saved = {
            "mode": "replicas-compare",
            "machine": info,
            "runs": runs,
            "load": [load_start, load_end],
            "args": vars(a),
        }
        js = Path(a.json)
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(saved, indent=1))
        write_replicas_section(saved, a, workloads, table)
        print(f"raw: {js}")
        return
    summary = summarize(runs, systems, workloads)
    titles = {w: table[w][0] for w in workloads}
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = None
    if not a.no_chart:
        png = out.with_suffix(".png")
        draw_chart(summary, systems, ceiling, png, info)
        chart = png.name
    text = markdown(summary, titles, systems, info, ceiling, a, runs, (load_start, load_end), chart)
    out.write_text(keep_replicas_section(out, text))
    js = Path(a.json)
    js.parent.mkdir(parents=True, exist_ok=True)
    js.write_text(
        json.dumps(
            {
                "machine": info,
                "ceiling": ceiling,
                "runs": runs,
                "summary": summary,
                "load": [load_start, load_end],
                "args": vars(a),
            },
            indent=1,
        )
    )
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if chart else "") + f"; raw: {js}")


if __name__ == "__main__":
    main()
