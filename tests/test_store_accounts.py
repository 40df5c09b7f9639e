"""Registered names in the state file (--state, issue 24): their own table, added to a file
of the schema before (version 1) by a migration, written and deleted as they change, and
each row checked when it is read back (a bad one skipped with a line naming it)."""

from __future__ import annotations

import logging
import sqlite3

from chatroom.server.adapter.store import SCHEMA_VERSION, StateStore
from chatroom.server.core.accounts_state import account_key
from chatroom.server.core.actions import Persist
from chatroom.server.core.passwords import hash_password
from tests.test_store import NOW, rows

STORED = hash_password("hunter2")
VERSION_1 = """
CREATE TABLE history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE records (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
INSERT INTO records VALUES ('topic', 'topic', '{"text": "be kind", "by": "op"}');
PRAGMA user_version = 1;
"""


def test_a_version_1_file_is_migrated_and_keeps_what_it_had(tmp_path, caplog) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_1)
    caplog.set_level(logging.INFO, "chatroom.server.store")
    store, restored = StateStore.open(str(path), 20, now=NOW)
    assert restored.topic == {"text": "be kind", "by": "op"} and restored.accounts == {}
    store.put(Persist("account", "alice", {"name": "alice", "hash": STORED, "created": NOW}))
    store.close()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "SELECT key, name FROM accounts") == [("alice", "alice")]
    assert "schema version 2 now (was 1)" in caplog.text
    store, restored = StateStore.open(str(path), 20, now=NOW)
    store.close()
    assert restored.accounts == {"alice": {"name": "alice", "hash": STORED, "created": NOW}}


def test_accounts_are_written_replaced_and_deleted(tmp_path) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 20, now=NOW)
    for name in ("alice", "bob"):
        record = {"name": name, "hash": STORED, "created": NOW}
        store.put(Persist("account", account_key(name), record))
    store.put(Persist("account", "bob", None))
    store.close()
    assert rows(path, "SELECT name FROM accounts") == [("alice",)]


def test_bad_account_rows_are_skipped_with_a_line_each(tmp_path, caplog) -> None:
    path = tmp_path / "state.db"
    store, _ = StateStore.open(str(path), 20, now=NOW)
    store.close()
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?)",
            [
                ("alice", "alice", STORED, NOW),
                ("bad name", "bad name", STORED, NOW),  # a space: no name
                ("bob", "bob", "scrypt$1$1$1$AA$AA", NOW),  # no check could run on it
                ("carol", "carol", STORED, "yesterday"),
                ("dave", "dave", 42, NOW),
                ("stale-key", "Erin", STORED, NOW),  # kept under its skeleton: erin
            ],
        )
    caplog.set_level(logging.WARNING, "chatroom.server.store")
    store, restored = StateStore.open(str(path), 20, now=NOW)
    store.close()
    assert sorted(restored.accounts) == ["alice", "erin"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 4, skipped
    assert all("a registered name" in line for line in skipped)
