"""The README's own commands: `docker compose up server`, `docker compose run client`.

The stack comes up from docker-compose.yml itself under a unique project name and a
free host port, so two runs cannot collide; it is torn down even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

from .stack import ROOT, WAIT, Stack, running_stack


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A plain-text peer on the host, through the port compose published on 127.0.0.1."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    banner = await asyncio.wait_for(reader.readline(), WAIT)
    assert banner.startswith(b"*** Welcome to peerchat!"), banner
    return reader, writer, banner.decode()


async def read_until(reader: asyncio.StreamReader, needle: str) -> str:
    for _ in range(1000):
        line = (await asyncio.wait_for(reader.readline(), WAIT)).decode()
        assert line, f"connection closed before {needle!r}"
        if needle in line:
            return line.rstrip("\r\n")
    raise AssertionError(f"{needle!r} never came")


async def test_compose_run_client_chats_with_a_host_peer(stack: Stack) -> None:
    reader, writer, _ = await connect(stack.port)
    client = await asyncio.create_subprocess_exec(
        *stack.compose("run", "--rm", "-T", "client", "--nick", "composer", "--linger", "30"),
        cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        await read_until(reader, "*** composer joined")
        client.stdin.write(b"hello from compose\n")
        await client.stdin.drain()
        assert await read_until(reader, "<composer>") == "<composer> hello from compose"
        writer.write(b"hi composer\n")
        await writer.drain()
        received = ""
        for _ in range(100):
            line = (await asyncio.wait_for(client.stdout.readline(), WAIT)).decode()
            assert line, "client ended before the reply arrived"
            if "hi composer" in line:
                received = line
                break
        assert "[RECEIVED]" in received
        client.stdin.write(b"/quit\n")
        await client.stdin.drain()
        client.stdin.close()
        assert await asyncio.wait_for(client.wait(), WAIT) == 0
        assert "*** composer left: quit" in await read_until(reader, "composer left")
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        writer.close()


@contextlib.contextmanager
def client_on_a_terminal(stack: Stack, nick: str) -> Iterator[int]:
    """`docker compose run client` exactly as a person types it: yields its terminal.

    The scenario quits the client; on leaving, it must have exited with status 0.
    """
    main, child = pty.openpty()
    # Only the client's settings may differ from `up`'s: a change to the server's
    # (NO_COLOR, say) would make compose recreate the server under our feet.
    env = {**stack.env, "PEERCHAT_NICK": nick}
    proc = subprocess.Popen(
        stack.compose("run", "--rm", "client"), cwd=ROOT, env=env,
        stdin=child, stdout=child, stderr=child,
    )  # fmt: skip
    os.close(child)
    try:
        yield main
        assert proc.wait(timeout=WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


def test_interactive_compose_run_client_on_a_terminal(stack: Stack) -> None:
    """`docker compose run client` on a tty: a prompt, a message out, q to quit."""

    async def scenario(main: int) -> None:
        reader, writer, _ = await connect(stack.port)
        await read_until(reader, "*** typist joined")
        await wait_for_screen(main, b"Enter your message")
        os.write(main, b"hi from a terminal\r")
        assert await read_until(reader, "<typist>") == "<typist> hi from a terminal"
        os.write(main, b"q\r")
        await wait_for_screen(main, b"Quitting...")
        writer.close()

    with client_on_a_terminal(stack, "typist") as main:
        asyncio.run(asyncio.wait_for(scenario(main), WAIT * 2))


def test_compose_restart_server_and_the_client_comes_back_by_itself(stack: Stack) -> None:
    """`docker compose restart server` under a `docker compose run client` on a terminal."""

    async def scenario(main: int) -> None:
        await wait_for_screen(main, b"Enter your message")
        restart = await asyncio.create_subprocess_exec(
            *stack.compose("restart", "server"), cwd=ROOT, env=stack.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        await wait_for_screen(main, b"[RECONNECTED]")
        out, _ = await asyncio.wait_for(restart.communicate(), WAIT)
        assert restart.returncode == 0, out
        reader, writer, _ = await connect(stack.port)
        os.write(main, b"back after the restart\r")
        assert await read_until(reader, "<stayer>") == "<stayer> back after the restart"
        os.write(main, b"q\r")
        await wait_for_screen(main, b"Quitting...")
        writer.close()

    try:
        with client_on_a_terminal(stack, "stayer") as main:
            asyncio.run(asyncio.wait_for(scenario(main), WAIT * 2))
    finally:  # the next tests need the server healthy again
        up = stack.run("up", "--detach", "--wait", "server")
        assert up.returncode == 0, up.stdout + up.stderr


async def wait_for_screen(fd: int, needle: bytes) -> None:
    """Read the terminal until ``needle`` shows up (bounded by the caller's deadline)."""
    loop = asyncio.get_running_loop()
    seen = b""
    while needle not in seen:
        ready = asyncio.Event()
        loop.add_reader(fd, ready.set)
        try:
            await ready.wait()
        finally:
            loop.remove_reader(fd)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert needle in seen, f"{needle!r} not on screen: {seen[-500:]!r}"


def inspect(container: str, template: str) -> str:
    done = subprocess.run(
        ["docker", "inspect", "--format", template, container],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def assert_locked_down(container: str) -> None:
    """SECURITY.md: unprivileged, read-only root, no capabilities, no new privileges."""
    user, readonly, caps, security = inspect(
        container,
        "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} "
        "{{.HostConfig.SecurityOpt}}",
    ).split(" ", 3)
    assert user == "10001:10001"
    assert readonly == "true"
    assert caps == "[ALL]"
    assert "no-new-privileges:true" in security
    # The process itself runs as that user, not as root.
    ids = subprocess.run(
        ["docker", "exec", container, "cat", "/proc/1/status", "/proc/self/status"],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert ids.returncode == 0, ids.stderr
    uids = [line.split()[1:] for line in ids.stdout.splitlines() if line.startswith("Uid:")]
    assert uids
    assert all(row == ["10001"] * 4 for row in uids), uids


def test_the_containers_are_locked_down(stack: Stack) -> None:
    ps = stack.run("ps", "--quiet", "server")
    assert ps.returncode == 0, ps.stderr
    server = ps.stdout.strip()
    assert_locked_down(server)
    # Back by itself after a crash (not after a stop), with its log file rotated.
    assert inspect(server, "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"
    assert inspect(server, "{{.HostConfig.LogConfig.Config}}") == "map[max-file:3 max-size:10m]"
    # Its ports (IRC's, 6667, the chat's, 8080, the web chat's, 8081, and the
    # metrics', 9464) are published on the host's loopback only.
    bindings = inspect(server, "{{range $p, $b := .HostConfig.PortBindings}}{{$b}}{{end}}")
    assert bindings == (
        f"[{{127.0.0.1 {stack.irc_port}}}][{{127.0.0.1 {stack.port}}}]"
        f"[{{127.0.0.1 {stack.ws_port}}}][{{127.0.0.1 {stack.metrics_port}}}]"
    )
    # And the client, as `docker compose run client` starts it.
    name = f"{stack.project}-locked-client"
    run = stack.run("run", "--detach", "--name", name, "client", "--nick", "locked")
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        assert inspect(name, "{{.State.Running}}") == "true"
        assert_locked_down(name)
        # Even as its own user it cannot write outside the small /tmp it is given.
        write = subprocess.run(
            ["docker", "exec", name, "sh", "-c", "touch /opt/x || touch /home/x || echo refused"],
            capture_output=True, text=True, timeout=WAIT,
        )  # fmt: skip
        assert "refused" in write.stdout, write.stdout + write.stderr
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=WAIT)


def test_the_tls_variant_of_the_demo(tmp_path: Path) -> None:
    """`make tls-cert`, then the README's compose commands with docker-compose.tls.yml."""
    made = subprocess.run(
        ["make", "tls-cert"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    stack = Stack()
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.tls.yml"]
    try:
        up = stack.run(*files, "up", "--detach", "--wait", "server")
        assert up.returncode == 0, up.stdout + up.stderr

        async def scenario() -> None:
            context = ssl.create_default_context(cafile=str(ROOT / "tls" / "ca.crt"))
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.port, ssl=context)
            banner = await asyncio.wait_for(reader.readline(), WAIT)
            assert banner.startswith(b"*** Welcome to peerchat!"), banner
            client = await asyncio.create_subprocess_exec(
                *stack.compose(*files, "run", "--rm", "-T", "client", "--nick", "tls",
                               "--linger", "1"),
                cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await asyncio.wait_for(client.communicate(b"hello over tls\n"), WAIT)
            assert client.returncode == 0, output.decode()
            assert await read_until(reader, "<tls>") == "<tls> hello over tls"
            writer.close()

        asyncio.run(asyncio.wait_for(scenario(), WAIT * 2))
        logs = stack.run(*files, "logs", "server")
        assert "Server started on 0.0.0.0:8080 (TLS)" in logs.stdout
    finally:
        stack.run(*files, "--profile", "client", "down", "--remove-orphans", "--volumes")


def test_the_password_as_a_compose_secret(tmp_path: Path) -> None:
    """docker-compose.secret.yml: the server and the client read the password from
    /run/secrets; an nc user gives it with /pass."""
    secret = tmp_path / "password.txt"
    secret.write_text("s3cret from a file\n")
    secret.chmod(0o644)
    stack = Stack()
    stack.env["PEERCHAT_PASSWORD_SECRET"] = str(secret)
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.secret.yml"]
    try:
        up = stack.run(*files, "up", "--detach", "--wait", "server")
        assert up.returncode == 0, up.stdout + up.stderr

        async def scenario() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
            await read_until(reader, "This server needs a password")
            writer.write(b"/pass s3cret from a file\n")
            await writer.drain()
            await read_until(reader, "Password accepted")
            client = await asyncio.create_subprocess_exec(
                *stack.compose(*files, "run", "--rm", "-T", "client", "--nick", "secretive",
                               "--linger", "1"),
                cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await asyncio.wait_for(client.communicate(b"in with the secret\n"), WAIT)
            assert client.returncode == 0, output.decode()
            assert await read_until(reader, "<secretive>") == "<secretive> in with the secret"
            writer.close()

        asyncio.run(asyncio.wait_for(scenario(), WAIT * 2))
        server = stack.run(*files, "ps", "--quiet", "server").stdout.strip()
        environment = inspect(server, "{{.Config.Env}}")
        assert "s3cret" not in environment  # only the file's path
    finally:
        stack.run(*files, "--profile", "client", "down", "--remove-orphans", "--volumes")


CLUSTER_FILES = ("-f", "docker-compose.yml", "-f", "docker-compose.cluster.yml")
Proc = asyncio.subprocess.Process


async def cluster_client(stack: Stack, nick: str) -> Proc:
    """`docker compose run client` on the cluster variant, in scripting mode."""
    return await asyncio.create_subprocess_exec(
        *stack.compose(*CLUSTER_FILES, "run", "--rm", "-T", "client", "--nick", nick,
                       "--linger", "60"),
        cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


async def say(proc: Proc, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    await proc.stdin.drain()


async def until(proc: Proc, needle: str) -> str:
    assert proc.stdout is not None
    return await read_until(proc.stdout, needle)


def replica_of(stack: Stack, nick: str) -> set[str]:
    """The containers whose log says a peer became ``nick``."""
    logs = stack.run(*CLUSTER_FILES, "logs", "--no-color", "replica").stdout
    return {line.split("|")[0].strip() for line in logs.splitlines() if f"is now {nick}" in line}


async def two_rooms_and_a_shard_restarted(stack: Stack, ann: Proc, bob: Proc) -> None:
    await until(bob, "You are bob")
    await until(ann, "bob joined")
    homes = (replica_of(stack, "ann"), replica_of(stack, "bob"))
    assert len(homes[0]) == len(homes[1]) == 1, homes
    assert homes[0] != homes[1], "leastconn put both on one replica"
    for room in ("dev", "games"):
        for proc in (ann, bob):
            await say(proc, f"/join {room}")
            await until(proc, f"#{room}")
        await say(ann, f"hello {room}")
        assert f"<ann> hello {room}" in await until(bob, f"hello {room}")
    restart = await asyncio.to_thread(stack.run, *CLUSTER_FILES, "restart", "redis-2")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    for proc in (ann, bob):
        await until(proc, "link to the other chat servers is down")
    for proc in (ann, bob):
        await until(proc, "link to the other chat servers is back")
    await say(bob, "together again")
    assert "<bob> together again" in await until(ann, "together again")
    for proc in (ann, bob):
        await say(proc, "/quit")
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0


def test_the_cluster_variant_of_the_demo() -> None:
    """The README's replica commands: docker-compose.cluster.yml (two replicas, a Redis
    Cluster of three shards, a leastconn balancer). Two `docker compose run client`s land
    on different replicas and chat in two rooms; a shard restarted splits the chat, and
    it joins up again by itself."""
    images = subprocess.run(
        ["make", "cluster-images"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert images.returncode == 0, images.stderr
    stack = Stack()

    async def scenario() -> None:
        ann = await cluster_client(stack, "ann")
        await until(ann, "You are ann")  # (then bob's arrival is news to ann)
        bob = await cluster_client(stack, "bob")
        try:
            await two_rooms_and_a_shard_restarted(stack, ann, bob)
        finally:
            for proc in (ann, bob):
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    try:
        up = stack.run(*CLUSTER_FILES, "up", "--detach", "--wait", "balancer")
        assert up.returncode == 0, up.stdout + up.stderr
        ps = stack.run(*CLUSTER_FILES, "ps", "--format", "{{.Service}}")
        assert sorted(ps.stdout.split()) == [
            "balancer", "redis-1", "redis-2", "redis-3", "replica", "replica"
        ]  # fmt: skip
        asyncio.run(asyncio.wait_for(scenario(), WAIT * 3))
    finally:
        down = stack.run(*CLUSTER_FILES, "--profile", "client", "down", "--remove-orphans",
                         "--volumes")  # fmt: skip
        assert down.returncode == 0, down.stdout + down.stderr


def test_the_stack_serves_metrics_and_its_healthcheck_uses_healthz(stack: Stack) -> None:
    """/metrics from the host (parsed as Prometheus parses it) counts a host peer's
    line; the compose healthcheck, which asks /healthz, says healthy."""

    async def scenario() -> None:
        _, writer, _ = await connect(stack.port)
        reader, other, _ = await connect(stack.port)
        writer.write(b"counted by prometheus\n")
        await writer.drain()
        await read_until(reader, "counted by prometheus")  # relayed: now counted
        url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urlopen(url, timeout=10).read().decode())
        samples = {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        assert samples["peerchat_messages_relayed_total[]"] >= 1
        assert samples["peerchat_peers[('kind', 'plain')]"] >= 1  # (the other: unknown)
        writer.close()
        other.close()

    asyncio.run(asyncio.wait_for(scenario(), WAIT))
    ps = stack.run("ps", "--quiet", "server")
    assert inspect(ps.stdout.strip(), "{{.State.Health.Status}}") == "healthy"


def test_json_logs_from_the_stack_answer_the_readmes_jq_question() -> None:
    """PEERCHAT_LOG_FORMAT=json (as in .env): every line `docker compose logs` gives is
    a JSON object, and the host peer's line is there with its peer, nick and room."""

    async def scenario(port: int) -> None:
        reader, writer, _ = await connect(port)
        writer.write(b"/nick logan\n")
        await writer.drain()
        await read_until(reader, "logan")
        _, other, _ = await connect(port)
        writer.write(b"structured hello\n")
        await writer.drain()
        writer.close()
        other.close()

    with running_stack(PEERCHAT_LOG_FORMAT="json") as stack:
        asyncio.run(asyncio.wait_for(scenario(stack.port), WAIT))
        follow = subprocess.Popen(
            stack.compose("logs", "--follow", "--no-log-prefix", "server"), cwd=ROOT,
            env=stack.env, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert follow.stdout is not None
        received: list[dict[str, object]] = []
        try:
            for _ in range(200):  # every line, until the host peer's
                out = follow.stdout.readline()
                assert out, "the log ended before the received event"
                line = json.loads(out)
                assert isinstance(line, dict), line
                assert line["time"], line
                assert line["level"], line
                if line["event"] == "received":
                    received.append(line)
                    break
        finally:
            follow.kill()
            follow.wait()
        assert received, "no received event in the server's JSON log"
        line = received[0]
        assert (line["nick"], line["room"], line["text"]) == ("logan", "lobby", "structured hello")
        assert str(line["peer"]).startswith(("172.", "192.168.", "10."))  # via Docker's gateway
