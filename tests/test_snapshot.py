"""The room's snapshot for an upgrade (core/snapshot.py): everything comes back, and a
state whose shape or format differs from this version's is refused, never guessed."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from chatroom import protocol as p
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core import snapshot as s
from chatroom.server.core import state as state_module
from chatroom.server.core.room import Room


def _room(epoch: str = "e1") -> Room:
    return Room(RoomRules.from_config(ServerConfig()), epoch=epoch)


def _busy_room() -> Room:
    room = _room()
    room.connect(1, "127.0.0.1", 5000, 100.0)
    room.connect(2, "127.0.0.1", 5001, 100.0)
    room.receive(2, "/nick bob", 101.0)
    room.receive(1, "/format json", 101.0)
    room.receive(1, "hello", 102.0)
    return room


def test_a_snapshot_brings_back_members_names_formats_history_seq_and_epoch():
    room = _busy_room()
    data = s.snapshot(room, {"adapter": [1, 2]})
    fresh = _room(epoch="another")
    assert s.restore(data, fresh) == {"adapter": [1, 2]}
    assert (fresh.seq, fresh.epoch, len(fresh)) == (room.seq, "e1", 2)
    assert fresh.who(103.0) == room.who(103.0)
    # The rules go on from there: bob's line is the next seq, in each member's format.
    actions = fresh.receive(2, "again", 104.0)
    payloads = {a.fmt: a.payload for a in actions if hasattr(a, "fmt")}
    assert payloads[p.OutputFormat.TEXT] == b"<bob> again\n"
    assert b'"seq":%d' % (room.seq + 1) in payloads[p.OutputFormat.JSON]
    # A newcomer is shown the history the old room kept.
    greeting = b"".join(getattr(a, "payload", b"") for a in fresh.connect(3, "::1", 1, 103.0))
    assert b"> hello" in greeting


def test_a_state_class_with_a_field_added_is_refused(monkeypatch):
    """The new version's User has one more field: its fingerprint differs: refused."""
    data = s.snapshot(_busy_room())

    @dataclasses.dataclass(slots=True)
    class User(state_module.User):  # type: ignore[misc]
        pronouns: str = ""

    User.__module__, User.__qualname__ = state_module.__name__, "User"
    monkeypatch.setattr(state_module, "User", User)
    s.fingerprint.cache_clear()
    try:
        with pytest.raises(s.SnapshotRefused, match="shape differs"):
            s.restore(data, _room())
    finally:
        s.fingerprint.cache_clear()


def test_another_format_is_refused(monkeypatch):
    data = s.snapshot(_busy_room())
    monkeypatch.setattr(s, "FORMAT", s.FORMAT + 1)
    with pytest.raises(s.SnapshotRefused, match="format"):
        s.restore(data, _room())


def test_only_chatroom_and_container_classes_are_unpickled():
    """Bytes that would run code (a pickle naming os.system) are refused, not run."""
    room = _room()
    data = bytearray(s.snapshot(room))
    size = int.from_bytes(data[:4], "big")
    evil = pickle.dumps(({"x": __import__("os").getcwd}, None))
    with pytest.raises(s.SnapshotRefused, match="not a state class"):
        s.restore(bytes(data[: 4 + size]) + evil, _room())


def test_a_method_kept_as_an_attribute_comes_back_bound_to_its_own_object():
    """A state object may keep a bound method (the rooms' ``get`` is their dict's own): it
    is pickled as getattr(obj, name), looked up again on the object restored with it."""

    room = _busy_room()
    fresh = _room()
    s.restore(s.snapshot(room), fresh)
    actions = fresh.receive(2, "still bound", 104.0)
    assert any(b"still bound" in getattr(a, "payload", b"") for a in actions)


@pytest.mark.parametrize("name", ["__class__", "_private", "__reduce_ex__"])
def test_getattr_in_a_snapshot_reaches_no_private_name(name):
    class Evil:
        def __reduce__(self):
            return (getattr, ({}, name))

    room = _room()
    data = bytearray(s.snapshot(room))
    size = int.from_bytes(data[:4], "big")
    body = pickle.dumps(({"x": Evil()}, None))
    with pytest.raises(s.SnapshotRefused, match="not a state method"):
        s.restore(bytes(data[: 4 + size]) + body, _room())
