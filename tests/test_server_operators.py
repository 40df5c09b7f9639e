"""/oper's password checks off the event loop (issue 18, item 2): the adapter's bounded
pool (chatroom/server/adapter/hashing.py) on a real loop, and a real server whose pool is
held busy while the room goes on."""

from __future__ import annotations

import asyncio
import logging
import threading

from chatroom.server.adapter.hashing import OperatorChecks
from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.core.actions import CheckOperator
from chatroom.server.core.inputs import OperatorChecked
from chatroom.server.core.passwords import hash_password
from tests.conftest import TIMEOUT, Peer

STORED = hash_password("right")


async def until(condition, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def pool(threads: int, queue: int) -> tuple[OperatorChecks, list[OperatorChecked]]:
    loop = asyncio.get_running_loop()
    answers: list[OperatorChecked] = []
    log_once = OncePerInterval(logging.getLogger("chatroom.server"), 60.0, loop)
    return OperatorChecks(threads, queue, loop, answers.append, log_once), answers


async def test_the_pool_takes_threads_plus_queue_checks_and_answers_each_once() -> None:
    checks, answers = pool(1, 1)
    for conn, password in ((1, "right"), (2, "wrong"), (3, "right")):
        checks.submit(CheckOperator(conn, "boss", password, STORED))
    assert checks.pending == 2  # the third had no room: it was not taken
    await until(lambda: len(answers) == 3)
    assert sorted((a.conn, a.ok, a.busy) for a in answers) == [
        (1, True, False),
        (2, False, False),
        (3, False, True),
    ]
    assert checks.pending == 0
    checks.close()


async def test_a_hash_scrypt_refuses_is_a_wrong_password_and_one_log_line(caplog) -> None:
    checks, answers = pool(1, 4)
    refused = STORED.replace("scrypt$16384$8$1$", "scrypt$1048576$64$1$")  # 8 GiB
    with caplog.at_level(logging.ERROR, "chatroom.server"):
        for conn in (1, 2, 3):
            checks.submit(CheckOperator(conn, "boss", "right", refused))
        await until(lambda: len(answers) == 3)
    assert [(a.conn, a.ok, a.busy) for a in answers] == [(c, False, False) for c in (1, 2, 3)]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("an /oper check failed: ValueError(")
    checks.close()


async def test_closing_the_pool_answers_the_checks_still_waiting() -> None:
    checks, answers = pool(1, 8)
    hold = threading.Event()
    checks._pool.submit(hold.wait)  # the one thread is busy
    for conn in range(1, 5):
        checks.submit(CheckOperator(conn, "boss", "right", STORED))
    checks.close()
    hold.set()
    await until(lambda: len(answers) == 4)
    assert all(a.busy and not a.ok for a in answers)
    checks.submit(CheckOperator(9, "boss", "right", STORED))  # after close: busy at once
    await until(lambda: len(answers) == 5)
    assert answers[-1] == OperatorChecked(9, "boss", ok=False, busy=True)


async def from_address(server, source: str) -> Peer:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=(source, 0), limit=2**20
    )
    peer = Peer(reader, writer)
    await peer.until_contains(f"*** {peer.local_id} joined")
    return peer


async def test_the_room_goes_on_while_the_pool_is_held_busy(make_server, tmp_path) -> None:
    ops = tmp_path / "ops"
    ops.write_text(f"boss {STORED}\n")
    server = await make_server(ops_file=str(ops), oper_check_threads=1, oper_check_queue=1)
    hold = threading.Event()
    server.checks._pool.submit(hold.wait)  # its one thread is busy until released
    try:
        bystander = await from_address(server, "127.0.0.1")
        first, second, third = [await from_address(server, f"127.0.0.{k}") for k in (2, 3, 4)]
        await first.send("/oper boss wrong")
        await second.send("/oper boss right")
        await bystander.send("/ping meanwhile")  # answered while both checks wait
        assert await bystander.until_contains("pong") == "*** pong meanwhile"
        await first.send("/oper boss right")  # its first is still being checked
        line = await first.until(lambda line: line.startswith("error:"))
        assert line == "error: your last /oper is still being checked; wait for its answer"
        await third.send("/oper boss right")  # no room for a third: refused at once
        line = await third.until(lambda line: line.startswith("error:"))
        assert line == (
            "error: the server is busy checking other /oper attempts; try again in a moment"
        )
    finally:
        hold.set()
    line = await first.until(lambda line: line.startswith("error:"))
    assert line == "error: wrong operator name or password"
    assert "now an operator" in await second.until_contains("operator")
    await third.send("/oper boss right")
    assert "now an operator" in await third.until_contains("operator")
    for peer in (bystander, first, second, third):
        await peer.close()
