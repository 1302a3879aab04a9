"""testcontainers-python 4.x smoke test for a registry-less machine.

Checks, against the local base image (docker/ensure-base.sh):
  1. a container running  python3 -c "print('ready'); import time; time.sleep(30)"
     is waited for with the structured wait API (LogMessageWaitStrategy), then stopped;
  2. DockerImage builds an image from a Dockerfile + context dir with a build arg;
  3. two containers on a testcontainers Network reach each other by network alias.

Run:  python3 docker/smoke/tc_smoke.py [BASE_IMAGE]
Needs: pip install 'testcontainers>=4.13,<5'   (tested with 4.15.0, docker 7.1.0)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Ryuk (the reaper) is the image testcontainers/ryuk, which cannot be pulled here.
# Must be set before the first container starts (the config value is cached on
# first read); `testcontainers_config.ryuk_disabled = True` does the same in code.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.config import testcontainers_config  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.image import DockerImage  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402
from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: E402

HERE = Path(__file__).resolve().parent


def base_image() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    out = subprocess.run([str(HERE.parent / "ensure-base.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def check_wait_for_log(image: str) -> None:
    # PYTHONUNBUFFERED: without a TTY python block-buffers stdout, so 'ready'
    # would only reach the logs when the process exits (30 s later).
    container = (
        DockerContainer(image)
        .with_command(["python3", "-c", "print('ready'); import time; time.sleep(30)"])
        .with_env("PYTHONUNBUFFERED", "1")
        .waiting_for(LogMessageWaitStrategy("ready").with_startup_timeout(20).with_poll_interval(0.2))
    )
    t0 = time.monotonic()
    with container:  # start() runs the wait strategy; __exit__ -> stop() (force-remove)
        waited = time.monotonic() - t0
        stdout, _ = container.get_logs()
        assert b"ready" in stdout, stdout
        cid = container.get_wrapped_container().short_id
        print(f"PASS wait-for-log: container {cid} ready after {waited:.2f}s")


def check_image_build(image: str) -> None:
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile.tc").write_text(
            "ARG BASE_IMAGE=python:3.12-slim\n"
            "FROM ${BASE_IMAGE}\n"
            "COPY hello.txt /hello.txt\n"
            'CMD ["python3", "-c", "print(open(\'/hello.txt\').read().strip(), flush=True)"]\n'
        )
        Path(ctx, "hello.txt").write_text("built-by-testcontainers\n")
        # Extra kwargs go to docker-py images.build(): buildargs, network_mode, ...
        # Builds through the Engine API with the classic builder (no BuildKit).
        with DockerImage(
            path=ctx,
            dockerfile_path="Dockerfile.tc",
            tag="peerchat-tc-smoke:latest",
            buildargs={"BASE_IMAGE": image},
        ) as built:  # __exit__ removes the image (clean_up=True)
            with DockerContainer(str(built)).waiting_for(
                LogMessageWaitStrategy("built-by-testcontainers").with_startup_timeout(20)
            ) as c:
                print(f"PASS DockerImage: built {built} ({built.short_id}), container said {c.get_logs()[0]!r}")


def check_network_aliases(image: str) -> None:
    server_code = (
        "import socket\n"
        "s = socket.create_server(('0.0.0.0', 7000))\n"
        "print('listening', flush=True)\n"
        "while True:\n"
        "    c, _ = s.accept(); c.sendall(b'hello from relay\\n'); c.close()\n"
    )
    client_code = (
        "import socket\n"
        "with socket.create_connection(('relay', 7000), timeout=5) as c:\n"
        "    print('client got:', c.recv(100).decode().strip(), flush=True)\n"
        "import time; time.sleep(30)\n"
    )
    with Network() as net:  # random (uuid) name; removed on exit
        server = (
            DockerContainer(image)
            .with_command(["python3", "-c", server_code])
            .with_network(net)
            .with_network_aliases("relay", "relay-1")
            .waiting_for(LogMessageWaitStrategy("listening").with_startup_timeout(20))
        )
        with server:
            client = (
                DockerContainer(image)
                .with_command(["python3", "-c", client_code])
                .with_network(net)
                .waiting_for(LogMessageWaitStrategy("client got: hello from relay").with_startup_timeout(20))
            )
            with client:
                ip = server.get_docker_client().bridge_ip(server.get_wrapped_container().id)
                print(f"PASS network: alias 'relay' reached on network {net.name} (server ip {ip})")


def main() -> int:
    image = base_image()
    print(f"base image: {image}; ryuk disabled: {testcontainers_config.ryuk_disabled}")
    check_wait_for_log(image)
    check_image_build(image)
    check_network_aliases(image)
    print("3 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
