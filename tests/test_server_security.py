"""A room you can put on the internet, over real sockets (issue 10): names nobody can
impersonate, a room password, hidden addresses."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import unicodedata

import pytest

from tests.conftest import Peer
from tests.test_server_process import ServerProcess, _server_command

# --- names nobody can impersonate ------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "look_alike"),
    [("ann", "\u0430nn"), ("Jos\u00e9", "Jose\u0301"), ("root", "r\u043e\u043et")],
)
async def test_a_look_alike_of_a_present_users_name_is_taken(server, make_peer, held, look_alike):
    alice, mallory = await make_peer(server), await make_peer(server)
    await alice.send(f"/nick {held}")
    await mallory.until_contains(f"is now {held}")
    await mallory.send(f"rename|{look_alike}")
    error = unicodedata.normalize("NFC", await mallory.line())
    assert error.startswith(f"error: the name {unicodedata.normalize('NFC', look_alike)} is taken")
    await mallory.send("who")
    await mallory.until_contains("Online users (2)")
    listed = [await mallory.line(), await mallory.line()]
    assert any(line.strip().startswith(f"{mallory.local_id}  ") for line in listed)


async def test_nobody_can_pose_as_an_address_with_a_modifier_colon(server, make_peer):
    alice, mallory = await make_peer(server), await make_peer(server)
    fake = alice.local_id.replace(":", "\ua789")
    await mallory.send(f"/nick {fake}")
    assert await mallory.line() == (
        "error: cannot use that name: a name cannot contain a character that looks like ':'"
    )


@pytest.mark.parametrize("name", ["\u3164", "\u2800", "\uffa0", "admin\u2800is\u2800now\u2800root",
                                  "\u0301\u0301", "Z\u0351\u036b\u0343\u036a\u0302a"])  # fmt: skip
async def test_blank_looking_and_zalgo_names_are_invalid(server, make_peer, name):
    peer = await make_peer(server)
    await peer.to_json()
    await peer.send(f"/nick {name}")
    error = await peer.until_event("error")
    assert error["code"] == "name_invalid"


async def test_json_user_sees_the_name_in_its_normal_form(server, make_peer):
    peer = await make_peer(server)
    await peer.to_json()
    await peer.send("/nick Jose\u0301")
    assert (await peer.until_event("rename"))["new"] == "Jos\u00e9"


# --- a room with a password --------------------------------------------------------------------

SECRET = "open sesame"
PROMPT = "*** this room needs a password: send /pass SECRET"


async def test_a_newcomer_waits_unseen_until_it_gives_the_password(make_server, make_peer):
    server = await make_server(password=SECRET.encode())
    alice = await make_peer(server, joined=False)
    assert await alice.line() == PROMPT
    await alice.send(f"/pass {SECRET}")
    await alice.until_contains(f"*** {alice.local_id} joined")
    await alice.send("said before bob came")
    await alice.until_contains("said before bob came")
    bob = await make_peer(server, joined=False)
    assert await bob.line() == PROMPT
    await bob.send("who")
    assert await bob.line() == PROMPT
    await alice.send("who")
    assert await alice.until_contains("Online users") == "Online users (1):"
    await alice.send("secret talk")
    await bob.send(f"/pass {SECRET}")
    welcome = await bob.line()
    assert welcome.startswith(f"*** Welcome, {bob.local_id}!") and "2 online" in welcome
    assert "said before bob came" in await bob.line()  # history only now
    assert "secret talk" in await bob.line()
    assert await bob.line() == f"*** {bob.local_id} joined"
    assert await alice.until_contains("joined") == f"*** {bob.local_id} joined"


async def test_json_forms_of_the_prompt_and_the_error(make_server, make_peer):
    server = await make_server(password=SECRET.encode())
    peer = await make_peer(server, joined=False)
    await peer.line()
    await peer.send("/format json")
    assert await peer.event() == {"type": "format", "format": "json"}
    assert await peer.event() == {
        "type": "notice",
        "code": "password",
        "text": "this room needs a password: send /pass SECRET",
    }
    await peer.send("/pass wrong")
    assert await peer.event() == {
        "type": "error",
        "code": "bad_password",
        "message": "wrong password (2 tries left)",
    }
    await peer.send(f"/pass {SECRET}")
    assert (await peer.event())["type"] == "welcome"


async def test_wrong_passwords_close_the_connection(make_server, make_peer):
    server = await make_server(password=SECRET.encode(), password_tries=2)
    peer = await make_peer(server, joined=False)
    await peer.line()
    await peer.send("/pass one")
    assert await peer.line() == "error: wrong password (1 try left)"
    await peer.send("/pass two")
    assert await peer.closed() == b"error: wrong password 2 times; goodbye\n"


async def test_wrong_passwords_are_limited_per_address(make_server, make_peer):
    server = await make_server(
        password=SECRET.encode(), password_tries=99, password_fail_burst=2, password_fail_rate=1
    )
    first = await make_peer(server, joined=False)
    await first.line()
    for _ in range(2):
        await first.send("/pass guess")
        await first.line()
    second = await make_peer(server, joined=False)
    await second.line()
    await second.send(f"/pass {SECRET}")
    assert (await second.line()).startswith("error: too many wrong passwords from your address")


async def test_the_idle_timeout_applies_while_waiting(make_server, make_peer):
    server = await make_server(password=SECRET.encode(), idle_timeout=0.3)
    peer = await make_peer(server, joined=False)
    assert await peer.line() == PROMPT
    assert b"disconnected: no line from you" in await peer.closed()


# --- hidden addresses ---------------------------------------------------------------------


async def test_hidden_addresses_show_no_ip_port(make_server, make_peer):
    server = await make_server(hide_addresses=True)
    alice = await Peer.connect(server.port)
    welcome = await alice.line()
    name = re.search(r"Welcome, (guest-\d{4})!", welcome).group(1)
    assert await alice.line() == f"*** {name} joined"
    bob = await Peer.connect(server.port)
    bob_welcome = await bob.to_json()
    assert re.fullmatch(r"guest-\d{4}", bob_welcome["name"]) and bob_welcome["name"] != name
    assert "127.0.0.1" not in bob_welcome["id"]
    await bob.send("who")
    who = await bob.until_event("who")
    assert {u["name"] for u in who["users"]} == {name, bob_welcome["name"]}
    assert "127.0.0.1" not in json.dumps(who)
    await alice.send("who")
    listing = await alice.until_contains("Online users")
    listing += await alice.line() + await alice.line()
    assert "127.0.0.1" not in listing and str(bob.local_id.split(":")[1]) not in listing
    for peer in (alice, bob):
        await peer.close()


# --- the real process: the password file and the log ------------------------------------------


@pytest.fixture
def serve():
    started: list[ServerProcess] = []

    def start(*flags: str) -> ServerProcess:
        started.append(ServerProcess("--port", "0", *flags))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), ("  \n", "the file holds no password")],
)
def test_a_missing_or_empty_password_file_is_a_one_line_start_error(tmp_path, content, reason):
    path = tmp_path / "password"
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        _server_command("--port", "0", "--password-file", str(path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr == f"chatroom-server: --password-file {path}: {reason}\n"


async def test_the_secret_is_never_logged(tmp_path, serve):
    path = tmp_path / "password"
    path.write_text("hunter2-very-secret\n")
    server = serve("--password-file", str(path), "--log-level", "debug")
    peer = await Peer.connect(server.port)
    assert await peer.line() == PROMPT
    await peer.send("/pass wrong-guess-1")
    await peer.line()
    await peer.send("/pass hunter2-very-secret")
    await peer.until_contains("joined")
    await peer.send("/quit")
    await peer.closed()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    log = server.proc.stderr.read()
    assert f"connect 127.0.0.1:{peer.local_id.split(':')[1]}" in log  # it does log
    assert "hunter2" not in log and "wrong-guess" not in log
    assert "hunter2" not in server.banner


async def test_hidden_addresses_are_still_in_the_log(serve):
    server = serve("--hide-addresses", "--log-level", "info")
    peer = await Peer.connect(server.port)
    name = re.search(r"Welcome, (guest-\d+)!", await peer.line()).group(1)
    await peer.send("/quit")
    await peer.closed()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert f"connect {peer.local_id} as {name}" in server.proc.stderr.read()
