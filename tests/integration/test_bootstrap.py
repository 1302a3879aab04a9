"""`make up` on a machine without the Compose v2 plugin installs it and brings the demo up.

The missing plugin is real, not mocked: the command runs in its own mount namespace where
every system CLI-plugin directory is an empty tmpfs and DOCKER_CONFIG is a fresh folder,
so `docker compose` does not exist there until docker/host-deps.sh installs it (into that
folder; nothing on the host changes). On CI's fresh machine `make test` itself takes the
same path for real, and for redis-server, chromium, irssi and tmux too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from .stack import ROOT, WAIT, Stack
from .test_compose import connect, read_until

# Where the docker CLI looks for plugins besides $DOCKER_CONFIG/cli-plugins.
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def without_compose(*command: str) -> list[str]:
    """``command`` where the docker CLI finds no plugin but in $DOCKER_CONFIG."""
    hide = [f"mount -t tmpfs -o size=1m tmpfs {d}" for d in SYSTEM_PLUGIN_DIRS if Path(d).is_dir()]
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    script = " && ".join([*hide, 'exec "$@"'])
    return ["unshare", *user, "--mount", "--propagation", "private", "bash", "-c", script, "-",
            *command]  # fmt: skip


def compose_found(env: dict[str, str]) -> str:
    """What `docker compose version` says there ("" when it is missing)."""
    probe = subprocess.run(
        without_compose("docker", "compose", "version"), env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    return probe.stdout if probe.returncode == 0 else ""


async def test_make_up_installs_compose_then_a_client_chats(tmp_path: Path) -> None:
    stack = Stack()
    stack.env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    assert not compose_found(stack.env), "the Compose plugin could not be hidden"

    # `make up` as a user types it; its build step is left out (-o build) because the
    # images `make test` built are current, and a build under this test's project name
    # would relabel them.
    make = await asyncio.create_subprocess_exec(
        *without_compose("make", "-o", "build", "up", f"COMPOSE=docker compose -p {stack.project}"),
        cwd=ROOT, env=stack.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert make.stdout is not None
    output: list[str] = []
    try:
        for _ in range(500):
            line = (await asyncio.wait_for(make.stdout.readline(), 120)).decode()
            assert line, "make up ended:\n" + "".join(output)
            output.append(line)
            if "Server started on" in line:
                break
        said = "".join(output)
        assert "host-deps: installing Docker Compose v2" in said, said
        assert "Server started on" in said, said

        # The client, through the Compose plugin make up installed ($DOCKER_CONFIG).
        reader, writer, _ = await connect(stack.port)
        client = await asyncio.create_subprocess_exec(
            *stack.compose("run", "--rm", "-T", "client", "--nick", "fresh", "--linger", "30"),
            cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert client.stdin is not None
        try:
            await read_until(reader, "*** fresh joined")
            client.stdin.write(b"two commands were enough\n")
            await client.stdin.drain()
            assert await read_until(reader, "<fresh>") == "<fresh> two commands were enough"
            client.stdin.write(b"/quit\n")
            client.stdin.close()
            assert await asyncio.wait_for(client.wait(), WAIT) == 0
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
            writer.close()
    finally:
        if make.returncode is None:
            os.killpg(make.pid, signal.SIGINT)  # Ctrl-C, as a user stops `make up`
            try:
                await asyncio.wait_for(make.wait(), WAIT)
            except TimeoutError:
                os.killpg(make.pid, signal.SIGKILL)
                await make.wait()
        down = stack.run("--profile", "client", "down", "--remove-orphans", "--volumes")
        assert down.returncode == 0, down.stdout + down.stderr
