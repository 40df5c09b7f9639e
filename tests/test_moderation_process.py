"""Operators and moderation against the real ``chatroom-server`` process (issue 18, items 2,
3 and 5): /oper guessing neither stalls the room nor outlives a reconnect, an ops file
that would break /oper stops the start, and mutes and bans do what the room shows.

Clients bind 127.0.0.2, 127.0.0.3 ... as their source address ("other machines" on
loopback). Nothing here asserts speed: the slow hashes below make the order of answers
observable (a bystander's pong before the guessers' answers), never a duration.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import subprocess
import time

import pytest

from chatroom.server.config import ServerConfig
from chatroom.server.core.passwords import hash_password
from tests import processes
from tests.test_limits_process import (
    DEADLINE,
    SERVER_SCRIPT,
    Reader,
    connect,
    start,  # noqa: F401 (a fixture)
)


def scrypt_line(
    password: str, n: int, r: int, p: int, salt: int = 16, size: int = 64, real: bool = True
) -> str:
    """An ops file's hash of ``password`` with these scrypt parameters and lengths (not
    ``real``: a digest of zeros, for a line the server must refuse before any check)."""
    salt_bytes = bytes(range(salt))
    digest = (
        hashlib.scrypt(password.encode(), salt=salt_bytes, n=n, r=r, p=p, dklen=size, maxmem=2**27)
        if real
        else bytes(size)
    )
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt_bytes).decode()}${b64(digest).decode()}"


# ~8x the default's cost: a check takes several tenths of a second on this machine, so
# guesses queued behind one another are still being hashed when a bystander pings.
SLOW = scrypt_line("s3cret", 2**14, 8, 8)
FAST = hash_password("s3cret")


def ops_file(tmp_path, stored: str) -> str:
    path = tmp_path / "ops"
    path.write_text(f"# operators\nboss {stored}\n")
    return str(path)


def member(server, source: str = "127.0.0.1") -> Reader:
    """A text-mode user from ``source`` that has read its own join."""
    reader = Reader(connect(server, source))
    host, port = reader.sock.getsockname()[:2]
    reader.until(lambda line: line == f"*** {host}:{port} joined")
    return reader


def nothing_waiting(reader: Reader) -> bool:
    """Whether no byte has reached ``reader``'s socket that it has not read (the kernel's
    view, not a test loop's)."""
    if reader.buffer:
        return False
    timeout = reader.sock.gettimeout()
    reader.sock.setblocking(False)  # with a timeout, recv would wait for a byte first
    try:
        return not reader.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        reader.sock.settimeout(timeout)


def operator(server, source: str = "127.0.0.1") -> Reader:
    boss = member(server, source)
    boss.sock.sendall(b"/oper boss s3cret\n")
    boss.until(lambda line: "you are now an operator" in line)
    return boss


def said(reader: Reader, text: str) -> str:
    """Send ``text`` as chat; the first line that answers it (its echo or an error)."""
    reader.sock.sendall(text.encode() + b"\n")
    return reader.until(lambda line: line.startswith("error:") or line.endswith(f"> {text}"))


# --- item 2: /oper guessing ----------------------------------------------------------------


def test_a_bystander_is_answered_while_oper_guesses_are_being_hashed(start, tmp_path):  # noqa: F811
    server = start("--ops-file", ops_file(tmp_path, SLOW))
    bystander = member(server)
    guessers = [member(server, f"127.0.0.{k}") for k in range(2, 6)]
    last = guessers[-1].sock.getsockname()
    for guesser in guessers[:-1]:  # each has read every join: nothing more is owed to it
        guesser.until(lambda line, last=last: line == f"*** {last[0]}:{last[1]} joined")
    for guesser in guessers:
        guesser.sock.sendall(b"/oper boss wrong\n")
    # At least this long: the server has read the guesses (the old server was hashing them
    # on its event loop, one after the other, and answered the ping only after them).
    time.sleep(0.3)
    bystander.sock.sendall(b"/ping still here\n")
    assert bystander.until(lambda line: "pong" in line) == "*** pong still here"
    unanswered = [g for g in guessers if nothing_waiting(g)]
    assert unanswered, "every guess was answered before the bystander's ping"
    for guesser in guessers:
        line = guesser.until(lambda line: line.startswith("error:"))
        assert line == "error: wrong operator name or password"


def test_wrong_opers_are_limited_per_address_across_reconnects_and_logged_once(
    start,  # noqa: F811
    tmp_path,
):
    # Loopback is exempt from the connection limits (the default), not from this one.
    server = start("--ops-file", ops_file(tmp_path, FAST))
    burst = ServerConfig().oper_fail_burst
    for _ in range(burst):  # a fresh connection each time: the per-connection wait is new
        guesser = member(server, "127.0.0.2")
        guesser.sock.sendall(b"/oper boss wrong\n")
        line = guesser.until(lambda line: line.startswith("error:"))
        assert line == "error: wrong operator name or password"
        guesser.sock.close()
    guesser = member(server, "127.0.0.2")
    guesser.sock.sendall(b"/oper boss s3cret\n")  # even the right password is not checked
    line = guesser.until(lambda line: line.startswith("error:") or "operator" in line)
    assert re.fullmatch(
        r"error: too many wrong /oper attempts from your address; try again in \d+s", line
    ), line
    operator(server, "127.0.0.3")  # another address is not affected
    log = server.log()
    reported = [line for line in log.splitlines() if "wrong /oper for" in line]
    assert len(reported) == 1, log  # the rest of the interval is counted, not logged


# --- item 3: the ops file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        # scrypt would refuse it at the first /oper ("memory limit exceeded").
        (scrypt_line("x", 2**16, 32, 1, real=False), "scrypt needs 256 MiB"),
        (scrypt_line("x", 2**14, 8, 16, real=False), "scrypt costs N*r*p = 2097152"),
        (scrypt_line("x", 2**10, 8, 1, salt=2), "a salt of 2 bytes"),
        (scrypt_line("x", 2**10, 8, 1, size=4), "a hash of 4 bytes"),
    ],
    ids=["memory", "cost", "salt", "hash"],
)
def test_an_ops_file_that_would_break_oper_stops_the_start_with_its_line(
    tmp_path, stored: str, problem: str
):
    path = ops_file(tmp_path, stored)
    command = [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--ops-file", path]
    proc = processes.spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        processes.stop(proc)
    assert proc.returncode == 1 and out == ""
    assert err.startswith(f"chatroom-server: --ops-file {path}: line 2: "), err
    assert problem in err and err.count("\n") == 1, err


# --- item 5: mutes and bans ----------------------------------------------------------------


def test_a_mute_holds_the_address_across_reconnects_renames_and_restarts(start, tmp_path):  # noqa: F811
    flags = ("--exempt-ip", "--ops-file", ops_file(tmp_path, FAST),
             "--state", str(tmp_path / "state.db"))  # fmt: skip
    server = start(*flags)
    boss = operator(server)
    bob = member(server, "127.0.0.2")
    host, port = bob.sock.getsockname()[:2]
    boss.sock.sendall(f"/mute {host}:{port}\n".encode())
    bob.until(lambda line: "you were muted by" in line)
    bob.sock.close()
    again = member(server, "127.0.0.2")  # a new connection: a new id and name
    assert said(again, "back again") == "error: you are muted: your line was not sent"
    again.sock.sendall(b"/nick innocent\n")
    again.until(lambda line: line.endswith(" is now innocent"))
    assert said(again, "renamed") == "error: you are muted: your line was not sent"
    assert said(member(server, "127.0.0.3"), "not muted").endswith("> not muted")
    server.stop()

    restarted = start(*flags)
    later = member(restarted, "127.0.0.2")
    later.sock.sendall(b"/nick someone-else\n")
    later.until(lambda line: line.endswith(" is now someone-else"))
    assert said(later, "after the restart") == "error: you are muted: your line was not sent"
    other = member(restarted, "127.0.0.3")
    assert said(other, "free to speak").endswith("> free to speak")


USAGE = "error: a duration is a number and a unit: 30s, 10m, 2h, 1d (or 1h30m)"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/ban 0.0.0.0/0", "error: /ban 0.0.0.0/0 would ban every IPv4 address; refused"),
        ("/ban ::/0", "error: /ban ::/0 would ban every IPv6 address; refused"),
        ("/ban ::ffff:0:0/96", "error: /ban 0.0.0.0/0 would ban every IPv4 address; refused"),
        ("/ban 127.0.0.1", "error: /ban 127.0.0.1/32 would ban your own address; refused"),
        ("/ban 127.0.0.0/24", "error: /ban 127.0.0.0/24 would ban your own address; refused"),
        ("/ban 127.0.0.8/29", "error: /ban 127.0.0.8/29 would ban the exempt network "
                              "127.0.0.8/29 (--exempt-ip); refused"),
        ("/ban 127.0.0.2 -5m", USAGE),
        ("/mute 127.0.0.2 -5m", USAGE),
    ],
)  # fmt: skip
def test_a_ban_that_would_lock_everyone_out_is_refused(start, tmp_path, line, answer):  # noqa: F811
    flags = ("--ops-file", ops_file(tmp_path, FAST), "--state", str(tmp_path / "state.db"),
             "--exempt-ip", "127.0.0.8/29")  # fmt: skip
    server = start(*flags)
    boss = operator(server)
    boss.sock.sendall(line.encode() + b"\n")
    assert boss.until(lambda line: line.startswith(("error:", "***"))) == answer
    boss.sock.sendall(b"/bans\n")
    assert boss.until(lambda line: "bans" in line) == "*** no bans"
    server.stop()
    restarted = start(*flags)
    member(restarted)  # still admitted after a restart
    member(restarted, "127.0.0.2")


def test_a_proxied_ipv4_mapped_client_is_shown_and_banned_as_its_ipv4_address(start, tmp_path):  # noqa: F811
    server = start("--ops-file", ops_file(tmp_path, FAST), "--proxy-protocol-from", "127.0.0.1")
    boss = operator(server, "127.0.0.2")  # a direct user (only 127.0.0.1 sends headers)
    client = Reader(connect(server))
    client.sock.sendall(b"PROXY TCP6 ::ffff:198.51.100.7 ::1 4000 8087\r\n")
    assert client.line().startswith("*** Welcome, 198.51.100.7:4000!")
    boss.until(lambda line: line == "*** 198.51.100.7:4000 joined")
    boss.sock.sendall(b"/ban 198.51.100.7 1h spam\n")  # the address the room shows
    assert "banned by" in client.until(lambda line: "banned by" in line)
    assert boss.until(lambda line: "sent away" in line).endswith("; 1 user sent away")
    again = Reader(connect(server))
    again.sock.sendall(b"PROXY TCP6 ::ffff:198.51.100.7 ::1 4001 8087\r\n")
    assert again.line() == "*** your address is banned from this server for 1h more: spam"
