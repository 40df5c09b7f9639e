"""The server end to end over real sockets on 127.0.0.1: every command in both modes."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import TIMEOUT, Peer


async def test_join_is_welcomed_and_announced_to_everyone(server, make_peer):
    alice = await make_peer(server)
    bob = await Peer.connect(server.port)
    welcome = await bob.line()
    assert welcome.startswith(f"*** Welcome, {bob.local_id}!")
    assert "2 online" in welcome and "Type /help" in welcome
    assert await bob.line() == f"*** {bob.local_id} joined"
    assert await alice.line() == f"*** {bob.local_id} joined"
    await bob.close()


async def test_chat_reaches_everyone_including_the_sender(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")  # bob's join
    await alice.send("hello room")
    expected = f"<{alice.local_id}> hello room"
    assert await alice.line() == expected
    assert await bob.line() == expected


async def test_several_senders_are_seen_in_one_order_by_everyone(server, make_peer):
    peers = [await make_peer(server) for _ in range(4)]
    for peer in peers:
        await peer.to_json()
    per_sender = 25
    await asyncio.gather(
        *(
            peer.send("".join(f"m{i}-{n}\n" for n in range(per_sender)).encode())
            for i, peer in enumerate(peers)
        )
    )
    seen = []
    for peer in peers:
        events = [await peer.until_event("message") for _ in range(per_sender * len(peers))]
        seen.append([(e["seq"], e["text"]) for e in events])
    assert all(order == seen[0] for order in seen)
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for i in range(len(peers)):  # each sender's lines keep their own order
        mine = [text for _, text in seen[0] if text.startswith(f"m{i}-")]
        assert mine == [f"m{i}-{n}" for n in range(per_sender)]


async def test_who_lists_users_with_ids_to_the_requester_only(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    for command in ("who", "/who", "/names"):
        await alice.send(command)
        assert await alice.line() == "Online users (2):"
        lines = {await alice.line(), await alice.line()}
        assert any(alice.local_id in line for line in lines)
        assert any(bob.local_id in line for line in lines)
    await bob.send("after")  # bob saw none of alice's who replies
    assert await bob.line() == f"<{bob.local_id}> after"


async def test_rename_in_both_forms_is_announced(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send("rename|Duke")
    assert await bob.line() == f"*** {alice.local_id} is now Duke"
    await alice.send("/nick Earl")
    assert await bob.line() == "*** Duke is now Earl"
    await alice.send("hi")
    assert await bob.line() == "<Earl> hi"


@pytest.mark.parametrize(
    ("attempt", "code"),
    [
        ("rename|duke", "name_taken"),  # names are unique without regard to case
        ("/nick has space", "name_invalid"),
        ("rename|a|b", "name_invalid"),
        ("rename|" + "x" * 33, "name_invalid"),
        ("rename|bell\x07", "name_invalid"),  # refused, not cleaned
        ("/nick", "bad_usage"),
    ],
)
async def test_refused_rename_errors_to_the_requester_and_keeps_the_name(
    server, make_peer, attempt, code
):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send("rename|Duke")
    await bob.until_contains("is now Duke")
    await bob.to_json()
    await bob.send(attempt)
    error = await bob.event()
    assert error["type"] == "error" and error["code"] == code
    await bob.send("still me")
    message = await bob.until_event("message")
    assert message["name"] == bob.local_id
    await alice.send("check")
    assert await alice.until_contains("still me") == f"<{bob.local_id}> still me"


async def test_private_message_goes_to_sender_and_receiver_only(server, make_peer):
    alice, bob, carol = [await make_peer(server) for _ in range(3)]
    await bob.send("/nick bob")
    await alice.until_contains("is now bob")
    await alice.send("/msg BOB psst")  # names match case-insensitively
    expected = f"[private] {alice.local_id} -> bob: psst"
    assert await alice.line() == expected
    assert await bob.until_contains("[private]") == expected
    await carol.send("/msg nobody hi")
    assert await carol.until_contains("error") == "error: no user named nobody is online"


async def test_private_message_never_reaches_a_third_user(server, make_peer):
    alice, bob, carol = [await make_peer(server) for _ in range(3)]
    await carol.to_json()
    await alice.send(f"/msg {bob.local_id} secret")
    await bob.until_contains("secret")
    await alice.send("public")
    events = []
    async with asyncio.timeout(5):
        while not events or events[-1].get("text") != "public":
            events.append(await carol.event())
    assert not [e for e in events if e["type"] == "private"]


async def test_me_quit_help_and_unknown_commands(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send("/me waves")
    assert await bob.line() == f"* {alice.local_id} waves"
    await alice.send("/help")
    assert await alice.until_contains("Commands:") == "Commands:"
    await alice.until_contains("Any other line is chat")
    await alice.send("/frobnicate now")
    assert (await alice.line()).startswith("error: unknown command /frobnicate")
    await alice.send("//frobnicate")  # the escape sends it as chat
    assert await bob.line() == f"<{alice.local_id}> /frobnicate"
    await alice.send("/quit see you")
    assert await bob.line() == f"*** {alice.local_id} left (quit: see you)"
    rest = await alice.closed()  # read() returns only once the server has closed
    assert rest == f"<{alice.local_id}> /frobnicate\n".encode()


async def test_ping_answers_pong_to_the_sender_only_and_keeps_an_idle_user(make_server, make_peer):
    server = await make_server(idle_timeout=1.0)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send("/ping")
    assert await alice.line() == "*** pong"
    await alice.to_json()
    # Carol, who joined after them, says nothing: once she is kicked, alice and bob have
    # been in for longer than the idle timeout, alice by her pings, bob by empty lines.
    carol = await make_peer(server)
    kicked = asyncio.create_task(carol.closed(timeout=4 * TIMEOUT))
    while not kicked.done():
        await alice.send("/ping hi")
        await bob.send("")
        pong = await alice.until_event("notice")
        assert (pong["code"], pong["text"]) == ("pong", "pong hi")
        await asyncio.sleep(0.05)
    assert b"disconnected" in kicked.result()
    await bob.send("still here")  # bob's inbox: no pong, only the room
    seen = [await bob.line()]
    while seen[-1] != f"<{bob.local_id}> still here":
        seen.append(await bob.line())
    assert not any("pong" in line for line in seen), seen
    await alice.send("/ping")
    assert (await alice.until_event("notice"))["code"] == "pong"


async def test_empty_lines_are_not_broadcast(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send(b"\n   \n\r\nreal\n")
    assert await bob.line() == f"<{alice.local_id}> real"


async def test_json_mode_every_type(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await bob.send("before json")
    await alice.send("/format json")
    first_json = await alice.until(lambda line: line.startswith("{"))
    assert first_json == '{"type":"format","format":"json"}'
    welcome = await alice.event()
    assert welcome == {
        "type": "welcome",
        "id": alice.local_id,
        "name": alice.local_id,
        "idle_timeout": 0.0,
        "users": 2,
        "epoch": welcome["epoch"],  # this process's (see the epoch test below)
        "room": "main",
    }
    history = await alice.event()
    assert history["type"] == "message" and history["history"] is True
    assert history["text"] == "before json"

    await bob.send("hi")
    message = await alice.event()
    assert message["type"] == "message" and message["text"] == "hi" and "history" not in message
    await bob.send("/me waves")
    action = await alice.event()
    assert action["type"] == "action" and action["seq"] == message["seq"] + 1
    await bob.send("/nick bob")
    rename = await alice.event()
    assert rename == {
        "type": "rename",
        "seq": action["seq"] + 1,
        "ts": rename["ts"],
        "id": bob.local_id,
        "old": bob.local_id,
        "new": "bob",
        "room": "main",
    }
    await bob.send("/msg " + alice.local_id + " secret")
    private = await alice.event()
    assert private == {
        "type": "private",
        "ts": private["ts"],
        "from": "bob",
        "to": alice.local_id,
        "text": "secret",
    }
    await alice.send("/who")
    who = await alice.event()
    assert who["type"] == "who"
    assert {u["id"] for u in who["users"]} == {alice.local_id, bob.local_id}
    assert all(isinstance(u["idle"], int) for u in who["users"])
    await alice.send("/help")
    help_notice = await alice.event()
    assert help_notice["type"] == "notice" and help_notice["code"] == "help"
    await alice.send("/nope")
    assert (await alice.event())["code"] == "unknown_command"
    await alice.send("/msg ghost hi")
    assert (await alice.event())["code"] == "unknown_user"
    await bob.send("/quit bye")
    leave = await alice.event()
    assert leave == {
        "type": "leave",
        "seq": rename["seq"] + 1,
        "ts": leave["ts"],
        "id": bob.local_id,
        "name": "bob",
        "reason": "quit",
        "text": "bye",
        "room": "main",
    }
    carol = await make_peer(server, joined=False)
    join = await alice.event()
    assert join == {
        "type": "join",
        "seq": leave["seq"] + 1,
        "ts": join["ts"],
        "id": carol.local_id,
        "name": carol.local_id,
        "room": "main",
    }


async def test_json_lines_are_compact(server, make_peer):
    alice = await make_peer(server)
    await alice.to_json()
    await alice.send("a b")
    raw = await alice.line()
    assert raw.startswith('{"type":"message","seq":') and ", " not in raw and '": ' not in raw


async def test_format_text_switches_back(server, make_peer):
    alice = await make_peer(server)
    await alice.to_json()
    await alice.send("/format text")
    assert await alice.line() == "*** output format is now text"
    assert (await alice.line()).startswith("*** Welcome")
    await alice.send("/format yaml")
    assert await alice.line() == "error: usage: /format json|text"


async def test_leave_reasons_eof_and_reset(server, make_peer):
    alice, bob, carol = [await make_peer(server) for _ in range(3)]
    await alice.to_json()
    bob.writer.write_eof()
    leave = await alice.until_event("leave")
    assert (leave["id"], leave["reason"]) == (bob.local_id, "eof")
    carol.writer.transport.abort()  # RST rather than FIN
    leave = await alice.until_event("leave")
    assert leave["id"] == carol.local_id and leave["reason"] in ("error", "eof")
    await alice.send("/who")
    who = await alice.until_event("who")
    assert [u["id"] for u in who["users"]] == [alice.local_id]


async def test_leaver_is_gone_from_who_at_once(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await bob.send("/quit")
    await alice.until_contains("left")
    await alice.send("who")
    assert await alice.line() == "Online users (1):"


async def test_history_is_replayed_to_newcomers_and_bounded(make_server, make_peer):
    server = await make_server(history=3)
    alice = await make_peer(server)
    for n in range(5):
        await alice.send(f"msg {n}")
    await alice.until_contains("msg 4")
    bob = await Peer.connect(server.port)
    assert (await bob.line()).startswith("*** Welcome")
    replay = [await bob.line() for _ in range(3)]
    assert [line.split("] ", 1)[1] for line in replay] == [
        f"<{alice.local_id}> msg {n}" for n in (2, 3, 4)
    ]
    assert all(line.startswith("[history ") for line in replay)
    assert await bob.line() == f"*** {bob.local_id} joined"
    await bob.close()


async def test_idle_timeout_kicks_and_tells_everyone(make_server, make_peer):
    server = await make_server(idle_timeout=1.0)
    alice = await make_peer(server)
    bob = await make_peer(server)
    await alice.to_json()
    await bob.to_json()
    # Alice stays active (a line every 50 ms); bob says nothing and is kicked with a notice.
    kick = asyncio.create_task(bob.until_event("notice", timeout=4 * TIMEOUT))
    while not kick.done():
        await alice.send("")
        await asyncio.sleep(0.05)
    notice = kick.result()
    assert notice["code"] == "timeout"
    assert await bob.closed() == b""
    leave = await alice.until_event("leave")
    assert (leave["id"], leave["reason"]) == (bob.local_id, "timeout")
    await alice.send("who")
    who = await alice.until_event("who")
    assert [u["id"] for u in who["users"]] == [alice.local_id]


async def test_idle_timeout_text_mode_line_for_others(make_server, make_peer):
    server = await make_server(idle_timeout=0.3)
    alice = await make_peer(server)
    bob = await make_peer(server)
    assert await bob.until_contains("timed out") == f"*** {alice.local_id} timed out"


async def test_idle_timeout_zero_disables(make_server, make_peer):
    """The server hands the room no timer at all (the room's rule: tests/test_room_idle.py),
    and says so in the welcome."""
    server = await make_server(idle_timeout=0)
    alice = await make_peer(server, joined=False)
    assert "no idle timeout" in await alice.line()
    [conn] = [m.conn for m in server.room.state.members()]
    assert server.room.next_idle_check(conn) is None
    await alice.send("still here")
    assert await alice.until_contains("still here") == f"<{alice.local_id}> still here"


async def test_long_line_is_refused_and_the_connection_goes_on(make_server, make_peer):
    server = await make_server(max_line=100)
    alice = await make_peer(server)
    await alice.send("x" * 100)  # exactly the limit is allowed
    assert await alice.line() == f"<{alice.local_id}> " + "x" * 100
    await alice.send(b"y" * 101 + b"\nafter\n")
    assert (await alice.line()).startswith("error: line too long")
    assert await alice.line() == f"<{alice.local_id}> after"


async def test_megabytes_without_newline_cost_bounded_memory(make_server, make_peer):
    server = await make_server(max_line=1024)
    alice = await make_peer(server)
    await alice.to_json()
    chunk = b"z" * 65536
    for _ in range(64):  # 4 MiB, no newline
        alice.writer.write(chunk)
    await alice.writer.drain()
    error = await alice.event()
    assert error["code"] == "line_too_long"
    (conn,) = server._connections.values()
    assert conn._decoder.buffered <= 1024
    await alice.send(b"z" * 1000 + b"\nok\n")
    assert (await alice.until_event("message"))["text"] == "ok"


async def test_invalid_utf8_is_replaced_not_fatal(server, make_peer):
    alice = await make_peer(server)
    await alice.send(b"caf\xc3\xa9 \xfe\xff ok\n")  # (0xFF then 0xFE would be telnet's DONT)
    assert await alice.line() == f"<{alice.local_id}> café \ufffd\ufffd ok"


async def test_escape_sequences_never_reach_other_terminals(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send(
        b"\x1b[2J\x1b]0;pwned\x07red \x1b[31mtext\x1b[0m\x08\x7f" + "\u009b31m\r\n".encode()
    )
    raw = await bob.reader.readline()
    assert raw == f"<{alice.local_id}> red text\n".encode()
    assert b"\x1b" not in raw and b"\r" not in raw


async def test_a_line_separator_never_reaches_other_clients(server, make_peer):
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.until_contains("joined")
    await alice.send("hi\u2028<admin> fake\u2029\u200b\r\n".encode())
    raw = await bob.reader.readline()
    assert raw == f"<{alice.local_id}> hi<admin> fake\n".encode()
    assert raw.decode().splitlines() == [f"<{alice.local_id}> hi<admin> fake"]


async def test_line_endings_crlf_and_lone_cr(server, make_peer):
    alice = await make_peer(server)
    await alice.send(b"one\r\ntwo\rthree\n")
    assert [await alice.line() for _ in range(3)] == [  # answered in "\r\n" (test_raw_clients)
        f"<{alice.local_id}> {word}\r" for word in ("one", "two", "three")
    ]


async def test_lone_cr_line_is_handled_without_waiting_for_lf(server, make_peer):
    alice = await make_peer(server)
    await alice.send(b"now\r")
    assert await alice.line(timeout=2) == f"<{alice.local_id}> now\r"


async def test_server_full(make_server, make_peer):
    server = await make_server(max_clients=2)
    await make_peer(server)
    await make_peer(server)
    third = await Peer.connect(server.port)
    data = await third.closed()
    assert data.startswith(b"*** server full")
    assert data.count(b"\n") == 1
    await third.close()


async def test_json_client_sees_server_full_as_a_notice(make_server, make_peer):
    server = await make_server(max_clients=1)
    await make_peer(server)
    late = await Peer.connect(server.port)
    assert (await late.closed()).startswith(b"*** server full")


async def test_slow_reader_does_not_delay_others_and_is_dropped(make_server, make_peer):
    server = await make_server()
    stuck = await make_peer(server)
    stuck.writer.transport.pause_reading()  # this peer never reads again
    alice, bob = await make_peer(server), await make_peer(server)
    await bob.to_json()
    drain_alice = asyncio.create_task(alice.reader.read(-1))  # alice reads her echoes
    payload = "p" * 1000
    window, total = 50, 16_000  # 16 MB to the stuck peer: past its sendq and kernel buffers
    got: list[int] = []
    slow_leave = None
    async with asyncio.timeout(60):
        for first in range(0, total, window):
            await alice.send(
                "".join(f"{n} {payload}\n" for n in range(first, first + window)).encode()
            )
            while len(got) < first + window:
                event = await bob.event()
                if event["type"] == "message":
                    got.append(int(event["text"].split()[0]))
                elif event["type"] == "leave":
                    slow_leave = event
    assert got == list(range(total))  # bob lost nothing and saw one order
    assert slow_leave is not None
    assert (slow_leave["id"], slow_leave["reason"]) == (stuck.local_id, "slow")
    drain_alice.cancel()


async def test_a_reply_bigger_than_the_sendq_does_not_make_a_reader_slow(make_server, make_peer):
    server = await make_server(max_sendq=2048)
    crowd = [await Peer.connect(server.port) for _ in range(60)]  # who lists ~60 x 40 bytes
    asker = await make_peer(server)
    await asker.to_json()
    await asker.send("/who")
    who = await asker.until_event("who")
    assert len(who["users"]) == 61
    await asker.send("still here")
    assert (await asker.until_event("message"))["text"] == "still here"
    for peer in crowd:
        await peer.close()


async def test_flood_is_paced_not_dropped(make_server, make_peer):
    server = await make_server(rate=20, burst=5)
    alice = await make_peer(server)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await alice.send("".join(f"f{n}\n" for n in range(25)).encode())
    lines = [await alice.line() for _ in range(25)]
    elapsed = loop.time() - start
    assert lines == [f"<{alice.local_id}> f{n}" for n in range(25)]
    # 5 at once, then 20 more at 20/s: pacing must have held them back for about a second.
    assert elapsed >= 0.8


async def test_half_closed_client_still_gets_what_it_is_owed(server):
    peer = await Peer.connect(server.port)
    peer.writer.write(b"who\n")
    peer.writer.write_eof()
    data = (await peer.closed()).decode()
    assert "Online users (1):" in data
    await peer.close()


async def test_half_closed_client_gets_replies_to_lines_paced_after_its_eof(make_server):
    server = await make_server(rate=50, burst=2)
    peer = await Peer.connect(server.port)
    peer.writer.write(b"".join(b"line %d\n" % n for n in range(8)) + b"who\n")
    peer.writer.write_eof()  # the FIN is sent long before the paced lines are handled
    data = (await peer.closed()).decode()
    assert f"<{peer.local_id}> line 7" in data
    assert data.rstrip("\n").endswith(f"({peer.local_id}, idle 0s)")
    await peer.close()


async def test_garbage_never_crashes_the_server(server, make_peer):
    watcher = await make_peer(server)
    evil = await make_peer(server)
    await evil.send(bytes(range(256)) * 8 + b"\n\x00\x00/\n/ \n|\nrename|\n/msg\n/msg x\n/me\n")
    await evil.send("/format")
    await evil.send("after garbage")
    await watcher.until_contains("after garbage")


async def test_shutdown_tells_everyone_and_closes(make_server, make_peer):
    server = await make_server()
    alice = await make_peer(server)
    await alice.to_json()
    shutdown = asyncio.create_task(server.shutdown())
    notice = await alice.event()
    assert (notice["type"], notice["code"]) == ("notice", "shutdown")
    assert await alice.closed() == b""
    await shutdown


async def test_who_is_paced_by_its_cost(make_server, make_peer):
    server = await make_server(rate=5, burst=3, who_users_per_line=1)
    crowd = [await Peer.connect(server.port) for _ in range(9)]
    asker = await make_peer(server)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asker.send(b"who\nwho\n")
    await asker.until_contains("Online users (10)")
    await asker.until_contains("Online users (10)")
    # The first who listed 10 users: 10 lines' worth more than its own, a debt of 8 tokens
    # at 5 a second before the second may go.
    assert loop.time() - start >= 1.5
    for peer in crowd:
        await peer.close()


async def test_each_server_process_has_its_own_epoch_in_the_welcome(make_server, make_peer):
    # A restarted server numbers from 1 again: its welcome says it is another history.
    epochs = []
    for _ in range(2):
        server = await make_server()
        peer = await make_peer(server)
        welcome = await peer.to_json()
        assert welcome["epoch"] and (await peer.to_json())["epoch"] == welcome["epoch"]
        epochs.append(welcome["epoch"])
    assert epochs[0] != epochs[1]
