"""Where the real server process listens: both IP families by default, ``--host`` given
more than once, and socket activation (sockets passed by ``systemd-socket-activate``, as
systemd passes them). Real sockets on loopback, IPv4 and IPv6 (::1)."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
import sys

import pytest

from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import SERVER_SCRIPT
from tests.test_tls import certs  # noqa: F401 (a fixture: a CA and a certificate)

_LISTENING = re.compile(r"^chatroom listening on (.+?)(?: \(TLS only\))? - join with")


def test_this_machine_has_ipv6_loopback():
    """The IPv6 tests below need ::1: shown here, so their failure is not the platform's."""
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))


class Server:
    """``chatroom-server`` with ``flags`` (no --host of its own); the addresses and the port
    from its start-up line."""

    def __init__(self, *flags: str, launcher: list[str] = (), **options) -> None:  # type: ignore[assignment]
        command = [*launcher, str(SERVER_SCRIPT), "--idle-timeout", "0", "--rate", "0", *flags]
        self.proc = processes.spawn(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options
        )
        self.banner = ""

    def read_banner(self) -> list[str]:
        self.banner = self.proc.stdout.readline()
        match = _LISTENING.match(self.banner)
        assert match, f"no start-up line: {self.banner!r} {self.proc.stderr.read()!r}"
        return match.group(1).split(" and ")

    def stop(self) -> str:
        """SIGTERM, a clean exit; its log."""
        self.proc.terminate()
        assert self.proc.wait(TIMEOUT * 2) == 0
        return self.proc.stderr.read()


async def connect(host: str, port: int) -> Peer:
    reader, writer = await asyncio.open_connection(host, port)
    return Peer(reader, writer)


async def joined(peer: Peer) -> str:
    """The name the room gave ``peer`` (its address, as the room sees it)."""
    welcome = await peer.until_contains("*** Welcome, ")
    return welcome.split("*** Welcome, ")[1].split("!")[0]


def free_port(*hosts: str) -> int:
    """A port free on every one of ``hosts`` at this moment (for a launcher that needs one)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family) as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on both families")


# --- both families -------------------------------------------------------------------------


async def test_by_default_it_listens_on_ipv4_and_ipv6():
    server = Server("--port", "0")
    addresses = server.read_banner()
    port = int(addresses[0].rsplit(":", 1)[1])
    assert addresses == [f"0.0.0.0:{port}", f"[::]:{port}"], server.banner
    assert server.banner.rstrip().endswith(f"join with: nc localhost {port}")
    four, six = await connect("127.0.0.1", port), await connect("::1", port)
    four_name, six_name = await joined(four), await joined(six)
    six_host, six_port = six.writer.get_extra_info("sockname")[:2]
    assert (four_name, six_name) == (four.local_id, f"[{six_host}]:{six_port}")
    await six.send("over IPv6")
    assert await four.until_contains("over IPv6") == f"<{six_name}> over IPv6"
    await four.close()
    await six.close()
    server.stop()


async def test_host_given_twice_listens_on_both_and_says_so():
    server = Server("--host", "127.0.0.1", "--host", "::1", "--port", "0")
    addresses = server.read_banner()
    port = int(addresses[0].rsplit(":", 1)[1])
    assert addresses == [f"127.0.0.1:{port}", f"[::1]:{port}"]
    assert server.banner.rstrip().endswith(f"join with: nc 127.0.0.1 {port}")
    for host in ("127.0.0.1", "::1"):
        peer = await connect(host, port)
        await joined(peer)
        await peer.close()
    server.stop()


async def test_the_ipv6_wildcard_takes_ipv4_clients_too():
    """``--host ::`` refused an IPv4 client before; an IPv4 user is named by its IPv4
    address, not ::ffff:127.0.0.1."""
    server = Server("--host", "::", "--port", "0")
    [address] = server.read_banner()
    port = int(address.rsplit(":", 1)[1])
    assert address == f"[::]:{port}"
    peer = await connect("127.0.0.1", port)
    assert await joined(peer) == peer.local_id
    await peer.close()
    server.stop()


async def test_an_explicit_0_0_0_0_is_ipv4_only():
    """As written: a user who types 0.0.0.0 asked for IPv4 (as nginx and Go read it)."""
    server = Server("--host", "0.0.0.0", "--port", "0")
    [address] = server.read_banner()
    port = int(address.rsplit(":", 1)[1])
    assert address == f"0.0.0.0:{port}"
    with pytest.raises(ConnectionRefusedError):
        await connect("::1", port)
    peer = await connect("127.0.0.1", port)
    await joined(peer)
    await peer.close()
    server.stop()


def test_a_port_in_use_on_one_family_names_that_address():
    """The default listens on both: a port taken on IPv6 alone is named as [::]:PORT."""
    with socket.socket(socket.AF_INET6) as holder:
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        holder.bind(("::", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [str(SERVER_SCRIPT), "--port", str(port)], capture_output=True, text=True, timeout=20
        )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"chatroom-server: cannot listen on [::]:{port} (--port): address already in use;"
    ), result.stderr
    assert result.stderr.count("\n") == 1


# --- socket activation ---------------------------------------------------------------------


async def test_socket_activation_serves_on_the_sockets_systemd_socket_activate_passes(
    certs,  # noqa: F811
):
    """systemd-socket-activate binds, waits for the first connection, then starts the server
    with the sockets (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES): the first user, who connected
    before the server existed, is served; a socket named "tls" serves TLS."""
    activate = processes.require("systemd-socket-activate")
    port, tls_port = free_port("127.0.0.1", "::1"), free_port("127.0.0.1")
    launcher = [
        activate,
        f"--listen=127.0.0.1:{port}",
        f"--listen=[::1]:{port}",
        f"--listen=127.0.0.1:{tls_port}",
        "--fdname=chat:chat:tls",
    ]
    server = Server("--tls-cert", certs.cert, "--tls-key", certs.key, launcher=launcher)
    # systemd-socket-activate says on stderr when it listens; connect only then.
    async with asyncio.timeout(TIMEOUT):
        listening = ""
        while f"[::1]:{port}" not in listening or f"127.0.0.1:{tls_port}" not in listening:
            line = await asyncio.to_thread(server.proc.stderr.readline)
            assert line, f"systemd-socket-activate ended: {listening!r}"
            listening += line
    first = await connect("::1", port)  # this starts the server
    addresses = server.read_banner()
    assert addresses == [f"127.0.0.1:{port}", f"[::1]:{port}"], server.banner
    assert "(sockets from systemd)" in server.banner
    assert f"TLS on port {tls_port}" in server.banner
    first_name = await joined(first)
    context = ssl.create_default_context(cafile=certs.cafile)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", tls_port, ssl=context, server_hostname="localhost"
    )
    over_tls = Peer(reader, writer)
    tls_name = await joined(over_tls)
    await over_tls.send("hello over tls")
    assert await first.until_contains("hello over tls") == f"<{tls_name}> hello over tls"
    four = await connect("127.0.0.1", port)
    await joined(four)
    await first.send("still here")
    assert await four.until_contains("still here") == f"<{first_name}> still here"
    for peer in (first, over_tls, four):
        await peer.close()
    log = server.stop()
    assert "Traceback" not in log


# What systemd does before it starts a service: the socket becomes descriptor 3, LISTEN_PID
# the service's own pid (exec keeps it), LISTEN_FDS and LISTEN_FDNAMES say what there is.
_LAUNCHER = """
import os, sys
fd, names, *command = sys.argv[1:]
os.dup2(int(fd), 3)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES=names)
os.execv(command[0], command)
"""


def _launch_with(fd: int, names: str) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, str(fd), names]


@pytest.mark.parametrize(
    ("names", "flags", "complaint"),
    [
        ("tls", [], "systemd passed a socket named tls (FileDescriptorName=tls): give --tls-cert"),
        ("", ["--workers", "2", "--redis", "redis://127.0.0.1:1/0"], "--workers cannot share"),
        ("NOT_A_SOCKET", [], "descriptor 3 (LISTEN_FDS) is not a listening TCP socket"),
    ],
)
def test_sockets_that_cannot_be_served_as_passed_are_one_clear_line(
    names, flags, complaint, tmp_path
):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    plain = open(tmp_path / "plain-file", "w")  # noqa: SIM115
    fd = plain.fileno() if names == "NOT_A_SOCKET" else listener.fileno()
    try:
        result = subprocess.run(
            [*_launch_with(fd, names), str(SERVER_SCRIPT), *flags],
            capture_output=True,
            text=True,
            timeout=20,
            pass_fds=(fd,),
        )
    finally:
        listener.close()
        plain.close()
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr
    assert result.stderr.startswith("chatroom-server: ")
