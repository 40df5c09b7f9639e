"""The invariants docs/ARCHITECTURE.md promises, checked on the source: no import cycles,
no I/O in the core, the client independent of the server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "chatroom"

IO_MODULES = {"asyncio", "socket", "selectors", "subprocess", "ssl", "threading", "redis"}
CLOCKS = ("time.time(", "time.monotonic(", "time.perf_counter(", "datetime.now(")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, at_load: bool = False) -> set[str]:
    """Every module ``path`` imports — in functions and under TYPE_CHECKING too, since a
    cycle through them is still two modules that need each other — or, ``at_load``, only
    those its own top level imports when it is loaded."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if at_load and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if at_load and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                found.add(sub.module)
                found.update(f"{sub.module}.{alias.name}" for alias in sub.names)
    return found


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
# The I/O-free core, derived from the folders so that a new module cannot be missed: the
# shared protocol package, the server's core/ folder, and the config both sides of the
# server read.
CORE = sorted(
    name
    for name in MODULES
    if name.startswith(("chatroom.protocol", "chatroom.server.core"))
    or name == "chatroom.server.config"
)
GRAPH = {
    name: {dep for dep in _imports(path) if dep in MODULES and dep != name}
    for name, path in MODULES.items()
}


def test_no_import_cycles() -> None:
    def visit(name: str, trail: list[str]) -> None:
        assert name not in trail, "import cycle: " + " -> ".join([*trail, name])
        for dep in GRAPH[name]:
            if dep not in done:
                visit(dep, [*trail, name])
        done.add(name)

    done: set[str] = set()
    for name in sorted(GRAPH):
        visit(name, [])


@pytest.mark.parametrize("module", CORE)
def test_the_core_does_no_io(module: str) -> None:
    imported = {name.split(".")[0] for name in _imports(MODULES[module], at_load=True)}
    assert not imported & IO_MODULES, f"{module} imports {imported & IO_MODULES}"
    source = MODULES[module].read_text(encoding="utf-8")
    assert not [clock for clock in CLOCKS if clock in source], f"{module} reads the clock"


def test_the_client_does_not_import_the_server() -> None:
    for name, deps in GRAPH.items():
        if name.startswith("chatroom.client"):
            assert not [d for d in deps if d.startswith("chatroom.server")], name
