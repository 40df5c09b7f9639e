"""The adapter's side of admission: sizing --max-clients to the open-file limit, the flags,
a flood logged once per interval, and the listener when accept() runs out of descriptors."""

from __future__ import annotations

import errno
import logging
import resource
import socket

import pytest

from chatroom.server.adapter import listener as listener_module
from chatroom.server.adapter.listener import SERVER_FULL_LINE, Listener, fit_to_fd_limit
from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.cli import build_parser, config_from_args, worker_argv
from chatroom.server.config import ServerConfig

# --- --max-clients against RLIMIT_NOFILE ---------------------------------------------------


@pytest.mark.parametrize(
    ("soft", "expected"),
    [(64, 64 - 10 - 16), (10_000 + 10 + 16, None), (resource.RLIM_INFINITY, None)],
)
def test_max_clients_is_lowered_to_what_the_open_file_limit_holds(monkeypatch, soft, expected):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, soft))
    monkeypatch.setattr(listener_module, "open_fds", lambda: 10)
    config, note = fit_to_fd_limit(ServerConfig(max_clients=10_000, fd_reserve=16))
    if expected is None:
        assert config.max_clients == 10_000 and note is None
    else:
        assert config.max_clients == expected
        assert note == (
            f"--max-clients lowered from 10000 to {expected} to fit the open-file limit of 64"
        )


def test_at_least_one_client_fits(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (20, 20))
    monkeypatch.setattr(listener_module, "open_fds", lambda: 10)
    assert fit_to_fd_limit(ServerConfig(fd_reserve=16))[0].max_clients == 1


# --- flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "exempt"),
    [
        ([], ("127.0.0.0/8", "::1/128")),
        (["--exempt-ip"], ()),
        (["--exempt-ip", "10.1.2.3", "2001:db8::1/48"], ("10.1.2.3/32", "2001:db8::/48")),
    ],
)
def test_exempt_ip_flag(argv, exempt):
    config = config_from_args(build_parser().parse_args(argv))
    assert config.exempt_ip == exempt
    hash(config)  # still a frozen, hashable config (a tuple, not the parser's list)


def test_a_bad_exempt_network_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--exempt-ip", "10.0.0.300"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--exempt-ip" in err and "10.0.0.300" in err


@pytest.mark.parametrize(
    "overrides",
    [
        {"exempt_ip": ()},
        {"exempt_ip": ("10.0.0.0/8",), "connect_burst": 5, "connect_rate": 0.5},
        {},
    ],
)
def test_workers_get_the_same_admission_flags(overrides):
    config = ServerConfig(redis="redis://127.0.0.1:1/0", workers=2, **overrides)
    argv = worker_argv(config, 4000)
    again = config_from_args(build_parser().parse_args(argv))
    for name in ("exempt_ip", "connect_burst", "connect_rate"):
        assert getattr(again, name) == getattr(config, name)


# --- a flood in the log ----------------------------------------------------------------------


class Timers:
    """Just enough of an event loop: call_later is recorded and run by hand."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, object, tuple]] = []

    def call_later(self, delay, callback, *args):
        self.pending.append((delay, callback, args))

    def run(self) -> None:
        pending, self.pending = self.pending, []
        for _, callback, args in pending:
            callback(*args)


def test_a_flood_is_logged_once_then_counted_per_interval(caplog):
    timers = Timers()
    logger = logging.getLogger("test.lograte")
    once = OncePerInterval(logger, 10.0, timers)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="test.lograte"):
        for n in range(1000):
            once.log("refused (full)", logging.WARNING, "refused peer%d", n)
        once.log("out of fds", logging.WARNING, "out of file descriptors")
        assert [r.getMessage() for r in caplog.records] == [
            "refused peer0",
            "out of file descriptors",
        ]
        timers.run()  # the intervals end
        assert caplog.records[-1].getMessage() == "refused (full): 999 more in the last 10s"
        assert len(caplog.records) == 3
        timers.run()  # a quiet interval: nothing more, and the next one is logged at once
        once.log("refused (full)", logging.WARNING, "refused again")
        assert caplog.records[-1].getMessage() == "refused again"
        assert len(caplog.records) == 4


# --- the listener out of descriptors ---------------------------------------------------------


class Loop:
    def __init__(self) -> None:
        self.readers: dict[int, object] = {}
        self.timers = Timers()

    def add_reader(self, fd, callback, *args):
        self.readers[fd] = callback

    def remove_reader(self, fd):
        self.readers.pop(fd, None)

    def call_later(self, delay, callback, *args):
        self.timers.call_later(delay, callback, *args)


class ExhaustedSocket:
    """A listening socket in a process out of descriptors: accept() fails with EMFILE
    unless a descriptor was freed (the spare), and then hands over ``waiting``."""

    def __init__(self, waiting: list[socket.socket], listener: Listener) -> None:
        self.waiting = waiting
        self.listener = listener

    def fileno(self) -> int:
        return 999

    def accept(self):
        if self.listener._spare is not None:
            raise OSError(errno.EMFILE, "Too many open files")
        if not self.waiting:
            raise BlockingIOError
        return self.waiting.pop(0), ("127.0.0.1", 1)


def make_listener(loop: Loop) -> Listener:
    logger = logging.getLogger("test.listener")
    once = OncePerInterval(logger, 10.0, loop.timers)  # type: ignore[arg-type]
    config = ServerConfig(accept_retry=0.25)
    return Listener(loop, config, lambda: None, once, batch=100)  # type: ignore[arg-type]


def test_out_of_descriptors_every_waiting_newcomer_hears_server_full(caplog):
    loop = Loop()
    listener = make_listener(loop)
    listener._spare = listener_module._open_spare()
    pairs = [socket.socketpair() for _ in range(3)]
    sock = ExhaustedSocket([server_side for server_side, _ in pairs], listener)
    with caplog.at_level(logging.WARNING, logger="test.listener"):
        listener._accept(sock)  # type: ignore[arg-type]
    for _, client in pairs:
        client.settimeout(5)
        assert client.recv(100) == SERVER_FULL_LINE == b"*** server full; try again later\n"
        assert client.recv(100) == b""
        client.close()
    assert listener._spare is not None  # taken back
    assert [r.getMessage()[:23] for r in caplog.records] == ["out of file descriptors"]
    listener.close()


def test_with_no_spare_descriptor_the_listener_pauses_instead_of_spinning(monkeypatch):
    loop = Loop()
    listener = make_listener(loop)
    monkeypatch.setattr(listener_module, "_open_spare", lambda: None)
    listener._spare = None
    sock = ExhaustedSocket([], listener)

    def accept():
        raise OSError(errno.EMFILE, "Too many open files")

    sock.accept = accept  # type: ignore[method-assign]
    loop.add_reader(999, listener._accept, sock)
    listener._accept(sock)  # type: ignore[arg-type]
    assert 999 not in loop.readers  # not called again until the retry
    assert [delay for delay, _, _ in loop.timers.pending if delay == 0.25]
    loop.timers.run()
    assert 999 in loop.readers
