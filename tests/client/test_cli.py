"""chatroom-client's command line: bad input is one clear line and exit 2."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests import processes

CLIENT = Path(sys.executable).with_name("chatroom-client")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "HOST:PORT"),
        (["host:99999"], "port"),
        (["127.0.0.1:8087", "--name", "bad name"], "--name"),
        (["127.0.0.1:8087", "--bogus"], "--bogus"),
        (["127.0.0.1:"], "the port is missing"),
    ],
)
def test_bad_arguments_are_one_line(argv, complaint):
    result = subprocess.run([str(CLIENT), *argv], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and complaint in result.stderr
    assert result.stderr.startswith("chatroom-client: error: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["chatroom-client", "chatroom-server"])
def test_version(command):
    result = subprocess.run(
        [str(CLIENT.with_name(command)), "--version"], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0
    assert result.stdout == f"{command} {version('chatroom')}\n"


def test_a_server_that_never_greets_shows_connecting_within_a_second():
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never speaks
        port = listener.getsockname()[1]
        process = processes.spawn(
            [str(CLIENT), f"127.0.0.1:{port}"], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            ready, _, _ = select.select([process.stderr], [], [], 5)  # startup + 0.5 s
            assert ready
            assert "connecting to 127.0.0.1:" in process.stderr.readline()
        finally:
            processes.stop(process)
