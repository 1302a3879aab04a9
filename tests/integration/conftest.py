"""Container tests need a Docker engine and the images `make build` makes: without
them every test here fails loudly (never skips), so `make test` cannot pass green."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .containers import CLIENT_IMAGE, LABELS, SERVER_IMAGE, Peer, new_network
from .stack import Stack, running_stack


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(
            f"No Docker engine reachable ({exc}). The integration tests need one: start "
            "Docker (or set DOCKER_HOST) and run `make test` again.",
            pytrace=False,
        )
    for image in (SERVER_IMAGE, CLIENT_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"Image {image} not found: run `make build` first.", pytrace=False)
    yield client
    # Whatever a failed test left behind, by label (the reaper is off: no registry).
    label = "peerchat.test={}".format(LABELS["peerchat.test"])
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        network.remove()
    client.close()


@pytest.fixture
def cleanup() -> Iterator[list[DockerContainer | Peer]]:
    """Containers a test started, stopped afterwards whatever happened (paused ones are
    unpaused first); the session's end removes anything left by label."""
    things: list[DockerContainer | Peer] = []
    yield things
    for thing in reversed(things):
        try:
            container = thing.container if isinstance(thing, Peer) else thing
            wrapped = container.get_wrapped_container()
            if wrapped is not None:
                wrapped.reload()
                if wrapped.status == "paused":
                    wrapped.unpause()
            container.stop()
        except Exception as exc:  # cleanup goes on
            print(f"cleanup: {exc}")


@pytest.fixture
def network() -> Iterator[Network]:
    """A private Docker network for one test, removed afterwards."""
    with new_network() as net:
        yield net


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """`docker compose up server` from docker-compose.yml, for one test module."""
    with running_stack() as running:
        yield running
