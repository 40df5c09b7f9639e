"""Moderation end to end over sockets: --ops-file, /oper, and the operators' commands."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.server import cli
from chatroom.server.adapter.app import StartError
from chatroom.server.core.passwords import check_password, hash_password
from tests.conftest import Peer

HASH = hash_password("s3cret")


@pytest.fixture
def ops_file(tmp_path):
    path = tmp_path / "ops"
    path.write_text(f"boss {HASH}\n")
    return str(path)


async def test_oper_over_the_wire_marks_the_operator_in_who(make_server, make_peer, ops_file):
    server = await make_server(ops_file=ops_file)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.send("/oper boss s3cret")
    assert "now an operator" in await alice.until_contains("operator")
    await bob.to_json()
    await bob.send("who")
    who = await bob.until_event("who")
    assert [u.get("op", False) for u in who["users"]] == [True, False]
    await bob.send("/oper boss nope")
    error = await bob.until_event("error")
    assert error["code"] == "not_operator"


async def test_a_bad_ops_file_stops_the_start(make_server, tmp_path):
    bad = tmp_path / "ops"
    bad.write_text("boss nothash\n")
    with pytest.raises(StartError, match="line 1"):
        await make_server(ops_file=str(bad))
    with pytest.raises(StartError, match="--ops-file"):
        await make_server(ops_file=str(tmp_path / "missing"))


def test_hash_password_prints_a_line_for_the_ops_file(monkeypatch, capsys):
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": "pw")
    assert cli.main(["hash-password", "boss"]) == 0
    name, stored = capsys.readouterr().out.split()
    assert name == "boss" and check_password("pw", stored)


def test_hash_password_refuses_differing_passwords(monkeypatch):
    answers = iter(["one", "two"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    with pytest.raises(SystemExit):
        cli.main(["hash-password", "boss"])


async def test_kick_mute_topic_and_motd_over_the_wire(make_server, make_peer, ops_file, tmp_path):
    motd = tmp_path / "motd"
    motd.write_text("welcome to the test room\n")
    server = await make_server(ops_file=ops_file, motd_file=str(motd))
    alice = await make_peer(server, joined=False)
    assert "welcome to the test room" in await alice.until_contains("test room")
    bob, carol = await make_peer(server), await make_peer(server)
    await alice.send("/oper boss s3cret")
    await alice.until_contains("now an operator")
    await alice.send("/topic be kind")
    assert await carol.until_contains("Topic:") == f"*** Topic: be kind (set by {alice.local_id})"
    await alice.send(f"/mute {bob.local_id} 1h")
    await bob.until_contains("you were muted")
    await bob.send("spam")
    assert (await bob.until_contains("error")).startswith("error: you are muted for")
    await alice.send(f"/kick {bob.local_id} bye")
    assert "kicked by" in await bob.until_contains("kicked by")
    await bob.closed()
    line = await carol.until_contains("was kicked")
    assert line == f"*** {bob.local_id} was kicked by {alice.local_id} (bye)"


async def test_ban_over_the_wire_sends_away_and_refuses_at_connect(
    make_server, make_peer, ops_file
):
    server = await make_server(ops_file=ops_file)
    alice, bob = await make_peer(server), await peer_from(server, "127.0.0.2")
    await alice.send("/oper boss s3cret")
    await alice.until_contains("now an operator")
    await alice.send(f"/ban {bob.local_id} 1h flooding")
    assert "banned by" in await bob.until_contains("banned by")
    await bob.closed()
    assert "1 user sent away" in await alice.until_contains("sent away")
    carol = await peer_from(server, "127.0.0.2", joined=False)
    line = await carol.line()
    assert line == "*** your address is banned from this server for 1h more: flooding"
    await carol.closed()
    await alice.send("/bans")
    assert "127.0.0.2/32" in await alice.until_contains("127.0.0.2/32")
    await alice.send("/unban 127.0.0.2")
    await alice.until_contains("unbanned")
    dave = await peer_from(server, "127.0.0.2")
    await dave.send("/ping")
    assert await dave.until_contains("pong")
    for peer in (bob, carol, dave):
        await peer.close()


async def peer_from(server, source: str, joined: bool = True) -> Peer:
    """A raw user connected from ``source`` (another loopback address)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=(source, 0), limit=2**20
    )
    peer = Peer(reader, writer)
    if joined:
        await peer.until_contains(f"*** {peer.local_id} joined")
    return peer
