"""The layout docs/architecture.md promises: imports go one way in every package, the
server's layers import only downwards, the relay never asks what kind a peer is, and no
module grows past about 400 lines.

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


#: The server's layers, lowest first, as drawn in docs/architecture.md: a module imports
#: only from layers below its own. A new module must be placed here.
SERVER_LAYERS: list[set[str]] = [
    {
        "__init__",
        "config",
        "console",
        "tokens",
        "names",
        "replicas",
        "health",
        "notes",
        "buslinks",
        "frames",
        "stats",
        "store",
        "acks",
    },
    {"wsframes", "ircwire", "bus", "sqlschema", "sqlbatch"},
    {"ircform", "sqlstore"},
    {"irccodec"},
    {"flood", "sockets", "resume", "options", "page"},
    {"addresses", "room"},
    {"rooms"},
    {"peer"},
    {"registry", "outbox", "replication"},
    {"relay"},
    {"following", "ownlines"},
    {"roomlines"},
    {"admission", "output", "redis_replication", "metrics", "persistence"},
    {"commands"},
    {"reading", "irccommands"},
    {"session"},
    {"websocket", "irc"},
    {"server"},
    {"cli"},
    {"__main__"},
]

#: The relay and its parts, and the commands: they know a peer only through peer.Peer
#: and peer.ChatPeer, so that every kind of peer shares them.
CORE = (
    "relay", "registry", "room", "rooms", "outbox", "replication", "redis_replication",
    "roomlines", "ownlines", "commands", "admission",
)  # fmt: skip
#: Names that would mean the core asks what kind of peer it serves.
KIND_NAMES = {"PeerKind", "Connection", "Session", "form_of", "encode_json", "encode_plain"}

#: Longest module, in lines (about 400); the protocol's event declarations excepted.
MAX_MODULE_LINES = 410
LONGER_ALLOWED = {"protocol/src/peerchat_protocol/events.py"}


def downward_violations(graph: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Imports that do not go to a lower layer, and modules in no layer."""
    rank = {module: n for n, layer in enumerate(layers) for module in layer}
    found = [f"{m} is in no layer of SERVER_LAYERS" for m in sorted(graph) if m not in rank]
    for module, imported in sorted(graph.items()):
        for other in sorted(imported):
            if module in rank and other in rank and rank[other] >= rank[module]:
                found.append(f"{module} imports {other}, which is not below it")
    return found


def test_server_modules_import_only_from_layers_below() -> None:
    graph = imports_of("peerchat_server", PACKAGES["peerchat_server"])
    assert downward_violations(graph, SERVER_LAYERS) == []


def test_a_layer_violation_is_found_when_there_is_one() -> None:
    layers = [{"rooms"}, {"relay"}, {"session"}]
    graph = {"rooms": {"session"}, "relay": {"rooms"}, "session": {"relay"}, "new": set()}
    assert downward_violations(graph, layers) == [
        "new is in no layer of SERVER_LAYERS",
        "rooms imports session, which is not below it",
    ]


def kind_names_in(path: Path) -> set[str]:
    """The names of :data:`KIND_NAMES` that ``path`` imports or uses."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
    return used & KIND_NAMES


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_asks_what_kind_a_peer_is(module: str) -> None:
    path = PACKAGES["peerchat_server"] / f"{module}.py"
    assert kind_names_in(path) == set(), f"{module} should see peers only through peer.py"


def test_kind_names_are_found_when_used(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from x import PeerKind\nif p.conn.kind is PeerKind.RICH: form_of(c)\n")
    assert kind_names_in(sample) == {"PeerKind", "form_of"}


def test_no_module_is_over_about_400_lines() -> None:
    too_long = []
    for folder in PACKAGES.values():
        for path in sorted(folder.glob("*.py")):
            name = str(path.relative_to(ROOT))
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_MODULE_LINES and name not in LONGER_ALLOWED:
                too_long.append(f"{name}: {lines} lines")
    assert too_long == []


def test_the_long_protocol_module_is_only_declarations() -> None:
    # events.py may be long only because it declares the events: no function in it
    # (methods of the event classes aside) may grow past a few lines.
    for name in LONGER_ALLOWED:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                assert (node.end_lineno or 0) - node.lineno < 40, f"{name}: {node.name}"
