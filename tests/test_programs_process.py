"""History on demand, requests with ids, the pacing notice and the example bot, against
the real server process: real sockets, a real restart (SIGTERM, and kill -9), --state."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import server_process  # noqa: F401 (a fixture)

BOT = Path(__file__).resolve().parent.parent / "examples" / "bot.py"
QUIET = ("--idle-timeout", "0", "--log-level", "warning")


async def json_peer(port: int, name: str | None = None) -> tuple[Peer, dict]:
    peer = await Peer.connect(port)
    if name is not None:
        await peer.send(f"/nick {name}")
    welcome = await peer.to_json()
    return peer, welcome


async def history(peer: Peer, line: str) -> tuple[list[dict], list[dict]]:
    """The notices and messages of the answer to ``line`` (a /history command)."""
    await peer.send(line)
    notices = []
    while True:
        event = await peer.event()
        if event["type"] == "notice" and event["code"] in ("reset", "history_gap"):
            notices.append(event)
        elif event["type"] == "notice" and event["code"] == "history":
            notices.append(event)
            break
    messages = [await peer.until_event("message") for _ in range(notices[-1]["count"])]
    assert all(m.get("history") for m in messages)
    return notices, messages


def stop_gracefully(server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0  # a deadline, not a speed


async def test_history_reaches_past_the_replay_and_goes_on_after_a_clean_restart(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), "--history", "2", "--keep", "50", *QUIET)
    first = server_process(*flags)
    ann, welcome = await json_peer(first.port, "ann")
    for n in range(30):
        await ann.send(f"line {n}")
    last = (await ann.until_event("message", text="line 29"))["seq"]
    _, messages = await history(ann, "/history 25")
    assert [m["text"] for m in messages] == [f"line {n}" for n in range(5, 30)]
    await ann.close()
    await asyncio.to_thread(stop_gracefully, first)

    second = server_process(*flags, "--port", str(first.port))
    bob, again = await json_peer(second.port, "bob")
    assert again["epoch"] == welcome["epoch"]  # a clean stop: the same history goes on
    notices, messages = await history(bob, f"/history since {last - 3} {welcome['epoch']}")
    assert [n["code"] for n in notices] == ["history"]
    assert [m["text"] for m in messages] == ["line 27", "line 28", "line 29"]
    await bob.send("after")
    assert (await bob.until_event("message", text="after"))["seq"] > last  # no seq reused
    await bob.close()


async def flushed(tmp_path: Path, text: str) -> None:
    """Wait until ``text`` is committed to the state file (in its write-ahead log)."""
    deadline = time.monotonic() + 2 * TIMEOUT
    while text.encode() not in (tmp_path / "state.db-wal").read_bytes():
        assert time.monotonic() < deadline, f"{text!r} never reached the state file"
        await asyncio.sleep(0.02)


def kill(server) -> None:
    server.proc.kill()  # SIGKILL: nothing is saved on the way out
    server.proc.wait()


async def test_a_killed_server_goes_on_in_its_epoch_above_every_seq_and_tells_the_gap(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), *QUIET)
    first = server_process(*flags)
    ann, welcome = await json_peer(first.port)
    await ann.send("before")
    before = (await ann.until_event("message", text="before"))["seq"]
    await flushed(tmp_path, "before")
    for n in range(10):  # said just before the kill: maybe flushed, maybe not
        await ann.send(f"late {n}")
    seen = (await ann.until_event("message", text="late 9"))["seq"]
    kill(first)

    second = server_process(*flags, "--port", str(first.port))
    bob, again = await json_peer(second.port)
    assert again["epoch"] == welcome["epoch"]  # the same history goes on: no reset
    # Resuming from the last seq seen: what followed it may be lost, and it says so.
    notices, messages = await history(bob, f"/history since {seen} {welcome['epoch']}")
    assert [n["code"] for n in notices] == ["history_gap", "history"]
    assert notices[0]["seq"] >= seen and messages == []
    # From before it: what the file has comes first, then the answer stops at the hole.
    notices, messages = await history(bob, f"/history since {before - 1} {welcome['epoch']}")
    assert [n["code"] for n in notices] == ["history"] and notices[0]["more"]
    texts = [m["text"] for m in messages]
    assert texts[0] == "before" and texts == ["before"] + [
        f"late {n}" for n in range(len(texts) - 1)
    ]
    notices, messages = await history(bob, f"/history since {notices[0]['seq']} {welcome['epoch']}")
    assert [n["code"] for n in notices] == ["history_gap", "history"] and messages == []
    gap = notices[0]["seq"]
    await bob.send("after")
    after = (await bob.until_event("message", text="after"))["seq"]
    assert after > gap >= seen  # no seq given twice in the epoch
    notices, messages = await history(bob, f"/history since {gap} {welcome['epoch']}")
    assert [m["text"] for m in messages] == ["after"]
    await bob.close()


async def test_a_request_retried_after_a_kill_is_acked_not_said_again_once_its_line_was_saved(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), *QUIET)
    first = server_process(*flags)
    bot, _ = await json_peer(first.port, "robo")
    await bot.send(json.dumps({"id": "k-1", "text": "saved once"}))
    said = await bot.until_event("message", text="saved once")
    assert await bot.until_event("ack") == {"type": "ack", "id": "k-1", "seq": said["seq"]}
    await flushed(tmp_path, "saved once")
    kill(first)  # the ack may not have reached the bot: it retries on the new server

    second = server_process(*flags, "--port", str(first.port))
    watcher, _ = await json_peer(second.port, "watcher")
    bot, _ = await json_peer(second.port, "robo")
    await bot.send(json.dumps({"id": "k-1", "text": "saved once"}))
    assert await bot.until_event("ack") == {"type": "ack", "id": "k-1", "seq": said["seq"]}
    await bot.send(json.dumps({"id": "k-2", "text": "marker"}))
    assert (await watcher.until_event("message", history=None))["text"] == "marker"
    for peer in (watcher, bot):
        await peer.close()


async def test_a_request_retried_after_a_restart_is_acked_not_said_again(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), *QUIET)
    first = server_process(*flags)
    bot, _ = await json_peer(first.port, "robo")
    await bot.send(json.dumps({"id": "r-1", "text": "exactly once"}))
    said = await bot.until_event("message", text="exactly once")
    assert await bot.until_event("ack") == {"type": "ack", "id": "r-1", "seq": said["seq"]}
    await bot.close()
    await asyncio.to_thread(stop_gracefully, first)

    second = server_process(*flags, "--port", str(first.port))
    watcher, _ = await json_peer(second.port, "watcher")
    bot, _ = await json_peer(second.port, "robo")
    await bot.send(json.dumps({"id": "r-1", "text": "exactly once"}))
    assert await bot.until_event("ack") == {"type": "ack", "id": "r-1", "seq": said["seq"]}
    await bot.send(json.dumps({"id": "r-2", "text": "marker"}))
    # Nothing came between: the marker is the watcher's next message.
    assert (await watcher.until_event("message", history=None))["text"] == "marker"
    await bot.send('{"id": "r-3", "txt": "oops"}')
    error = await bot.until_event("error")
    assert (error["code"], error["id"]) == ("bad_request", "r-3")
    for peer in (watcher, bot):
        await peer.close()


async def test_a_json_flooder_is_told_once_that_it_is_paced(server_process) -> None:  # noqa: F811
    server = server_process("--rate", "2", "--burst", "2", *QUIET)
    peer, _ = await json_peer(server.port)
    await peer.send(b"".join(b"flood %d\n" % n for n in range(8)))
    notices, texts = [], []
    while len(texts) < 8:
        event = await peer.event()
        if event["type"] == "notice" and event["code"] == "rate_limited":
            notices.append(event)
        elif event["type"] == "message":
            texts.append(event["text"])
    assert len(notices) == 1 and notices[0]["retry_after"] > 0
    assert texts == [f"flood {n}" for n in range(8)]  # paced, never dropped
    await peer.close()


# --- the example bot -----------------------------------------------------------------


def start_bot(port: int, log: Path) -> subprocess.Popen:
    return processes.spawn(
        [sys.executable, str(BOT), "127.0.0.1", str(port), "--log", str(log), "--retry", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def logged(log: Path) -> list[str]:
    return [line.split("\t", 2)[2] for line in log.read_text().splitlines()] if log.exists() else []


async def wait_logged(log: Path, text: str) -> list[str]:
    deadline = time.monotonic() + 2 * TIMEOUT
    while text not in logged(log):
        assert time.monotonic() < deadline, f"{text!r} not logged: {logged(log)}"
        await asyncio.sleep(0.02)
    return logged(log)


async def test_the_example_bot_survives_a_restart_without_losing_or_repeating_a_line(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), *QUIET)
    first = server_process(*flags)
    log = tmp_path / "bot.log"
    bot = start_bot(first.port, log)
    assert await asyncio.to_thread(bot.stdout.readline) == "bot: ready\n"
    ann, _ = await json_peer(first.port, "ann")
    await ann.send("/who")
    assert any(u.get("bot") for u in (await ann.until_event("who"))["users"])
    await ann.send("one")
    await ann.send("!echo a")
    await ann.until_event("message", text="echo: a")
    await ann.send("two")
    await wait_logged(log, "two")
    os.kill(bot.pid, signal.SIGSTOP)  # it hears nothing of what follows until it goes on
    try:
        await ann.send("three")  # while it is stopped: in its socket, unread
        await ann.until_event("message", text="three")
        await ann.close()
        await asyncio.to_thread(stop_gracefully, first)
        second = server_process(*flags, "--port", str(first.port))
        ann, _ = await json_peer(second.port, "ann")
        await ann.send("four")  # while the bot is away: it must ask for it
        await ann.send("!echo b")
        await ann.until_event("message", text="!echo b")
    finally:
        os.kill(bot.pid, signal.SIGCONT)
    await ann.until_event("message", text="echo: b")
    await ann.send("five")
    lines = await wait_logged(log, "five")
    assert lines == ["one", "!echo a", "echo: a", "two", "three", "four", "!echo b", "echo: b",
                     "five"]  # fmt: skip
    _, messages = await history(ann, "/history 50")
    said = [m["text"] for m in messages]
    assert said.count("echo: a") == 1 and said.count("echo: b") == 1
    await ann.close()


async def test_the_example_bot_survives_a_kill_9_and_logs_the_gap_it_cannot_fill(
    server_process,  # noqa: F811
    tmp_path,
) -> None:
    flags = ("--state", str(tmp_path / "state.db"), *QUIET)
    first = server_process(*flags)
    log = tmp_path / "bot.log"
    bot = start_bot(first.port, log)
    assert await asyncio.to_thread(bot.stdout.readline) == "bot: ready\n"
    ann, _ = await json_peer(first.port, "ann")
    await ann.send("one")
    await ann.send("!echo a")
    await ann.until_event("message", text="echo: a")
    await wait_logged(log, "echo: a")
    os.kill(bot.pid, signal.SIGSTOP)
    try:
        await ann.send("saved")  # while it is stopped; in the state file before the kill
        await ann.until_event("message", text="saved")
        await flushed(tmp_path, "saved")
        await ann.send("maybe")  # said just before the kill: it may be lost with it
        await ann.until_event("message", text="maybe")
        kill(first)
        second = server_process(*flags, "--port", str(first.port))
        ann, _ = await json_peer(second.port, "ann")
        await ann.send("four")
        await ann.send("!echo b")
        await ann.until_event("message", text="!echo b")
    finally:
        os.kill(bot.pid, signal.SIGCONT)
    await ann.until_event("message", text="echo: b")
    await ann.send("five")
    lines = await wait_logged(log, "five")
    gap = [line for line in lines if line.endswith("may be missing")]
    assert len(gap) == 1  # told once, where it is
    kept = [line for line in lines if line not in gap]
    assert kept in (
        ["one", "!echo a", "echo: a", "saved", "maybe", "four", "!echo b", "echo: b", "five"],
        ["one", "!echo a", "echo: a", "saved", "four", "!echo b", "echo: b", "five"],
    )  # nothing repeated; "maybe" only if the kill left it in the file
    assert lines.index(gap[0]) == kept.index("four")  # the gap comes right before "four"
    _, messages = await history(ann, "/history 50")  # the newest, across the hole
    said = [m["text"] for m in messages]
    assert said.count("echo: a") == 1 and said.count("echo: b") == 1
    await ann.close()
