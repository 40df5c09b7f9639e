"""The WebSocket door (--ws-port): the same room, the same rules, with a real client.

Every WebSocket user here is websockets' own client on a real socket; what no client would
send (a half-sent upgrade, forty headers, pings it never reads the answers to) is written
by hand on a raw socket. Each rule a WebSocket can break gets a close with its reason, and
the room goes on for everyone else: each such test ends with a TCP user still chatting.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode

from tests.conftest import TIMEOUT
from tests.test_server_moderation import ops_file  # noqa: F401 (a fixture)
from tests.test_tls import closed_by_server, still_open
from tests.ws_helpers import WsPeer, http_answer, raw_upgrade


@pytest.fixture
async def room(make_server):
    """A room with a WebSocket door beside its TCP port."""

    async def start(**overrides):
        return await make_server(ws_port=0, **overrides)

    return start


@pytest.fixture
async def ws_peers():
    peers: list[WsPeer] = []

    async def make(server, *, joined: bool = True, **options) -> WsPeer:
        peer = await WsPeer.connect(server.door.port, **options)
        peers.append(peer)
        if joined:
            await peer.until_contains(f"*** {peer.local_id} joined")
        return peer

    yield make
    for peer in peers:
        await peer.close()


async def still_chatting(server, make_peer, text: str = "still here") -> None:
    """The room still serves a user (TCP, or whatever ``make_peer`` makes): it hears itself
    say ``text``."""
    peer = await make_peer(server)
    await peer.send(text)
    await peer.until_contains(text)


# --- the same room ----------------------------------------------------------------------------


async def test_a_websocket_user_and_an_nc_user_hear_each_other(room, make_peer, ws_peers):
    server = await room()
    nc = await make_peer(server)
    browser = await ws_peers(server)
    await nc.until_contains(f"*** {browser.local_id} joined")
    await browser.send("hello from a browser")
    assert await nc.until_contains("hello from a browser") == (
        f"<{browser.local_id}> hello from a browser"
    )
    await nc.send("hello from nc")
    # One line is one message: exactly the line nc reads, without its line end.
    assert await browser.until_contains("hello from nc") == f"<{nc.local_id}> hello from nc"
    await browser.close()
    assert await nc.until_contains(" left") == f"*** {browser.local_id} left"


async def test_a_message_is_a_line_and_its_line_end_is_optional(room, ws_peers):
    server = await room()
    bot = await ws_peers(server)
    await bot.send("one\n")
    await bot.send("two\r\n")
    await bot.send("three\nfour")  # as nc would send these bytes: two lines
    await bot.send("five")
    said = [await bot.until_contains(f"> {word}") for word in ("one", "two", "three", "four")]
    assert [line.rsplit(" ", 1)[1] for line in said] == ["one", "two", "three", "four"]
    assert (await bot.line()).endswith("> five")  # nothing in between: no empty lines


async def test_json_mode_over_websocket_is_one_event_a_message(room, ws_peers):
    server = await room()
    bot = await ws_peers(server)
    await bot.send("/format json")
    await bot.until(lambda line: line == '{"type":"format","format":"json"}')
    assert '"type":"welcome"' in await bot.line()
    await bot.send("hi")
    assert '"type":"message"' in await bot.until_contains('"text":"hi"')


async def test_flood_control_paces_a_websocket_and_loses_no_line(room, make_peer, ws_peers):
    server = await room(rate=5, burst=1)
    nc = await make_peer(server)
    bot = await ws_peers(server)
    for n in range(6):
        await bot.send(f"line {n}")
    got = [await nc.until_contains(f"line {n}") for n in range(6)]
    assert [line.rsplit(" ", 1)[1] for line in got] == [str(n) for n in range(6)]


async def test_lines_sent_just_before_a_close_are_still_said(room, make_peer, ws_peers):
    server = await room(rate=5, burst=1)
    nc = await make_peer(server)
    bot = await ws_peers(server)
    for n in range(4):
        await bot.send(f"last words {n}")
    await bot.close()  # the lines wait for flood control; the close frame came after them
    for n in range(4):
        await nc.until_contains(f"last words {n}")
    assert await nc.until_contains(" left") == f"*** {bot.local_id} left"


async def test_an_idle_websocket_is_timed_out_like_any_user(room, ws_peers):
    server = await room(idle_timeout=0.5)
    bot = await ws_peers(server)
    lines, close = await bot.closed()
    assert lines[-1] == "*** disconnected: no line from you for 0.5s", lines
    assert close is not None and close.code == 1000


async def test_a_websocket_that_does_not_read_is_dropped_as_slow(room, make_peer, ws_peers):
    server = await room(max_sendq=16_384)
    nc = await make_peer(server)
    # Its client queues one message and then stops reading the socket.
    stalled = await ws_peers(server, max_queue=1)
    await nc.until_contains(f"{stalled.local_id} joined")
    for n in range(2000):
        await nc.send(f"filler {n} " + "x" * 200)
        if n % 50 == 0:
            await asyncio.sleep(0)
    slow = await nc.until_contains(f"{stalled.local_id} was", timeout=30)
    assert "too slow to read" in slow


async def test_admission_counts_websockets_per_address(room, make_peer, ws_peers):
    server = await room(max_per_ip=2, exempt_ip=())
    await ws_peers(server)
    await make_peer(server)  # TCP and WebSocket count together
    # At the cap, the upgrade is refused before it is read (as a TLS handshake is), with a
    # status and a line a bot can show; a TCP newcomer gets the room's own line.
    with pytest.raises(InvalidStatus) as refused:
        await WsPeer.connect(server.door.port)
    assert refused.value.response.status_code == 503
    assert b"too many connections from your address" in refused.value.response.body
    nc = await make_peer(server, joined=False)
    assert "too many connections" in await nc.line()


async def test_a_full_room_tells_a_websocket_newcomer_and_closes(room, ws_peers):
    server = await room(max_clients=1)
    await ws_peers(server)
    late = await ws_peers(server, joined=False)
    lines, close = await late.closed()
    assert lines == ["*** server full (1 users); try again later"], lines
    assert close is not None and close.code == 1000


async def test_a_ban_reaches_a_websocket_user_behind_a_trusted_proxy(
    room,
    make_peer,
    ws_peers,
    ops_file,  # noqa: F811
):
    server = await room(ops_file=ops_file, proxy_protocol_from=("127.0.0.0/8",))
    # 127.0.0.1 is the trusted proxy: its TCP connections would begin with a PROXY header,
    # and a WebSocket it sends with no X-Forwarded-For is its own (a health check's).
    alice = await ws_peers(server)
    await alice.send("/oper boss s3cret")
    await alice.until_contains("now an operator")
    forwarded = {"additional_headers": {"X-Forwarded-For": "203.0.113.7"}}
    bob = await ws_peers(server, joined=False, **forwarded)
    welcome = await bob.line()
    assert "Welcome, 203.0.113.7:" in welcome, welcome  # the client, not the proxy
    await alice.send("/ban 203.0.113.7 1h spam")
    lines, close = await bob.closed()
    assert any("banned by" in line for line in lines), lines
    again = await ws_peers(server, joined=False, **forwarded)
    lines, close = await again.closed()
    assert lines == ["*** your address is banned from this server for 1h more: spam"]
    await still_chatting(server, ws_peers)  # 127.0.0.1 itself is not banned


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(room, ws_peers):
    server = await room()  # --proxy-protocol-from: nobody
    bot = await ws_peers(server, joined=False, additional_headers={"X-Forwarded-For": "1.2.3.4"})
    assert f"Welcome, {bot.local_id}!" in await bot.line()


async def test_x_forwarded_for_reads_the_chain_from_the_right(room, ws_peers):
    server = await room(proxy_protocol_from=("127.0.0.0/8", "10.0.0.0/8"))
    chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.1.2.3"}  # 6.6.6.6: a client's lie
    bot = await ws_peers(server, joined=False, additional_headers=chain)
    assert "Welcome, 198.51.100.4:" in await bot.line()


async def test_a_malformed_x_forwarded_for_from_a_trusted_proxy_is_refused(room, ws_peers):
    server = await room(proxy_protocol_from=("127.0.0.0/8",))
    with pytest.raises(InvalidStatus) as refused:
        await WsPeer.connect(server.door.port, additional_headers={"X-Forwarded-For": "nope"})
    assert refused.value.response.status_code == 400
    assert b"not an address" in refused.value.response.body
    await still_chatting(server, ws_peers)


# --- what only a WebSocket can get wrong -----------------------------------------------------


async def test_a_binary_message_is_closed_with_a_reason(room, make_peer, ws_peers):
    server = await room()
    nc = await make_peer(server)
    bot = await ws_peers(server)
    await bot.send(b"\x00\x01binary")
    _, close = await bot.closed()
    assert close is not None and close.code == 1003
    assert "binary messages are not accepted" in close.reason
    assert "left (connection lost)" in await nc.until_contains(f"{bot.local_id} left")
    await still_chatting(server, make_peer)


async def test_invalid_utf8_is_closed_with_a_reason(room, make_peer, ws_peers):
    server = await room()
    bot = await ws_peers(server)
    await bot.ws.send(b"caf\xe9 au lait", text=True)  # Latin-1, in a text frame
    _, close = await bot.closed()
    assert close is not None and close.code == 1007 and "invalid" in close.reason
    await still_chatting(server, make_peer)


async def test_a_line_too_long_is_answered_and_a_message_too_big_is_closed(
    room, make_peer, ws_peers
):
    server = await room(max_line=64, ws_max_message=1024)
    bot = await ws_peers(server)
    await bot.send("x" * 65)  # over --max-line, within a message: as over TCP
    assert "too long" in await bot.until_contains("too long")
    await bot.send("still connected")
    await bot.until_contains("> still connected")
    await bot.send("y" * 1025)  # over the message limit: closed
    _, close = await bot.closed()
    assert close is not None and close.code == 1009 and "exceeds limit" in close.reason
    await still_chatting(server, make_peer)


async def test_fragments_make_one_line_and_count_against_the_limit(room, make_peer, ws_peers):
    server = await room(max_line=64, ws_max_message=1024)
    bot = await ws_peers(server)
    await bot.send(["frag", "ment", "ed"])  # one message in three frames
    await bot.until_contains("> fragmented")
    await bot.send(["z" * 100] * 11)  # 1100 bytes in small frames: too big all the same
    _, close = await bot.closed()
    assert close is not None and close.code == 1009
    await still_chatting(server, make_peer)


# --- before the upgrade: what a browser page or a scanner may try -----------------------------


async def test_only_listed_origins_may_open_it(room, ws_peers):
    server = await room(ws_origin=("https://chat.example.org",))
    page = await ws_peers(server, origin="https://chat.example.org")
    await page.send("from the room's own page")
    await page.until_contains("from the room's own page")
    with pytest.raises(InvalidStatus) as refused:
        await WsPeer.connect(server.door.port, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    await ws_peers(server)  # no Origin at all: not a browser (a bot), let in


async def test_any_path_but_the_root_is_not_found(room, ws_peers):
    server = await room()
    sock = raw_upgrade(server.door.port, path="/admin")
    answer = await http_answer(sock)
    assert answer.startswith("HTTP/1.1 404"), answer
    sock.close()
    await ws_peers(server)


async def test_a_handshake_never_finished_is_dropped_and_counts_against_max_per_ip(
    room, make_peer, ws_peers
):
    server = await room(ws_handshake_timeout=1.0, max_per_ip=2, exempt_ip=())
    # Slowloris: two upgrades that never end their headers.
    slow = [raw_upgrade(server.door.port, end=False) for _ in range(2)]
    await asyncio.sleep(0.1)
    with pytest.raises(InvalidStatus) as refused:  # the address is at its cap meanwhile
        await WsPeer.connect(server.door.port)
    assert refused.value.response.status_code == 503
    assert all(still_open(sock) for sock in slow), "refused only once the timeout had passed"
    for sock in slow:
        assert await closed_by_server(sock), "an upgrade never finished was not dropped"
        sock.close()
    await ws_peers(server)  # the address may come in again


async def test_an_upgrade_with_too_many_or_too_long_headers_is_refused(room, ws_peers):
    server = await room()
    many = "".join(f"X-Filler-{n}: {n}\r\n" for n in range(40))
    sock = raw_upgrade(server.door.port, extra=many)
    # 431 from websockets 17; before it, the connection is closed without an answer.
    answer = await http_answer(sock)
    assert answer == "" or answer.startswith("HTTP/1.1 431"), f"40 headers taken: {answer}"
    sock.close()
    sock = raw_upgrade(server.door.port, extra=f"Cookie: {'c' * 5000}\r\n")
    answer = await http_answer(sock)
    assert answer == "" or answer.startswith("HTTP/1.1 431"), f"a 5000-byte line: {answer}"
    sock.close()
    await ws_peers(server)


async def test_compression_is_not_offered(room, ws_peers):
    server = await room()
    bot = await ws_peers(server, compression="deflate")  # the client asks for it
    assert bot.ws.protocol.extensions == []
    assert "Sec-WebSocket-Extensions" not in bot.ws.response.headers


async def test_a_ping_flood_from_a_client_that_never_reads_is_not_buffered(room, make_peer):
    """Each ping is answered with a pong; a client that sends pings and reads nothing must
    not make the server hold the pongs: once its output is backed up, the server stops
    reading it, and the flood stays in the flooder's own socket buffer."""
    server = await room(max_sendq=65_536)
    sock = raw_upgrade(server.door.port)
    assert (await http_answer(sock)).startswith("HTTP/1.1 101")
    # It reads nothing: the pongs fill its receive buffer and the server's send buffer (a
    # few MiB on loopback), then the server's own buffer, past which it must stop reading.
    ping = Frame(Opcode.PING, b"p" * 125).serialize(mask=True)
    burst = ping * 512  # 67 KB a send
    loop = asyncio.get_running_loop()
    sent, limit = 0, 64 * 2**20  # a server that read on would take all 64 MiB
    async with asyncio.timeout(TIMEOUT * 6):
        while sent < limit:
            try:
                sent += await asyncio.wait_for(loop.sock_sendall(sock, burst), 2) or len(burst)
            except TimeoutError:
                break  # blocked: the server stopped reading
    assert sent < limit, "the server read a 64 MiB ping flood it could not answer"
    await still_chatting(server, make_peer)
    sock.close()
