"""One hashed lock: uv.lock, and requirements/*.txt exported from it, are what the dev
venv, `make wheels` and both Dockerfiles install; a dependency changed in a pyproject.toml
without `make lock` fails here (the images' side is checked in tests/integration)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
EXPORTS = {
    "server.txt": ["--no-dev", "--package", "peerchat-server", "--extra", "redis"],
    "client.txt": ["--no-dev", "--package", "peerchat-client"],
    "dev.txt": ["--all-packages", "--all-extras", "--group", "dev"],
}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)(?: ; ([^\\]+?))? \\$", re.MULTILINE)


def pins(path: Path) -> dict[str, str]:
    """The exported pins whose markers hold for this Python, as {normalized name: version}."""
    found: dict[str, str] = {}
    for name, version, marker in PIN.findall(path.read_text()):
        if not marker or Marker(marker).evaluate():
            found[name.lower().replace("_", "-")] = version
    return found


def test_the_lock_matches_every_pyproject() -> None:
    result = subprocess.run(
        [str(UV), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"uv.lock is stale: run `make lock` and commit uv.lock and requirements/.\n{result.stderr}"
    )


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_each_export_is_what_the_lock_says(export: str, tmp_path: Path) -> None:
    out = tmp_path / export
    command = [str(UV), "export", "--quiet", "--frozen", "--no-emit-workspace", *EXPORTS[export]]
    subprocess.run([*command, "-o", str(out)], cwd=ROOT, check=True, timeout=60)
    body = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    committed = (ROOT / "requirements" / export).read_text().splitlines()
    assert body == [line for line in committed if not line.startswith("#")], (
        f"requirements/{export} differs from uv.lock: run `make lock`."
    )


def test_the_dev_venv_runs_exactly_the_locked_versions() -> None:
    installed = {
        dist.metadata["Name"].lower().replace("_", "-"): dist.version for dist in distributions()
    }
    locked = pins(ROOT / "requirements" / "dev.txt")
    assert locked, "no pins read from requirements/dev.txt"
    wrong = {name: (version, installed.get(name)) for name, version in locked.items()
             if installed.get(name) != version}  # fmt: skip
    assert not wrong, f"(locked, installed) differ: {wrong}; run `make dev` again"


def test_every_locked_package_is_hash_pinned() -> None:
    for export in EXPORTS:
        text = (ROOT / "requirements" / export).read_text()
        for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2]):
            assert "==" in block.split("\n")[0], block
            assert "--hash=sha256:" in block, f"{export}: no hash for {block.split()[0]}"
