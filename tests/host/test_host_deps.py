"""docker/host-deps.sh: what `make up` / `make test` install on a fresh machine, and the
exact command they print where they cannot install (not root, no apt-get, or asked not to).

The host is faked with a PATH of our own: only the tools named here are found, and `id`
can say the user is not root. Nothing is installed by these tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "host-deps.sh"
# What the script itself runs, found on the real PATH.
TOOLS = ("bash", "env", "sed", "dirname", "python3", "apt-cache", "docker")


def fake_host(tmp_path: Path, *, uid: int, apt: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """A bin directory with the script's tools (and ``extra`` ones) and an `id` for ``uid``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (*TOOLS, *extra, *(("apt-get",) if apt else ())):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run this test"
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    return bin_dir


def run(bin_dir: Path, *needs: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": str(bin_dir),
        "HOME": str(bin_dir.parent),
        "PEERCHAT_CHROMIUM": "/nonexistent/chromium",
        **env,
    }
    return subprocess.run(
        [shutil.which("bash") or "bash", str(SCRIPT), *needs], env=environ,
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_not_root_without_sudo_gets_the_exact_command(tmp_path: Path) -> None:
    result = run(fake_host(tmp_path, uid=1000), "redis", "chromium", "irssi")
    assert result.returncode == 1
    assert (
        "  sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        "redis-server chromium fonts-dejavu-core irssi tmux\n"
    ) in result.stderr
    # One line each saying what and why.
    assert "redis-server: the replica tests start a real Redis on loopback" in result.stderr
    assert "irssi, tmux: the IRC test drives a real IRC client" in result.stderr


def test_root_asked_not_to_install_gets_the_command_without_sudo(tmp_path: Path) -> None:
    result = run(fake_host(tmp_path, uid=0), "test", PEERCHAT_NO_INSTALL="1")
    assert result.returncode == 1
    assert "  apt-get update && apt-get install -y --no-install-recommends " in result.stderr
    assert "sudo" not in result.stderr


def test_no_apt_get_names_what_is_missing(tmp_path: Path) -> None:
    result = run(fake_host(tmp_path, uid=1000, apt=False), "redis")
    assert result.returncode == 1
    assert "no apt-get" in result.stderr
    assert "redis-server: the replica tests" in result.stderr
    assert "apt-get install" not in result.stderr


def test_a_missing_compose_plugin_gets_the_install_command(tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    docker = shutil.which("docker")
    assert docker
    probe = subprocess.run(
        [docker, "compose", "version"], env={**os.environ, "DOCKER_CONFIG": str(config)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if probe.returncode == 0:
        # A system-wide plugin cannot be hidden here; test_bootstrap (containers) hides it.
        result = run(fake_host(tmp_path, uid=0), "compose", DOCKER_CONFIG=str(config))
        assert result.returncode == 0, result.stderr
        return
    result = run(
        fake_host(tmp_path, uid=0), "compose", DOCKER_CONFIG=str(config), PEERCHAT_NO_INSTALL="1"
    )
    assert result.returncode == 1
    assert f"install-compose-v2.sh --plugin-dir {config}/cli-plugins" in result.stderr


def test_nothing_missing_is_silent(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    result = run(fake_host(tmp_path, uid=1000, extra=("redis-server",)), "redis")
    assert (result.returncode, result.stderr) == (0, "")


def test_unknown_needs_are_a_usage_error(tmp_path: Path) -> None:
    result = run(fake_host(tmp_path, uid=0), "postgres")
    assert result.returncode == 2
    assert "unknown need: postgres" in result.stderr
