"""The state file (--state): what the worker thread writes, and what a new start reads."""

from __future__ import annotations

import math
import sqlite3
import time

import pytest

from chatroom import protocol as p
from chatroom.server.adapter.store import SCHEMA_VERSION, StateError, StateStore
from chatroom.server.core.actions import Persist
from tests.conftest import TIMEOUT

NOW = 1_700_000_000.0


def chat(seq: int) -> p.Message:
    return p.Message(seq=seq, ts=NOW + seq, id="a:1", name="alice", text=f"line {seq}")


def rows(path, sql: str) -> list[tuple]:
    """What another connection sees of the file: only what was committed."""
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def until_seen(path, sql: str, timeout: float = 2 * TIMEOUT) -> list[tuple]:
    """The rows of ``sql`` once there are any ([] if none came within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not (found := rows(path, sql)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_a_new_file_restores_nothing(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, restored = StateStore.open(str(path), 20, now=NOW)
    store.close()
    assert restored.history == () and restored.bans == {} and restored.mutes == {}
    assert restored.topic is None
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_what_was_kept_comes_back_and_history_is_trimmed(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    store, _ = StateStore.open(path, 3, now=NOW)
    waves = p.Action(seq=8, ts=NOW, id="b:2", name="bob", text="waves")
    store.put(Persist("history", "", (chat(1), chat(2))))
    store.put(Persist("history", "", (*[chat(seq) for seq in range(1, 8)], waves)))
    ban = {"target": "10.0.0.0/8", "until": None, "name": None, "reason": "spam", "by": "op"}
    store.put(Persist("ban", "10.0.0.0/8", ban))
    store.put(Persist("ban", "192.0.2.1/32", {**ban, "target": "192.0.2.1/32"}))
    store.put(Persist("ban", "192.0.2.1/32", None))  # unbanned
    store.put(Persist("mute", "carol", {"name": "Carol", "until": NOW + 60}))
    store.put(Persist("topic", "topic", {"text": "be kind", "by": "op"}))
    store.close()
    assert rows(path, "SELECT count(*) FROM history") == [(3,)]
    store, restored = StateStore.open(path, 3, now=NOW)
    store.close()
    assert [e.seq for e in restored.history] == [6, 7, 8]
    assert isinstance(restored.history[-1], p.Action)
    assert restored.history[0] == chat(6)
    assert restored.bans == {"10.0.0.0/8": ban}
    assert restored.mutes == {"carol": {"name": "Carol", "until": NOW + 60}}
    assert restored.topic == {"text": "be kind", "by": "op"}


def test_expired_bans_and_mutes_are_forgotten_at_start(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    store, _ = StateStore.open(path, 20, now=NOW)
    old = {"target": "10.0.0.1/32", "until": NOW - 1, "name": None, "reason": None, "by": "op"}
    store.put(Persist("ban", "10.0.0.1/32", old))
    store.put(Persist("mute", "bob", {"name": "bob", "until": NOW - 1}))
    store.close()
    store, restored = StateStore.open(path, 20, now=NOW)
    store.close()
    assert restored.bans == {} and restored.mutes == {}
    assert rows(path, "SELECT count(*) FROM records") == [(0,)]


def test_the_history_and_a_ban_are_committed_as_soon_as_they_are_put(tmp_path) -> None:
    """The room hands over its history every state_flush seconds (the adapter's timer):
    the file adds the lines it does not have yet, at once."""
    path = str(tmp_path / "state.db")
    store, _ = StateStore.open(path, 20, now=NOW)
    try:
        store.put(Persist("history", "", (chat(1),)))
        assert len(until_seen(path, "SELECT event FROM history")) == 1
        ban = {"target": "10.0.0.1/32", "until": None, "name": None, "reason": None, "by": "o"}
        store.put(Persist("ban", "10.0.0.1/32", ban))
        assert until_seen(path, "SELECT key FROM records") == [("10.0.0.1/32",)]
        store.put(Persist("history", "", (chat(1), chat(2))))
        found = until_seen(path, "SELECT event FROM history WHERE id > 1")
        assert len(found) == 1  # chat(2) only: chat(1) is not written twice
    finally:
        store.close()
    store, restored = StateStore.open(path, 20, now=NOW)
    store.close()
    assert restored.history == (chat(1), chat(2))


@pytest.mark.parametrize("where", ["missing-dir/state.db", "."])
def test_a_file_that_cannot_be_opened_is_a_one_line_error(tmp_path, where) -> None:
    with pytest.raises(StateError) as caught:
        StateStore.open(str(tmp_path / where), 20)
    message = str(caught.value)
    assert message.startswith("--state ") and "\n" not in message


def test_a_newer_schema_or_a_file_that_is_not_sqlite_is_refused(tmp_path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer"):
        StateStore.open(str(newer), 20)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, not at all" * 100)
    with pytest.raises(StateError, match="--state"):
        StateStore.open(str(junk), 20)


def test_an_endless_ban_is_kept_without_an_end(tmp_path) -> None:
    from chatroom.server.core.moderation_state import Ban, network_of

    ban = Ban(network_of("2001:db8::/64"), math.inf, "mallory", "spam", "op")
    assert Ban.from_record(ban.record()) == ban


def test_a_stalled_disk_holds_one_history_and_never_a_ban_less(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    store, _ = StateStore.open(path, 10, now=NOW)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock
    histories = [tuple(chat(n) for n in range(max(1, seq - 9), seq + 1)) for seq in range(1, 50)]
    try:
        store.put(Persist("history", "", histories[0]))
        # The writer has taken the first (nothing waits any more) and is stuck on the lock.
        deadline = time.monotonic() + TIMEOUT
        while store._history_due:
            assert time.monotonic() < deadline, "the writer never took the first history"
            time.sleep(0.001)
        for history in histories[1:]:
            store.put(Persist("history", "", history))
        # However far behind the disk is, one history waits: the latest (bounded at every
        # moment, not on average).
        assert store._history_due == {"": (False, histories[-1])}
        ban = {"target": "10.0.0.1/32", "until": None, "name": None, "reason": None, "by": "o"}
        store.put(Persist("ban", "10.0.0.1/32", ban))
    finally:
        blocker.execute("COMMIT")
        blocker.close()
        store.close()
    store, restored = StateStore.open(path, 10, now=NOW)
    store.close()
    assert "10.0.0.1/32" in restored.bans
    assert [event.seq for event in restored.history] == list(range(40, 50))
