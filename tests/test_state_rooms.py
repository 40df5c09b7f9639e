"""--state keeps each room's topic and history (issue 19, docs/PROTOCOL.md "Rooms"): the
store's rooms, the room's reports of a room gone, and the real server process restarted
on its file (cleanly, and after a kill -9) with nc-like peers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import time

from chatroom import protocol as p
from chatroom.server.adapter.store import SCHEMA_VERSION, StateStore
from chatroom.server.core.actions import Persist, Restored
from chatroom.server.core.room import Room
from tests.conftest import TIMEOUT, Peer
from tests.room_helpers import room_rules
from tests.test_server_process import server_process  # noqa: F401 (a fixture)
from tests.test_store import rows, until_seen

NOW = 1_700_000_000.0


def said(seq: int, room: str | None = None, text: str | None = None) -> p.Message:
    text = text if text is not None else f"{room or 'main'} {seq}"
    return p.Message(seq=seq, ts=NOW + seq, id="a:1", name="ann", text=text, room=room)


def reopened(path, keep: int = 20, **kwargs) -> Restored:
    store, restored = StateStore.open(str(path), keep, now=NOW, **kwargs)
    store.close()
    return restored


# --- the store ------------------------------------------------------------------------------


def test_each_room_keeps_its_own_last_lines_and_topic(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 3, now=NOW)
    store.put(Persist("history", "", tuple(said(n, "main") for n in range(1, 3))))
    store.put(Persist("history", "dev", tuple(said(n, "dev") for n in range(1, 6))))
    store.put(Persist("history", "ops", (said(1, "ops"),)))
    store.put(Persist("topic", "topic", {"text": "be kind", "by": "op"}))
    store.put(Persist("topic", "#dev", {"text": "release friday", "by": "op"}))
    stop = {"epoch": "e1", "seq": 2, "requests": [], "seqs": {"dev": 7, "ops": 1}}
    store.put(Persist("epoch", "room", stop))
    store.close()
    # The last 3 of each room, not the last 3 of the file.
    assert rows(path, "SELECT room, count(*) FROM history GROUP BY room ORDER BY room") == [
        ("", 2),
        ("dev", 3),
        ("ops", 1),
    ]
    restored = reopened(path, 3)
    assert [e.text for e in restored.history] == ["main 1", "main 2"]
    assert {k: [e.seq for e in v] for k, v in restored.histories.items()} == {
        "dev": [3, 4, 5],
        "ops": [1],
    }
    assert restored.topic == {"text": "be kind", "by": "op"}
    assert restored.topics == {"dev": {"text": "release friday", "by": "op"}}
    assert restored.epoch == "e1" and restored.seq == 2 and restored.seqs == {"dev": 7, "ops": 1}


def test_new_lines_are_added_once_and_a_gone_room_s_lines_go(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 20, now=NOW)
    try:
        store.put(Persist("history", "dev", (said(1, "dev"),)))
        assert until_seen(path, "SELECT event FROM history WHERE room = 'dev'")
        store.put(Persist("history", "dev", (said(1, "dev"), said(2, "dev"))))
        store.put(Persist("history", "", (said(1, "main"),)))
        assert until_seen(path, "SELECT event FROM history WHERE room = ''")
        assert len(rows(path, "SELECT event FROM history WHERE room = 'dev'")) == 2
        # #dev is gone, and made again under its name before the next report: its old
        # lines go, its new ones (numbered from 1 again) are kept.
        store.put(Persist("history", "dev", ()))
        store.put(Persist("history", "dev", (said(1, "dev", "anew"),)))
        store.put(Persist("history", "ops", (said(1, "ops"),)))
        assert until_seen(path, "SELECT event FROM history WHERE room = 'ops'")
        store.put(Persist("history", "ops", ()))  # gone, not made again
        deadline = time.monotonic() + 2 * TIMEOUT
        while rows(path, "SELECT event FROM history WHERE room = 'ops'"):
            assert time.monotonic() < deadline, "a gone room's lines stayed"
            time.sleep(0.01)
    finally:
        store.close()
    restored = reopened(path)
    assert [e.text for e in restored.histories["dev"]] == ["anew"]
    assert "ops" not in restored.histories and len(restored.history) == 1


def test_an_old_file_s_lines_become_the_default_room_s(tmp_path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            "CREATE TABLE history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);"
            "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,"
            " PRIMARY KEY (kind, key));"
            "CREATE TABLE accounts (key TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " hash TEXT NOT NULL, created REAL NOT NULL); PRAGMA user_version = 2;"
        )
        lines = [(p.encode_json(said(n)),) for n in range(1, 4)]
        db.executemany("INSERT INTO history (event) VALUES (?)", lines)
    store, restored = StateStore.open(str(path), 20, now=NOW, rooms=("dev",))
    try:
        assert [e.seq for e in restored.history] == [1, 2, 3] and restored.histories == {}
        store.put(Persist("history", "", tuple(said(n) for n in range(1, 5))))
        store.put(Persist("history", "dev", (said(1, "dev"),)))
        assert until_seen(path, "SELECT event FROM history WHERE room = 'dev'")
    finally:
        store.close()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    restored = reopened(path, rooms=("dev",))
    assert [e.seq for e in restored.history] == [1, 2, 3, 4]  # once each, in order
    assert [e.text for e in restored.histories["dev"]] == ["dev 1"]


def test_a_bad_line_in_one_room_is_skipped_with_one_warning(tmp_path, caplog) -> None:
    path = tmp_path / "state.db"
    reopened(path)  # a file of this version
    good = [said(1, "dev"), said(2, "dev"), said(3, "dev")]
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        rows_ = [("dev", p.encode_json(e)) for e in good]
        rows_.insert(1, ("dev", '{"type":"message","seq":"two"}'))
        rows_.append(("dev", p.encode_json(said(4, "ops"))))  # another room's line
        rows_ += [("", p.encode_json(said(1, "main"))), ("#bad", "{}")]
        rows_.append(("ops", p.encode_json(said(1, "ops"))))
        db.executemany("INSERT INTO history (room, event) VALUES (?, ?)", rows_)
        db.executemany(
            "INSERT INTO records VALUES (?, ?, ?)",
            [
                ("topic", "#dev", json.dumps({"text": "ok", "by": "op"})),
                ("topic", "#Not A Room", json.dumps({"text": "no", "by": "op"})),
                ("topic", "dev", json.dumps({"text": "no #", "by": "op"})),
            ],
        )
    with caplog.at_level(logging.WARNING, logger="chatroom.server.store"):
        restored = reopened(path)
    skipped = [r.getMessage() for r in caplog.records if ": skipped " in r.getMessage()]
    assert len(skipped) == 5, skipped  # two lines, a room, two topics: one warning each
    assert sum("history line 2:" in line for line in skipped) == 1, skipped
    assert sum("'ops', not 'dev'" in line for line in skipped) == 1, skipped
    assert restored.histories["dev"] == tuple(good)  # the rest of the room restored
    assert [e.text for e in restored.histories["ops"]] == ["ops 1"]
    assert [e.text for e in restored.history] == ["main 1"]
    assert restored.topics == {"dev": {"text": "ok", "by": "op"}}


def test_the_lines_of_rooms_not_listed_go_at_start(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 20, now=NOW)
    for room in ("dev", "ops", "tmp"):
        store.put(Persist("history", room, (said(1, room),)))
    store.put(Persist("history", "", (said(1),)))
    store.close()
    restored = reopened(path, rooms=("dev",))
    assert set(restored.histories) == {"dev"} and len(restored.history) == 1
    assert rows(path, "SELECT DISTINCT room FROM history ORDER BY room") == [("",), ("dev",)]


def test_a_stalled_disk_holds_the_latest_history_of_each_room(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 10, now=NOW, max_rooms=3)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock
    try:
        store.put(Persist("history", "", (said(1),)))
        deadline = time.monotonic() + TIMEOUT
        while store._history_due:
            assert time.monotonic() < deadline, "the writer never took the first history"
            time.sleep(0.001)
        for seq in range(2, 30):
            for room in (None, "dev"):
                history = tuple(said(n, room) for n in range(1, seq))
                store.put(Persist("history", room or "", history))
        # One history a room waits, the latest; rooms that come and go wait as gone, at
        # most twice --max-rooms rooms in all.
        for n in range(10):
            store.put(Persist("history", f"r{n}", (said(1, f"r{n}"),)))
            store.put(Persist("history", f"r{n}", ()))
        due = store._history_due
        assert len(due) == 6, due
        assert due[""] == (False, tuple(said(n) for n in range(1, 29)))
        assert due["dev"][1][-1].seq == 28
        assert [due[f"r{n}"] for n in range(6, 10)] == [(True, ())] * 4
    finally:
        blocker.execute("COMMIT")
        blocker.close()
        store.close()
    restored = reopened(path, 10)
    assert [e.seq for e in restored.history] == list(range(19, 29))
    assert [e.seq for e in restored.histories["dev"]] == list(range(19, 29))


# --- the room's reports ---------------------------------------------------------------------


def test_the_room_reports_a_room_gone_once_its_history_was_kept() -> None:
    room = Room(room_rules(rooms=("dev",)), epoch="e", restored=Restored())
    room.connect(1, "10.0.0.1", 1, NOW)
    for line in ("/join quiet", "/join dev", "/join tmp", "in tmp"):  # #quiet: no chat
        room.receive(1, line, NOW)
    assert [(a.key, [e.text for e in a.data]) for a in room.history_due()] == [("tmp", ["in tmp"])]
    for line in ("/join dev", "/join tmp", "again"):  # gone, and made again
        room.receive(1, line, NOW)
    assert [(a.key, [e.text for e in a.data]) for a in room.history_due()] == [
        ("tmp", []),
        ("tmp", ["again"]),
    ]
    room.receive(1, "/join dev", NOW)
    assert [(a.key, a.data) for a in room.history_due()] == [("tmp", ())]
    assert room.history_due() == []  # said once
    stop = [a for a in room.shutdown(NOW) if isinstance(a, Persist) and a.kind == "epoch"]
    assert stop[0].data["seqs"] == {"dev": room.state.rooms.get("dev").seq}


def test_a_listed_room_without_chat_numbers_on_after_a_clean_stop() -> None:
    """Its seq comes back from the clean stop's record, though it kept no line."""
    restored = Restored(epoch="e", seq=5, seqs={"dev": 7, "gone": 3})
    room = Room(room_rules(rooms=("dev",)), epoch="e", restored=restored)
    room.connect(1, "10.0.0.1", 1, NOW)
    sent = [e for a in room.receive(1, "/join dev", NOW) for e in getattr(a, "events", ())]
    assert [(e.room, e.seq) for e in sent if isinstance(e, p.Join)] == [("dev", 8)], sent


# --- the server process ---------------------------------------------------------------------


def committed(path, room: str, *texts: str) -> None:
    """Return once the state file's history of ``room`` holds a line with each of ``texts``."""
    deadline = time.monotonic() + 2 * TIMEOUT
    while True:
        with contextlib.closing(sqlite3.connect(path)) as db:
            lines = db.execute("SELECT event FROM history WHERE room = ?", (room,)).fetchall()
        history = " ".join(event for (event,) in lines)
        if all(text in history for text in texts):
            return
        assert time.monotonic() < deadline, f"not committed: {texts} (the file has {history})"
        time.sleep(0.02)


async def chat_in_rooms(port: int) -> Peer:
    """An operator sets #dev's topic and chats there, then in the default room; bob chats
    in #tmp (not listed) and stays there: returned, connected."""
    ann = await Peer.connect(port)
    await ann.until_contains("joined")
    await ann.send("/oper boss s3cret")
    await ann.until_contains("now an operator")
    await ann.send("/join #dev")
    await ann.until_contains("now in #dev")
    await ann.send("/topic release on friday")
    await ann.until_contains("Topic: release on friday")
    await ann.send("tests are green")
    await ann.send("/me ships it")
    await ann.until_contains("ships it")
    await ann.send("/part")
    await ann.until_contains("now in #main")  # back in the default room
    await ann.send("hello main")
    await ann.until_contains("hello main")
    await ann.close()
    bob = await Peer.connect(port)
    await bob.until_contains("joined")
    await bob.send("/join tmp")
    await bob.until_contains("now in #tmp")
    await bob.send("only in tmp")
    await bob.until_contains("only in tmp")
    return bob


async def back_in_rooms(port: int) -> list[str]:
    """What a newcomer who joins #dev sees, up to its own join, then in #tmp."""
    carl = await Peer.connect(port)
    await carl.until_contains("joined")
    await carl.send("/join dev")
    seen = [await carl.until_contains("now in #dev")]
    while not (line := await carl.line()).endswith("joined"):
        seen.append(line)
    await carl.send("/join tmp")
    seen.append(await carl.until_contains("now in #tmp"))
    seen.append(await carl.line())  # its own join, first: #tmp is a new room
    await carl.close()
    return seen


def ops_file(tmp_path):
    from chatroom.server.core.passwords import hash_password

    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    return ops


async def test_a_restart_has_a_listed_room_s_topic_and_history_back(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    state = tmp_path / "state.db"
    flags = ("--state", str(state), "--rooms", "dev", "--ops-file", str(ops_file(tmp_path)))
    first = server_process(*flags)
    bob = await chat_in_rooms(first.port)
    first.proc.send_signal(signal.SIGTERM)  # a clean stop: bob is still in #tmp
    assert await asyncio.to_thread(first.proc.wait, 4 * TIMEOUT) == 0
    await bob.close()
    assert rows(state, "SELECT count(*) FROM history WHERE room = 'tmp'") == [(1,)]
    second = server_process(*flags)
    seen = await back_in_rooms(second.port)
    assert seen[1] == "*** Topic: release on friday", seen
    assert seen[2].endswith("> tests are green") and seen[3].endswith(" ships it"), seen
    assert seen[2].startswith("[history ") and len(seen) == 6, seen
    # #tmp was not listed: gone with its users, nothing of it came back (its lines went).
    assert seen[4] == "*** now in #tmp (1 user)" and seen[5].endswith("joined"), seen
    assert rows(state, "SELECT count(*) FROM history WHERE room = 'tmp'") == [(0,)]
    alice = await Peer.connect(second.port)
    assert "hello main" in await alice.until_contains("hello main")
    await alice.close()


async def test_a_killed_server_comes_back_with_a_listed_room_s_topic_and_history(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    state = tmp_path / "state.db"
    flags = ("--state", str(state), "--rooms", "dev", "--ops-file", str(ops_file(tmp_path)))
    first = server_process(*flags)
    bob = await chat_in_rooms(first.port)
    await asyncio.to_thread(committed, state, "dev", "tests are green", "ships it")
    await asyncio.to_thread(committed, state, "tmp", "only in tmp")
    await asyncio.to_thread(committed, state, "", "hello main")
    first.proc.kill()  # kill -9: no shutdown, no last flush
    first.proc.wait()
    await bob.close()
    second = server_process(*flags)
    seen = await back_in_rooms(second.port)
    assert seen[1] == "*** Topic: release on friday", seen
    assert seen[2].endswith("> tests are green") and seen[3].endswith(" ships it"), seen
    assert seen[4] == "*** now in #tmp (1 user)" and seen[5].endswith("joined"), seen
    alice = await Peer.connect(second.port)
    assert "hello main" in await alice.until_contains("hello main")
    await alice.close()
