"""TLS: the same room over a TLS listener, with certificates made at test time (trustme).

Real handshakes over 127.0.0.1: the server process on both event loops (where the loops
differ: the handshake, its timeout, a plaintext client, SIGHUP), the client's connection
in process. Nothing of TLS is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trustme

from chatroom.client.connection import (
    AddressError,
    CloseCause,
    ReconnectPolicy,
    ServerConnection,
    describe_failure,
    failure_cause,
    parse_target,
    tls_context,
)
from chatroom.protocol import Rename
from chatroom.server.adapter.tls import server_context
from chatroom.server.cli import build_parser, config_from_args, worker_argv
from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import ServerProcess, _server_command

LOOPS = ["asyncio", "uvloop"]
CLIENT = Path(sys.executable).with_name("chatroom-client")


@dataclass
class Certs:
    cafile: str
    cert: str
    key: str


def make_certs(
    directory: Path, *identities: str, not_after: datetime.datetime | None = None, tag: str = ""
) -> Certs:
    """A fresh CA and a certificate it signed for ``identities``, as PEM files."""
    ca = trustme.CA()
    leaf = ca.issue_cert(*(identities or ("localhost", "127.0.0.1")), not_after=not_after)
    paths = Certs(*(str(directory / f"{name}{tag}.pem") for name in ("ca", "cert", "key")))
    ca.cert_pem.write_to_path(paths.cafile)
    Path(paths.cert).write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(paths.key)
    return paths


@pytest.fixture
def certs(tmp_path) -> Certs:
    return make_certs(tmp_path)


class TlsServer(ServerProcess):
    """The server process with a TLS listener; ``tls_port`` from its start-up line."""

    def __init__(self, *flags: str) -> None:
        super().__init__(*flags)
        match = re.search(r"TLS on port (\d+)|127\.0\.0\.1:(\d+) \(TLS only\)", self.banner)
        assert match, self.banner
        self.tls_port = int(match.group(1) or match.group(2))

    def stop_cleanly(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(10) == 0
        err = self.proc.stderr.read()
        assert "Traceback" not in err and "ERROR" not in err, err
        return err


@pytest.fixture
def serve_tls(certs):
    started: list[TlsServer] = []

    def start(loop: str, *flags: str, plain: bool = True) -> TlsServer:
        process = TlsServer(
            "--port",
            "0" if plain else "off",
            "--tls-port",
            "0",
            "--tls-cert",
            certs.cert,
            "--tls-key",
            certs.key,
            "--loop",
            loop,
            "--rate",
            "0",
            "--idle-timeout",
            "0",
            *flags,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


async def tls_peer(port: int, cafile: str, host: str = "127.0.0.1") -> Peer:
    reader, writer = await asyncio.open_connection(
        host, port, ssl=tls_context(cafile), server_hostname=host, limit=2**20
    )
    return Peer(reader, writer)


def silent_socket(port: int) -> socket.socket:
    """Connects and sends nothing: a TLS handshake that never starts."""
    return socket.create_connection(("127.0.0.1", port))


async def closed_by_server(sock: socket.socket, timeout: float = TIMEOUT) -> bool:
    """Whether the server closed ``sock`` (EOF or a reset) within ``timeout``; False if it
    was still open then. What the server sent before closing is read and dropped."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            while await loop.sock_recv(sock, 4096):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def still_open(sock: socket.socket) -> bool:
    """Whether ``sock`` has neither EOF nor a reset waiting (looked at without waiting)."""
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False


# --- the server: both loops ------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
async def test_tls_and_plaintext_users_share_one_room(serve_tls, certs, loop):
    server = serve_tls(loop)
    secure = await tls_peer(server.tls_port, certs.cafile)
    assert secure.writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    await secure.to_json()
    plain = await Peer.connect(server.port)
    await plain.to_json()
    await secure.until_event("join", id=plain.local_id)
    await secure.send("hello over TLS")
    said = await plain.until_event("message", text="hello over TLS")
    assert said["id"] == secure.local_id
    await plain.send("hello in plaintext")
    await secure.until_event("message", text="hello in plaintext")
    await secure.close()
    await plain.close()
    server.stop_cleanly()


@pytest.mark.parametrize("loop", LOOPS)
async def test_tls_only_with_port_off(serve_tls, certs, loop):
    server = serve_tls(loop, plain=False)
    assert "(TLS only)" in server.banner and f"tls://127.0.0.1:{server.tls_port}" in server.banner
    secure = await tls_peer(server.tls_port, certs.cafile)
    assert "Welcome" in await secure.line()
    await secure.close()
    server.stop_cleanly()


def old_tls_client(cafile: str) -> ssl.SSLContext:
    """A client that offers TLS 1.0 and 1.1 only, at security level 0: the platform's own
    policy (OpenSSL 3 refuses TLS < 1.2 at its default level) is out of its way."""
    context = tls_context(cafile)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The TLS version a handshake to ``port`` agreed on; raises ssl.SSLError."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated")
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_versions_below_1_2_are_refused(serve_tls, certs):
    # The product's setting: the server's context accepts TLS 1.2 at the oldest.
    assert server_context(certs.cert, certs.key).minimum_version == ssl.TLSVersion.TLSv1_2
    # This client does get TLS 1.1 from a server that allows it, on this platform...
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.load_cert_chain(certs.cert, certs.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve_one() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(ssl.SSLError, OSError):
                permissive.wrap_socket(conn, server_side=True).close()
            conn.close()

        thread = threading.Thread(target=serve_one)
        thread.start()
        try:
            assert handshake(listener.getsockname()[1], old_tls_client(certs.cafile)) in (
                "TLSv1",
                "TLSv1.1",
            )
        finally:
            thread.join(TIMEOUT)
    # ...but not from the server, which refuses it for its version floor (its log says
    # UNSUPPORTED_PROTOCOL), not for the platform's cipher policy (NO_SHARED_CIPHER).
    server = serve_tls("asyncio", "--log-level", "info")
    with pytest.raises(ssl.SSLError):
        handshake(server.tls_port, old_tls_client(certs.cafile))
    err = server.stop_cleanly()
    failures = [line for line in err.splitlines() if "TLS handshake with" in line]
    assert len(failures) == 1 and failures[0].endswith("failed: UNSUPPORTED_PROTOCOL"), err


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_plaintext_client_on_the_tls_port_fails_and_the_server_is_unharmed(
    serve_tls, certs, loop
):
    server = serve_tls(loop, "--log-level", "info")
    nc = await Peer.connect(server.tls_port)
    await nc.send("hello, is this the chat?")
    received = await nc.closed()  # a TLS alert at most, then closed
    assert b"Welcome" not in received and len(received) < 100
    secure = await tls_peer(server.tls_port, certs.cafile)
    await secure.to_json()
    await secure.send("still here")
    await secure.until_event("message", text="still here")
    await secure.close()
    err = server.stop_cleanly()
    failures = [line for line in err.splitlines() if "TLS handshake" in line]
    assert len(failures) == 1 and "INFO" in failures[0], err
    assert "not TLS, a plaintext client?" in failures[0]


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_handshake_that_never_completes_is_dropped_and_counts_against_max_per_ip(
    serve_tls, certs, loop
):
    server = serve_tls(loop, "--tls-handshake-timeout", "1", "--max-per-ip", "2", "--exempt-ip")
    started = time.monotonic()
    silent = [silent_socket(server.tls_port) for _ in range(2)]
    await asyncio.sleep(0.1)
    # The address is at its cap with two handshakes pending: a third is refused, while the
    # two are still pending (not because the timeout had dropped them already).
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await tls_peer(server.tls_port, certs.cafile)
    assert all(still_open(sock) for sock in silent), "refused only once the timeout had passed"
    # Both silent ones are dropped after the timeout, and the address may come in again.
    for sock in silent:
        assert await closed_by_server(sock), "a handshake never begun was not dropped"
        sock.close()
    assert time.monotonic() - started >= 0.9  # not before the timeout
    secure = await tls_peer(server.tls_port, certs.cafile)
    assert "Welcome" in await secure.line()
    # An established TLS connection counts too, pending handshakes beside it.
    second = silent_socket(server.tls_port)
    await asyncio.sleep(0.1)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await tls_peer(server.tls_port, certs.cafile)
    second.close()
    await secure.close()
    err = server.stop_cleanly()
    assert "not finished in time" in err and "TLS handshakes count" in err


@pytest.mark.parametrize("loop", LOOPS)
async def test_sighup_reloads_the_certificate_without_dropping_anyone(
    serve_tls, certs, tmp_path, loop
):
    server = serve_tls(loop)
    before = await tls_peer(server.tls_port, certs.cafile)
    await before.to_json()
    renewed = make_certs(tmp_path, tag="-renewed")
    os.replace(renewed.cert, certs.cert)
    os.replace(renewed.key, certs.key)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while True:  # the signal is handled asynchronously
        try:
            after = await tls_peer(server.tls_port, renewed.cafile)
            break
        except ssl.SSLCertVerificationError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    await after.to_json()
    await before.send("still connected")  # the old connection goes on
    await after.until_event("message", text="still connected")
    # A reload that fails keeps the certificate in use and says why in one line.
    Path(certs.key).write_text("not a key\n")
    server.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(0.3)
    third = await tls_peer(server.tls_port, renewed.cafile)
    assert "Welcome" in await third.line()
    for peer in (before, after, third):
        await peer.close()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    err = server.proc.stderr.read()
    assert "Traceback" not in err
    assert "certificate not reloaded, the old one stays" in err


# --- start-up: one clear line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert /nonexistent/cert.pem: No such file"),
        (["--tls-key", "WRONG_KEY"], "are not a PEM certificate chain and its private key"),
        (["--tls-key", "NOT_PEM"], "--tls-key NOT_PEM holds no PEM private key"),
        (["--tls-key", "CERT"], "--tls-key CERT holds no PEM private key"),
        (["--tls-key", "WITHOUT"], "--tls-cert CERT holds no private key: give --tls-key FILE"),
    ],
)
def test_certificate_errors_at_start_are_one_line(certs, tmp_path, flags, complaint):
    other = make_certs(tmp_path, tag="-other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    names = {"WRONG_KEY": other.key, "NOT_PEM": str(garbage), "CERT": certs.cert}
    flags = [names.get(f, f) for f in flags]
    complaint = complaint.replace("NOT_PEM", str(garbage)).replace("CERT", certs.cert)
    defaults = {"--tls-cert": certs.cert, "--tls-key": certs.key}
    defaults.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    if defaults["--tls-key"] == "WITHOUT":  # the key is not in the --tls-cert file
        del defaults["--tls-key"]
    argv = ["--port", "0", "--tls-port", "0", *(x for kv in defaults.items() for x in kv)]
    result = subprocess.run(_server_command(*argv), capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr
    assert result.stderr.startswith("chatroom-server: ")


def test_a_tls_port_in_use_is_named_as_the_tls_port(certs):
    """With two ports, the line names the one in use (and its address), not both."""
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            _server_command("--host", "::1", "--port", "0")
            + ["--tls-port", str(port), "--tls-cert", certs.cert, "--tls-key", certs.key],
            capture_output=True,
            text=True,
            timeout=10,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"chatroom-server: cannot listen on [::1]:{port} (--tls-port): address already in use;"
    ), result.stderr
    assert result.stderr.endswith("give another --tls-port\n") and result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--port", "off"], "--port off leaves no port"),
        (["--tls-port", "6697"], "--tls-port needs --tls-cert"),
        (["--tls-cert", "x.pem"], "--tls-cert needs --tls-port"),
    ],
)
def test_tls_flag_errors(argv, complaint):
    result = subprocess.run(_server_command(*argv), capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and complaint in result.stderr, result.stderr


def test_workers_get_the_tls_flags_and_port_off():
    argv = ["--port", "off", "--tls-port", "6697", "--tls-cert", "c.pem", "--tls-key", "k.pem"]
    argv += ["--tls-handshake-timeout", "3"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.port is None
    derived = worker_argv(config, None)  # type: ignore[arg-type]
    assert config_from_args(build_parser().parse_args(derived)) == replace(config, worker=True)


# --- the client ------------------------------------------------------------------------------


@pytest.fixture
async def tls_room(make_server, certs):
    return await make_server(tls_port=0, tls_cert=certs.cert, tls_key=certs.key)


async def test_the_client_connects_over_tls_with_a_private_ca(tls_room, certs):
    connection = await ServerConnection.open(
        "127.0.0.1", tls_room.tls_port, tls=tls_context(certs.cafile)
    )
    connection.send("/nick tls-ann")
    renamed = None
    async with asyncio.timeout(TIMEOUT):
        async for event in connection.events():
            if isinstance(event, Rename) and event.new == "tls-ann":
                renamed = event
                break
    assert renamed is not None, f"the connection ended ({connection.cause}) before the rename"
    assert [u.name for u in tls_room.room.who(time.time()).users] == ["tls-ann"]
    await connection.close()


@pytest.mark.parametrize(
    ("identities", "expired", "host", "reason"),
    [
        (("chat.example.org",), False, "localhost", "certificate refused: Hostname mismatch"),
        (("chat.example.org",), False, "127.0.0.1", "certificate refused: IP address mismatch"),
        (
            ("localhost", "127.0.0.1"),
            True,
            "127.0.0.1",
            "certificate refused: certificate has expired",
        ),
    ],
    ids=["wrong-host", "wrong-address", "expired"],
)
async def test_an_unverifiable_certificate_is_refused(
    make_server, tmp_path, identities, expired, host, reason
):
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    bad = make_certs(tmp_path, *identities, not_after=past if expired else None)
    room = await make_server(tls_port=0, tls_cert=bad.cert, tls_key=bad.key)
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await ServerConnection.open(host, room.tls_port, tls=tls_context(bad.cafile))
    assert describe_failure(caught.value).startswith(reason), describe_failure(caught.value)
    assert failure_cause(caught.value) is CloseCause.TLS_FAILED
    assert len(room.room) == 0  # nobody got in


async def test_an_unknown_ca_is_refused_with_a_hint(tls_room):
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await ServerConnection.open("127.0.0.1", tls_room.tls_port, tls=tls_context())
    assert "(a private CA? trust it with --cafile FILE)" in describe_failure(caught.value)


async def test_tls_to_a_plaintext_port_is_one_clear_reason(server, certs):
    with pytest.raises(ssl.SSLError) as caught:
        await ServerConnection.open("127.0.0.1", server.port, tls=tls_context(certs.cafile))
    assert describe_failure(caught.value).startswith(
        "TLS failed: the server does not speak TLS on that port"
    )
    assert failure_cause(caught.value) is CloseCause.TLS_FAILED


def test_a_tls_failure_is_not_retried():
    policy = ReconnectPolicy()
    assert policy.next_delay(CloseCause.TLS_FAILED) is None
    assert policy.next_delay(CloseCause.UNREACHABLE) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tls://chat.example.org:6697", ("chat.example.org", 6697, True)),
        ("TLS://[::1]:6697", ("::1", 6697, True)),
        ("chat.example.org:8087", ("chat.example.org", 8087, False)),
    ],
)
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["tls://chat.example.org", "http://chat.example.org:80"])
def test_parse_target_refuses(text):
    with pytest.raises(AddressError):
        parse_target(text)


def test_the_client_command_refuses_an_expired_certificate_in_one_line(tmp_path):
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    bad = make_certs(tmp_path, not_after=past)
    server = TlsServer(
        "--port", "0", "--tls-port", "0", "--tls-cert", bad.cert, "--tls-key", bad.key
    )
    try:
        result = subprocess.run(
            [str(CLIENT), f"tls://127.0.0.1:{server.tls_port}", "--cafile", bad.cafile],
            capture_output=True,
            text=True,
            timeout=20,
        )
    finally:
        server.stop()
    assert result.returncode == 1
    assert result.stderr == (
        f"chatroom-client: cannot reach tls://127.0.0.1:{server.tls_port}: "
        "certificate refused: certificate has expired\n"
    )


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["127.0.0.1:8087", "--cafile", "ca.pem"], "--cafile is for TLS"),
        (["tls://127.0.0.1:8087", "--cafile", "/nonexistent.pem"], "--cafile /nonexistent.pem"),
        (["tls://127.0.0.1"], "give the port"),
    ],
)
def test_client_tls_argument_errors_are_one_line(argv, complaint):
    result = subprocess.run([str(CLIENT), *argv], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr


async def test_the_workers_supervisor_passes_sighup_on(certs, tmp_path, redis_url):
    with socket.socket() as probe:  # a free port for the workers' shared TLS listener
        probe.bind(("127.0.0.1", 0))
        tls_port = probe.getsockname()[1]
    proc = processes.spawn(
        [*_server_command("--port", "0", "--workers", "2", "--redis", redis_url,
                          "--tls-port", str(tls_port), "--tls-cert", certs.cert,
                          "--tls-key", certs.key, "--idle-timeout", "0")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = await asyncio.to_thread(proc.stdout.readline)
        assert "(2 workers)" in banner, banner + proc.stderr.read()
        before = await tls_peer(tls_port, certs.cafile)
        assert "Welcome" in await before.line()
        renewed = make_certs(tmp_path, tag="-renewed")
        os.replace(renewed.cert, certs.cert)
        os.replace(renewed.key, certs.key)
        proc.send_signal(signal.SIGHUP)
        # Both workers reload: every new connection, whichever worker takes it, gets the
        # renewed certificate (eight tries spread over both), and nobody is dropped.
        deadline = time.monotonic() + TIMEOUT
        renewed_seen = 0
        while renewed_seen < 8:
            try:
                peer = await tls_peer(tls_port, renewed.cafile)
            except ssl.SSLCertVerificationError:
                assert time.monotonic() < deadline, "a worker kept the old certificate"
                renewed_seen = 0
                await asyncio.sleep(0.05)
                continue
            renewed_seen += 1
            await peer.close()
        await before.send("still connected")
        assert "still connected" in await before.until_contains("still connected")
        await before.close()
        assert proc.poll() is None  # the supervisor lives on
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0
        err = proc.stderr.read()
        assert "Traceback" not in err and "restarted" not in err, err
    finally:
        processes.stop(proc)  # the supervisor's process group: its workers too
