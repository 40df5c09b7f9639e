"""--state against the real server process: bad records in a valid file, a second server
on the same file, and a disk that fills up for a while (a real full filesystem: a small
tmpfs mounted for the test, which needs root — the tests run as root here and in .ci)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from chatroom.server.core.passwords import hash_password
from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import SERVER_SCRIPT

BANNED = "127.0.0.2"  # loopback too, so the test needs no network
FLAGS = ("--rate", "0", "--idle-timeout", "0")


class Server:
    """The server process, its log in a file the test reads."""

    def __init__(self, log: Path, *flags: str) -> None:
        self.log = log
        command = [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", *FLAGS, *flags]
        with open(log, "a") as err:
            self.proc = processes.spawn(command, stdout=subprocess.PIPE, stderr=err, text=True)
        banner = self.proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        self.port = int(match.group(1)) if match else None

    def text(self) -> str:
        return self.log.read_text()

    def until_logged(self, pattern: str, timeout: float = 4 * TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.text())):
            assert time.monotonic() < deadline, f"not logged: {pattern}\n{self.text()[-2000:]}"
            time.sleep(0.05)
        return found.group(0)


@pytest.fixture
def server(tmp_path):
    started: list[Server] = []

    def start(*flags: str) -> Server:
        started.append(Server(tmp_path / f"server{len(started)}.log", *flags))
        return started[-1]

    yield start
    for one in started:
        processes.stop(one.proc)


def refused_from(port: int, address: str = BANNED) -> bytes:
    """What a newcomer from ``address`` is told before the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0)) as s:
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data


def ban(target: str, **fields) -> str:
    record = {"target": target, "until": None, "name": None, "reason": "r", "by": "op"}
    return json.dumps({**record, **fields})


def chat(seq: int, text: str) -> str:
    return json.dumps(
        {"type": "message", "seq": seq, "ts": 1.0, "id": "a:1", "name": "ann", "text": text}
    )


def make_state(path: Path) -> None:
    """A valid state file (schema 1) with good records and bad ones."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            "CREATE TABLE history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);"
            "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,"
            " PRIMARY KEY (kind, key)); PRAGMA user_version = 1;"
        )
        history = [
            chat(1, "first good line"),
            "this is not json",
            '{"type":"message","seq":2}',
            chat(1, "a replayed seq"),
            json.dumps({"type": "welcome", "seq": 3}),
            "[" * 100_000,
            chat(3, "second good line"),
        ]
        db.executemany("INSERT INTO history (event) VALUES (?)", [(e,) for e in history])
        records = [
            ("ban", f"{BANNED}/32", ban(f"{BANNED}/32")),  # good
            ("ban", "10.1.0.0/16", ban("10.1.0.0/16", until="tomorrow")),
            ("ban", "10.2.0.0/16", json.dumps({"until": None, "by": "op"})),  # no target
            ("ban", "10.3.0.0/16", "{not json"),
            ("ban", "10.4.0.0/16", ban("10.4.0.0/16", until=[1, 2])),
            ("mute", "carol", json.dumps({"name": "carol", "until": "later"})),
            ("mute", "dave", json.dumps([1, 2, 3])),
            ("topic", "topic", json.dumps({"text": "be kind", "by": "op"})),  # good
            ("weird", "x", "{}"),
        ]
        db.executemany("INSERT INTO records VALUES (?, ?, ?)", records)


async def test_bad_records_are_skipped_with_a_line_each_and_the_good_ones_kept(
    server, tmp_path
) -> None:
    path = tmp_path / "state.db"
    make_state(path)
    one = server("--state", str(path))
    assert one.port is not None, f"the server did not start: {one.text()}"
    text = one.text()
    assert "Traceback" not in text, text
    skipped = [line for line in text.splitlines() if ": skipped " in line]
    # One line for each bad record, naming the file and what was skipped.
    assert len(skipped) == 12, skipped
    assert all(str(path) in line for line in skipped), skipped
    for what in ("10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16", "carol", "dave"):
        assert sum(what in line for line in skipped) == 1, (what, skipped)
    # The good ones are back: the history (in order, once), the topic, the ban.
    ann = await Peer.connect(one.port)
    assert await ann.until_contains("Topic:") == "*** Topic: be kind"
    first = await ann.until_contains("good line")
    second = await ann.until_contains("line")
    assert "first good line" in first and "second good line" in second
    await ann.until_contains("joined")
    await ann.close()
    told = await asyncio.to_thread(refused_from, one.port)
    assert told.startswith(b"*** your address is banned"), told


def test_a_file_the_server_cannot_use_is_one_line_naming_it(tmp_path) -> None:
    wrong = tmp_path / "wrong.db"
    with contextlib.closing(sqlite3.connect(wrong)) as db:
        db.execute("CREATE TABLE history (x)")  # a history without its event column
    for path in (wrong, tmp_path):  # and a directory
        result = subprocess.run(
            [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--state", str(path)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1, result.stderr
        assert str(path) in lines[0], lines


async def test_a_second_server_on_the_same_file_refuses_and_a_killed_one_restarts(
    server, tmp_path
) -> None:
    path = str(tmp_path / "state.db")
    first = server("--state", path)
    assert first.port is not None, first.text()
    second = server("--state", path)  # while the first runs
    assert second.port is None
    assert await asyncio.to_thread(second.proc.wait, 30) != 0
    lines = second.text().strip().splitlines()
    assert len(lines) == 1 and path in lines[0] and "another server" in lines[0], lines
    # The first goes on; killed -9, it leaves no lock behind: it starts again at once.
    ann = await Peer.connect(first.port)
    await ann.until_contains("joined")
    await ann.close()
    first.proc.kill()
    first.proc.wait()
    third = server("--state", path)
    assert third.port is not None, third.text()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs of its own, unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert mounted.returncode == 0, f"a full disk needs root to mount a tmpfs: {mounted.stderr}"
    try:
        yield where
    finally:
        processes.stop_all()  # nothing may hold a file there
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Fill the filesystem at ``where`` to the last byte; the file that fills it."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert os.statvfs(where).f_bavail == 0
    return filler


async def test_a_full_disk_for_a_while_loses_no_ban(server, small_disk, tmp_path) -> None:
    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    path = small_disk / "state.db"
    flags = ("--state", str(path), "--ops-file", str(ops))
    first = server(*flags)
    boss = await Peer.connect(first.port)
    await boss.until_contains("joined")
    await boss.send("/oper boss s3cret")
    await boss.until_contains("now an operator")
    await boss.send("before the disk filled up")
    await boss.until_contains("before the disk filled up")

    filler = await asyncio.to_thread(fill, small_disk)
    for n in range(20):  # chat the disk has no room for
        await boss.send(f"{n} " + "x" * 1500)
    await boss.send(f"/ban {BANNED} 1h while the disk was full")
    await boss.until_contains(f"banned {BANNED}/32")
    await boss.send("y" * 1500)
    failed = first.until_logged(r".*state file.*(full|writ).*")
    assert str(path) in failed, failed
    # Still failing while the disk is full: told once, not once per try.
    await asyncio.sleep(2)
    assert first.text().count("ERROR") == 1, first.text()

    filler.unlink()  # the disk has room again
    first.until_logged(r".*state file.*written again.*")
    # Committed: what another connection to the file sees.
    deadline = time.monotonic() + 2 * TIMEOUT
    while True:
        with contextlib.closing(sqlite3.connect(path)) as db:
            keys = [key for (key,) in db.execute("SELECT key FROM records WHERE kind = 'ban'")]
        if f"{BANNED}/32" in keys:
            break
        assert time.monotonic() < deadline, "the ban never reached the file"
        await asyncio.sleep(0.05)
    first.proc.kill()  # kill -9: nothing is written on the way out
    first.proc.wait()
    await boss.close()

    second = server(*flags)
    assert second.port is not None, second.text()
    told = await asyncio.to_thread(refused_from, second.port)
    assert b"banned" in told and b"while the disk was full" in told, told
    # And the chat said while the disk was full is in the history it replays.
    ann = await Peer.connect(second.port)
    assert "19 xxx" in await ann.until_contains("19 xxx")
    assert "yyy" in await ann.until_contains("yyy")
    await ann.until_contains("joined")
    await ann.close()
    assert "Traceback" not in first.text() + second.text()
