"""The images ship exactly what the tests ran: every third-party package in each image is
the version requirements/{server,client}.txt (exported from uv.lock) pins, and nothing
else; the dev venv is held to the same lock in tests/host/test_lock.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from packaging.markers import Marker

from .containers import CLIENT_IMAGE, SERVER_IMAGE

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)(?: ; ([^\\]+?))? \\$", re.MULTILINE)
OURS = {"peerchat-protocol", "peerchat-server", "peerchat-client"}


def in_image(image: str, code: str) -> str:
    result = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/opt/peerchat/bin/python", image, "-c", code],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize(("image", "export"), [(SERVER_IMAGE, "server"), (CLIENT_IMAGE, "client")])
def test_each_image_holds_exactly_the_locked_versions(image: str, export: str) -> None:
    listing = in_image(
        image,
        "import importlib.metadata as m, platform\n"
        "print(platform.python_version())\n"
        "for d in m.distributions(): print(d.metadata['Name'], d.version)",
    ).split("\n")
    python, installed = listing[0], dict(line.split(" ") for line in listing[1:] if line)
    environment = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    text = (ROOT / "requirements" / f"{export}.txt").read_text()
    locked = {
        normal(name): version
        for name, version, marker in PIN.findall(text)
        if not marker or Marker(marker).evaluate(environment)
    }
    shipped = {normal(name): version for name, version in installed.items()}
    shipped = {n: v for n, v in shipped.items() if n not in OURS | {"pip", "setuptools"}}
    assert shipped == locked, f"image {image} (Python {python}) vs requirements/{export}.txt"


def test_the_server_image_keeps_its_store_where_only_its_user_reads() -> None:
    """SECURITY.md: the image keeps the store in /data, mode 700, the server's user's."""
    shown = in_image(
        SERVER_IMAGE,
        "import os, stat\n"
        "s = os.stat('/data')\n"
        "print(oct(stat.S_IMODE(s.st_mode)), s.st_uid, os.getuid(), os.environ['PEERCHAT_STORE'])",
    ).split()
    assert shown == ["0o700", "10001", "10001", "sqlite:////data/peerchat.db"]
