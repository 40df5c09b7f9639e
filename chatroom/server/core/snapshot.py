"""The room's state as bytes, for a new server process that takes over (an upgrade). No I/O.

:func:`snapshot` captures the state objects a :class:`~chatroom.server.core.room.Room`'s
Context holds (its RoomState, Moderation, Admission, Accounts, sequencer, Requests...) as
they are, generically: every field of the Context that is neither a callable (the Context's
callbacks belong to the room that made them, and are made again), nor the rules (the new
process reads them from its own flags), nor a source of randomness. :func:`restore` hands
them to a freshly made room (:meth:`Room.carried_over`). Nothing here names a field of a
state object, so the core can be reshaped without touching this module.

The bytes are a pickle, stamped with a header: :data:`FORMAT`, kept by hand (raise it for a
change the fingerprint cannot see: a field whose meaning changed), and a fingerprint of the
shape of every class in every module the pickle touched (dataclass fields, msgspec fields,
``__slots__``, the attribute names ``__init__`` assigns, an enum's members). A new version
whose state shape differs in any way is refused (:class:`SnapshotRefused`), never guessed:
the old process then keeps serving.

Why pickle is acceptable here: the bytes never cross a trust boundary. They are written by
the old server process and read only by the new process that the old one started itself,
over a private socketpair the two share (no file, no network); a process that can write to
that socketpair can already do anything the server can. The unpickler still finds only
classes of chatroom's own modules and a short list of the standard library's containers.
"""

from __future__ import annotations

import ast
import collections
import copyreg
import dataclasses
import enum
import functools
import hashlib
import importlib
import inspect
import io
import pickle
import random
import re
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from chatroom.server.config import RoomRules

if TYPE_CHECKING:
    from chatroom.server.core.room import Room

FORMAT = 1  # raise by hand when a change keeps the shape but changes the meaning
_MAGIC = b"CHATROOM-ROOM"
# Besides chatroom's own modules, what the state objects may hold: containers and
# addresses (no builtin that runs code: no eval, getattr, __import__).
_STDLIB_MODULES = ("collections", "ipaddress", "copyreg")
_BUILTINS = {"set", "frozenset", "bytearray", "complex", "slice", "range", "object"}


class SnapshotRefused(Exception):
    """The bytes are not a state this version can take: another format or another shape."""


def parts_of(room: Room) -> dict[str, Any]:
    """The Context's state objects, by field name (what :func:`snapshot` carries)."""
    ctx = room.ctx
    return {
        f.name: getattr(ctx, f.name)
        for f in dataclasses.fields(ctx)
        if not callable(getattr(ctx, f.name))
        and not isinstance(getattr(ctx, f.name), RoomRules | random.Random)
    }


class _Pickler(pickle.Pickler):
    """The C pickler, with one reduction of its own: a deque subclass (the history) is
    rebuilt apart, as its own reduce would pass its items to ``__init__``."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.dispatch_table = copyreg.dispatch_table.copy()
        for cls in _deque_subclasses():
            self.dispatch_table[cls] = _reduce_deque


def _deque_subclasses() -> list[type]:
    found, todo = [], [collections.deque]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("chatroom."):
                found.append(sub)
            todo.append(sub)
    return found


def _reduce_deque(obj: collections.deque[Any]) -> tuple[Any, ...]:
    state = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]
    return (_deque_of, (type(obj), obj.maxlen, list(obj)), state)


def _deque_of(cls: type, maxlen: int | None, items: list[Any]) -> collections.deque[Any]:
    made = cls.__new__(cls)
    collections.deque.__init__(made, items, maxlen)
    return made


# A class is pickled by reference: its module's name is in the bytes, as a string. What
# looks like one and is a loaded module is taken (a chat line naming a module only adds a
# module to the fingerprint; one naming no loaded module adds nothing).
_MODULE_NAME = re.compile(rb"chatroom(?:\.[a-z_][a-z0-9_]*)+")


def snapshot(room: Room, extra: Any = None) -> bytes:
    """``room``'s state (and ``extra``: the adapter's own objects to carry, pickled
    alongside and checked the same way), stamped with the format header."""
    body = io.BytesIO()
    _Pickler(body).dump((parts_of(room), extra))
    data = body.getvalue()
    found = {match.decode() for match in set(_MODULE_NAME.findall(data))}
    modules = sorted(name for name in found if name in sys.modules)
    header = pickle.dumps((_MAGIC, FORMAT, modules, fingerprint(tuple(modules))))
    return len(header).to_bytes(4, "big") + header + data


def restore(data: bytes, room: Room) -> Any:
    """Hand ``room`` (just made, from the same flags) the state in ``data``; return the
    ``extra`` that came with it. Raises :class:`SnapshotRefused` (one line: why)."""
    size = int.from_bytes(data[:4], "big")
    try:
        magic, version, modules, stamp = _Restricted(io.BytesIO(data[4 : 4 + size])).load()
    except Exception as exc:  # noqa: BLE001 (whatever it is, it is not ours)
        raise SnapshotRefused(f"not a room snapshot ({exc})") from None
    if magic != _MAGIC or version != FORMAT:
        raise SnapshotRefused(f"state format {version}, this version reads {FORMAT}")
    if any(not m.startswith("chatroom.") for m in modules):
        raise SnapshotRefused("the state names modules outside chatroom")
    try:
        mine = fingerprint(tuple(modules))
    except ImportError as exc:
        raise SnapshotRefused(f"the state's module {exc.name} is gone") from None
    if mine != stamp:
        raise SnapshotRefused(
            f"the state's shape differs (fingerprint {stamp[:12]}, this version {mine[:12]})"
        )
    try:
        parts, extra = _Restricted(io.BytesIO(data[4 + size :])).load()
    except Exception as exc:  # noqa: BLE001 (a class it names, a truncated body...)
        raise SnapshotRefused(f"the state cannot be read ({exc})") from None
    room.carried_over(parts)
    return extra


def _method_of(obj: Any, name: str) -> Any:
    """A state object's bound method kept as an attribute (``Rooms.get``, its dict's own
    ``get``): pickled as ``getattr(obj, name)``; only a public name of one of our objects or
    of a container is looked up (never a dunder, never a module's or a class's)."""
    kind = type(obj)
    ours = kind.__module__.startswith("chatroom.") or kind in _CONTAINERS
    if name.startswith("_") or not ours or isinstance(obj, type):
        raise pickle.UnpicklingError(f"{kind.__name__}.{name} is not a state method")
    return getattr(obj, name)


_CONTAINERS = (dict, list, set, frozenset, tuple, collections.deque, collections.OrderedDict)


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _method_of
        if (
            module.startswith("chatroom.")
            or module in _STDLIB_MODULES
            or (module == "builtins" and name in _BUILTINS)
        ):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a state class")


@functools.cache
def fingerprint(modules: tuple[str, ...]) -> str:
    """The shape of every class defined in ``modules``, hashed."""
    lines = []
    for name in modules:
        module = importlib.import_module(name)
        for _, cls in sorted(inspect.getmembers(module, inspect.isclass)):
            if cls.__module__ == name:
                lines.append(f"{name}.{cls.__qualname__}: {','.join(shape(cls))}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def shape(cls: type) -> list[str]:
    """What a pickle of an instance of ``cls`` depends on: its fields, however declared."""
    if issubclass(cls, enum.Enum):
        return [f"{member.name}={member.value!r}" for member in cls]
    found: list[str] = []
    if dataclasses.is_dataclass(cls):
        found += [f.name for f in dataclasses.fields(cls)]
    found += list(getattr(cls, "__struct_fields__", ()))  # msgspec (pickled by position)
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        found += [slots] if isinstance(slots, str) else list(slots)
    found += sorted(_assigned_in_init(cls))
    return found


def _assigned_in_init(cls: type) -> set[str]:
    """The ``self.X`` names the class's own ``__init__`` assigns."""
    init = cls.__dict__.get("__init__")
    if init is None or not inspect.isfunction(init):
        return set()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return names
