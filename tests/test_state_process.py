"""--state end to end: the real server process is killed (kill -9) and started again on
the same file: the chat, the topic and a ban are still there."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sqlite3
import time
from pathlib import Path

from chatroom.server.core.passwords import hash_password
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import server_process  # noqa: F401 (a fixture)

BANNED = "127.0.0.2"  # loopback too, so the test needs no network


def committed(path: Path, *texts: str) -> None:
    """Return once the state file's history holds a line with each of ``texts``."""
    deadline = time.monotonic() + 2 * TIMEOUT
    while True:
        with contextlib.closing(sqlite3.connect(path)) as db:
            history = " ".join(event for (event,) in db.execute("SELECT event FROM history"))
        if all(text in history for text in texts):
            return
        assert time.monotonic() < deadline, f"not committed: {texts} (the file has {history})"
        time.sleep(0.02)


async def test_a_killed_server_comes_back_with_its_history_topic_and_bans(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    flags = ("--state", str(tmp_path / "state.db"), "--ops-file", str(ops))
    first = server_process(*flags)
    alice = await Peer.connect(first.port)
    await alice.until_contains("joined")
    await alice.send("/oper boss s3cret")
    await alice.until_contains("now an operator")
    await alice.send("hello before the crash")
    await alice.send("/me waves")
    await alice.send("/topic be kind")
    await alice.until_contains("Topic: be kind")
    await alice.send(f"/ban {BANNED} 1h flooding")
    await alice.until_contains(f"banned {BANNED}/32")
    # Chat is committed within --state's half-second batches: kill only once the file has
    # it (what another connection to it sees is what was committed).
    await asyncio.to_thread(committed, tmp_path / "state.db", "hello before the crash", "waves")
    first.proc.kill()  # kill -9: no shutdown, no last flush
    first.proc.wait()
    await alice.close()

    second = server_process(*flags)
    bob = await Peer.connect(second.port)
    assert await bob.until_contains("Topic:") == "*** Topic: be kind"
    assert "hello before the crash" in await bob.until_contains("hello before the crash")
    assert "waves" in await bob.until_contains("waves")
    await bob.until_contains("joined")
    await bob.close()

    def refused() -> bytes:
        with socket.create_connection(
            ("127.0.0.1", second.port), timeout=5, source_address=(BANNED, 0)
        ) as sock:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    told = await asyncio.to_thread(refused)
    # What is left of the hour: "1h" or "59m" (rounded), as the restart came soon or late.
    assert re.fullmatch(
        rb"\*\*\* your address is banned from this server for (1h|5\dm) more: flooding\n", told
    ), told


def test_a_state_file_that_cannot_be_opened_stops_the_start(tmp_path) -> None:
    import subprocess

    from tests.test_server_process import SERVER_SCRIPT

    result = subprocess.run(  # on a timeout, run() kills the process before it raises
        [str(SERVER_SCRIPT), "--port", "0", "--host", "127.0.0.1",
         "--state", str(tmp_path / "no-such-dir" / "state.db")],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--state" in lines[0], lines


def test_state_is_refused_with_redis() -> None:
    import subprocess

    from tests.test_server_process import SERVER_SCRIPT

    result = subprocess.run(
        [str(SERVER_SCRIPT), "--state", "x.db", "--redis", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--state is for a room on one server" in result.stderr
    assert result.stderr.count("\n") == 1
