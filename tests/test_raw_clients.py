"""Raw clients nobody here wrote, over real sockets: each is answered in the line ending it
uses (telnet, PuTTY's raw mode and Windows nc send "\\r\\n"; nc "\\n"), and telnet's
commands (IAC ...) never reach the room."""

from __future__ import annotations

import asyncio

from tests.conftest import TIMEOUT, Peer

IAC, WILL, WONT, DO, DONT, SB, SE, IP = 0xFF, 0xFB, 0xFC, 0xFD, 0xFE, 0xFA, 0xF0, 0xF4
TIMING_MARK, ECHO, SGA, NAWS, TTYPE = 0x06, 0x01, 0x03, 0x1F, 0x18


async def raw_line(peer: Peer) -> bytes:
    """One line as it came, its ending included."""
    data = await asyncio.wait_for(peer.reader.readline(), TIMEOUT)
    if not data:
        raise EOFError("the server closed the connection")
    return data


async def raw_until(peer: Peer, text: bytes) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = await raw_line(peer)
            if text in line:
                return line


async def test_a_crlf_client_is_answered_in_crlf_and_an_lf_client_in_lf(server, make_peer):
    lf, crlf = await make_peer(server), await make_peer(server)
    await crlf.send(b"/nick win\r\n")
    assert await raw_until(crlf, b"is now win") == f"*** {crlf.local_id} is now win\r\n".encode()
    assert await raw_until(lf, b"is now win") == f"*** {crlf.local_id} is now win\n".encode()
    await crlf.send(b"hello from windows\r\n")
    assert await raw_until(crlf, b"hello from") == b"<win> hello from windows\r\n"
    assert await raw_until(lf, b"hello from") == b"<win> hello from windows\n"
    await lf.send("hello from nc")
    assert await raw_until(crlf, b"hello from nc") == b"<win> hello from nc\r\n".replace(
        b"<win>", f"<{lf.local_id}>".encode()
    )
    assert await raw_until(lf, b"hello from nc") == f"<{lf.local_id}> hello from nc\n".encode()
    # Its own replies too, every line of several (who), and nothing widened twice.
    await crlf.send(b"/who\r\n")
    assert await raw_until(crlf, b"Online users") == b"Online users (2):\r\n"
    rest = [await raw_line(crlf), await raw_line(crlf)]
    assert all(line.endswith(b"\r\n") and not line.endswith(b"\r\r\n") for line in rest), rest


async def test_a_telnet_users_ctrl_c_never_reaches_the_room(server, make_peer):
    other, telnet = await make_peer(server), await make_peer(server)
    await telnet.send(b"before\r\n")
    await other.until_contains("> before")
    # telnet's Ctrl+C: IAC IP, then IAC DO TIMING-MARK, whose answer it waits for
    await telnet.send(bytes((IAC, IP, IAC, DO, TIMING_MARK)))
    async with asyncio.timeout(TIMEOUT):
        seen = b""
        while bytes((IAC, WILL, TIMING_MARK)) not in seen:
            seen += await telnet.reader.read(1024)
            assert seen, "the server closed the connection"
    await telnet.send(b"after\r\n")
    # The next line the other user sees is "after": nothing came of the Ctrl+C.
    assert (await other.line()).endswith("> after")
    newcomer = await make_peer(server, joined=False)
    history = [await newcomer.until_contains("[history")] + [await newcomer.line()]
    assert [line.split("] ", 1)[1] for line in history] == [
        f"<{telnet.local_id}> before",
        f"<{telnet.local_id}> after",
    ]


async def test_telnet_negotiation_at_connect_is_refused_and_its_lines_are_clean(server, make_peer):
    """PuTTY's telnet mode and a telnet client both offer options before a word is typed;
    a subnegotiation may hold any byte (a window 10 rows high is a "\\n")."""
    other = await make_peer(server)
    telnet = await make_peer(server, joined=False)
    await telnet.until_contains(f"*** {telnet.local_id} joined")
    offer = bytes((IAC, WILL, NAWS, IAC, WILL, TTYPE, IAC, DO, SGA, IAC, DO, ECHO))
    naws = bytes((IAC, SB, NAWS, 0, 80, 0, 10, IAC, SE))
    await telnet.send(offer[:4])
    await telnet.send(offer[4:] + naws[:5])  # split inside a subnegotiation
    await telnet.send(naws[5:] + b"hi " + bytes((IAC, IAC)) + b"there\r\n")
    refusals = bytes((IAC, DONT, NAWS, IAC, DONT, TTYPE, IAC, WONT, SGA, IAC, WONT, ECHO))
    echo = f"<{telnet.local_id}> hi \ufffdthere\r\n".encode()  # IAC IAC: 0xFF, not UTF-8
    seen = b""
    try:
        async with asyncio.timeout(TIMEOUT):
            while refusals not in seen or echo not in seen:
                data = await telnet.reader.read(1024)
                assert data, f"the server closed the connection: {seen!r}"
                seen += data
    except TimeoutError:
        raise AssertionError(f"not refused, or no echo: {seen!r}") from None
    assert await other.until_contains("> hi") == echo.decode().rstrip("\r\n")
