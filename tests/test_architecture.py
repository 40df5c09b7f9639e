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


# --- one writer of state ------------------------------------------------------------------------

SERVER = [name for name in MODULES if name.startswith("chatroom.server.")]
CORE_SERVER = [name for name in SERVER if name.startswith("chatroom.server.core")]
# The modules that hold the room's state objects: only their own methods change them.
STATE_MODULES = {
    "chatroom.server.core.state",
    "chatroom.server.core.member",
    "chatroom.server.core.channel",
    "chatroom.server.core.ignores",
    "chatroom.server.core.moderation_state",
    "chatroom.server.core.admission",
    "chatroom.server.core.sequencer",
    "chatroom.server.core.accounts_state",
    "chatroom.server.core.history",
    "chatroom.server.core.requests",
}
MUTATORS = {
    "add", "append", "appendleft", "clear", "discard", "extend", "extendleft", "insert",
    "pop", "popitem", "popleft", "remove", "setdefault", "update",
}  # fmt: skip


def _own(node: ast.AST) -> bool:
    """Whether ``node`` is ``self.X``: an object's own attribute."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _writes_elsewhere(tree: ast.AST) -> list[str]:
    """Where a module changes state that is not its objects' own: an attribute of another
    object assigned or deleted (``member.name = ...``, ``self.a.b = ...``), an item of
    another object's container set (``self.moderation.bans[k] = ...``), or another
    object's container changed in place (``member.ignoring.add(...)``)."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            for sub in ast.walk(target):
                stored = isinstance(getattr(sub, "ctx", None), ast.Store | ast.Del)
                if stored and isinstance(sub, ast.Attribute) and not _own(sub):
                    found.append(f"line {sub.lineno}: {ast.unparse(sub)} assigned")
                if (
                    stored
                    and isinstance(sub, ast.Subscript)
                    and isinstance(sub.value, ast.Attribute)
                    and not _own(sub.value)
                ):
                    found.append(f"line {sub.lineno}: {ast.unparse(sub)} assigned")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and isinstance(node.func.value, ast.Attribute)
            and not _own(node.func.value)
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}() changes it")
        if isinstance(node, ast.Call) and ast.unparse(node.func) in (
            "setattr",
            "object.__setattr__",
            "msgspec.structs.force_setattr",
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}()")
    return found


@pytest.mark.parametrize("module", sorted(set(CORE_SERVER) - STATE_MODULES))
def test_only_the_state_objects_change_their_state(module: str) -> None:
    """In the core, nothing but the state modules' own methods changes an object's fields
    (the rules call those methods); the adapter and the cluster reach no state at all
    (the test below)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    assert not _writes_elsewhere(tree), f"{module} writes state that is not its own"


def test_the_single_writer_check_catches_what_it_forbids() -> None:
    """The check itself can fail: each of these is a write it must report."""
    for source in (
        "member.name = 'x'",
        "self.moderation.topic = None",
        "self.moderation.bans[key] = ban",
        "del self.state.users[uid]",
        "member.ignoring.add(uid)",
        "self.moderation.mutes.pop(uid, None)",
        "member.failures += 1",
    ):
        assert _writes_elsewhere(ast.parse(source)), source
    for source in ("self._waiting[conn] = []", "self.seen = 1", "actions.append(x)"):
        assert not _writes_elsewhere(ast.parse(source)), source


@pytest.mark.parametrize(
    "module",
    [m for m in SERVER if m.startswith(("chatroom.server.adapter", "chatroom.server.cluster"))],
)
def test_the_adapter_and_the_cluster_do_not_reach_into_the_room(module: str) -> None:
    """They hand the room inputs and read its answers; its state objects are its own."""
    source = MODULES[module].read_text(encoding="utf-8")
    for inner in ("room.ctx", "room.state", "room.moderation", "room.admission"):
        assert inner not in source, f"{module} reaches into the room: {inner}"


# --- the vocabularies ---------------------------------------------------------------------------

VOCABULARIES = [
    "chatroom.protocol.events",
    "chatroom.protocol.commands",
    "chatroom.server.core.actions",
    "chatroom.server.core.inputs",
]


@pytest.mark.parametrize("module", VOCABULARIES)
def test_the_vocabularies_import_no_rule(module: str) -> None:
    rules = [d for d in GRAPH[module] if d.startswith("chatroom.server.core.rules")]
    rules += [d for d in GRAPH[module] if d == "chatroom.server.core.room"]
    assert not rules, f"{module} imports {rules}"


def test_the_room_has_no_mixins() -> None:
    """Room is one class with no base but object: its rules are plain functions."""
    tree = ast.parse(MODULES["chatroom.server.core.room"].read_text(encoding="utf-8"))
    room = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Room")
    assert room.bases == []


# --- size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_classes_stay_small(module: str) -> None:
    """No module over 400 lines, no class over 300: one job each."""
    source = MODULES[module].read_text(encoding="utf-8")
    assert source.count("\n") <= 400, f"{module}: {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= 300, f"{module}: class {node.name} is {size} lines"


def test_every_command_has_a_rule() -> None:
    """Each command a line can become is answered by one rule (the room's table is the
    rule modules' tables merged; none may be left out or claimed twice)."""
    from chatroom.protocol import commands as c
    from chatroom.server.core import room

    assert set(room.COMMANDS) == set(c.Command.__args__)
    tables = [m.COMMANDS for m in vars(room).values() if hasattr(m, "COMMANDS") and m is not room]
    assert sum(len(table) for table in tables) == len(room.COMMANDS)
