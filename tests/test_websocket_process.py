"""The WebSocket door of the real server process, on both event loops, with TLS too."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess

import pytest

from chatroom.server.cli import build_parser, config_from_args, worker_argv
from tests.conftest import Peer
from tests.test_server_process import _server_command
from tests.test_tls import TlsServer, certs, make_certs  # noqa: F401 (a fixture)
from tests.ws_helpers import WsPeer

LOOPS = ["asyncio", "uvloop"]


class DoorServer(TlsServer):
    """The server process with TCP, TLS, ws and wss listeners (ports from its start-up line)."""

    def __init__(self, *flags: str) -> None:
        super().__init__(*flags)
        match = re.search(
            r"WebSocket: ws://127\.0\.0\.1:(\d+)/ wss://127\.0\.0\.1:(\d+)/", self.banner
        )
        assert match, self.banner
        self.ws_port, self.wss_port = int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("loop", LOOPS)
async def test_ws_wss_and_tcp_users_share_one_room_and_stop_cleanly(certs, loop):  # noqa: F811
    server = DoorServer(
        "--port", "0", "--tls-port", "0", "--ws-port", "0", "--wss-port", "0",
        "--tls-cert", certs.cert, "--tls-key", certs.key, "--loop", loop,
        "--rate", "0", "--idle-timeout", "0", "--log-level", "info",
    )  # fmt: skip
    try:
        nc = await Peer.connect(server.port)
        await nc.until_contains("joined")
        plain = await WsPeer.connect(server.ws_port)
        secure = await WsPeer.connect(
            server.wss_port, scheme="wss", ssl=ssl.create_default_context(cafile=certs.cafile)
        )
        for peer in (plain, secure):
            await nc.until_contains(f"{peer.local_id} joined")
        await plain.send("over ws")
        await secure.send("over wss")
        await nc.until_contains("over ws")
        await nc.until_contains("over wss")
        await nc.send("over tcp")
        for peer in (plain, secure):
            await peer.until_contains("over tcp")
        await plain.send(b"\x01")  # a binary message: closed with a reason, nothing else
        _, close = await plain.closed()
        assert close is not None and close.code == 1003
        await nc.until_contains(f"{plain.local_id} left")
        server.proc.send_signal(signal.SIGTERM)
        lines, close = await secure.closed()
        assert lines[-1] == "*** the server is shutting down", lines
        assert close is not None and close.code == 1000
        assert server.proc.wait(10) == 0
        err = server.proc.stderr.read()
        assert "Traceback" not in err and "ERROR" not in err, err
        assert "closed 1003: binary messages are not accepted" in err  # the leave's detail
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--wss-port", "0"], "--wss-port needs --tls-cert"),
        (["--ws-origin", "chat.example.org"], "not an origin"),
        (["--ws-port", "70000"], "not a TCP port"),
        (["--port", "off"], "--port off leaves no port"),
    ],
)
def test_websocket_flag_errors_are_one_line(flags, complaint):
    result = subprocess.run(_server_command(*flags), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert complaint in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_ws_only_with_port_off_is_allowed_and_origins_repeat():
    config = config_from_args(
        build_parser().parse_args(
            ["--port", "off", "--ws-port", "8081", "--ws-origin", "https://A.example/",
             "--ws-origin", "http://b.example:8080", "https://c.example"]
        )
    )  # fmt: skip
    assert config.problems() == []
    assert config.ws_origin == ("https://a.example", "http://b.example:8080", "https://c.example")
    again = config_from_args(build_parser().parse_args(worker_argv(config, None)))
    assert again.ws_origin == config.ws_origin and again.ws_port == 8081


def test_help_lists_the_websocket_flags():
    result = subprocess.run(_server_command("--help"), capture_output=True, text=True, timeout=30)
    for flag in ("--ws-port", "--wss-port", "--ws-origin"):
        assert flag in result.stdout
