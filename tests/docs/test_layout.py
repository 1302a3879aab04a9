"""The layout the code promises (issue 15): imports go one way in every package.

An import cycle, even one under ``TYPE_CHECKING``, means two modules cannot be read (or
changed) one without the other. This walks every ``from . import`` and ``from
package.module import`` in the three packages and fails on any cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "peerchat_protocol": ROOT / "protocol/src/peerchat_protocol",
    "peerchat_server": ROOT / "server/src/peerchat_server",
    "peerchat_client": ROOT / "client/src/peerchat_client",
}


def imports_of(package: str, folder: Path) -> dict[str, set[str]]:
    """Each module of ``package`` and the modules of the same package it imports."""
    modules = {path.stem for path in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith(f"{package}."):
                found.add(node.module.split(".")[1])
        graph[path.stem] = (found & modules) - {path.stem, "__init__"}
    return graph


def a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, as the modules on it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_go_one_way(package: str) -> None:
    cycle = a_cycle(imports_of(package, PACKAGES[package]))
    assert cycle is None, f"{package} has an import cycle: {' -> '.join(cycle or [])}"


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert a_cycle({"relay": {"session"}, "session": {"relay"}}) == ["relay", "session", "relay"]
    assert a_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
