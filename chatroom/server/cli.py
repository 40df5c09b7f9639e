"""``chatroom-server``: parse flags, start the room, stop it gracefully on Ctrl+C or SIGTERM.

The flags are generated from the config (cli_flags.py); one process serves the room
(serve.py), or ``--workers N`` processes do (workers.py). Started by systemd with listening
sockets (LISTEN_FDS), it serves on those (adapter/activation.py).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import sys
from dataclasses import replace

from chatroom.cli_parser import OneLineErrorParser
from chatroom.protocol import name_problem
from chatroom.server.adapter.activation import ActivationError, activated, inherited_sockets
from chatroom.server.adapter.handover import ENV as HANDOVER_ENV
from chatroom.server.adapter.logformat import configure as configure_logging
from chatroom.server.cli_flags import PROG, build_parser, config_from_args
from chatroom.server.core.passwords import hash_password
from chatroom.server.serve import (
    ListenError,
    LoopError,
    banner_line,
    configured_addresses,
    loop_factory,
    raise_fd_limit,
    serve,
)
from chatroom.server.workers import WorkerStartError, run_workers, worker_argv

__all__ = ["banner_line", "build_parser", "config_from_args", "main", "serve", "worker_argv"]


class PasswordFileError(Exception):
    """--password-file cannot be read, or holds no password."""


def read_password(path: str) -> bytes:
    """The room's password: the file's text without surrounding whitespace (a final newline
    is not part of it). Read once, at start."""
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PasswordFileError(f"--password-file {path}: {reason}") from None
    if not secret:
        raise PasswordFileError(f"--password-file {path}: the file holds no password")
    return secret.encode()


def _piped() -> bool:
    """The password comes from a pipe or a file, not a terminal: read it from stdin, once,
    without a prompt (getpass would warn that it cannot turn the echo off)."""
    return not sys.stdin.isatty()


def hash_password_main(argv: list[str]) -> int:
    """``chatroom-server hash-password NAME``: read a password without echo (or its first
    line from a pipe), print the line for --ops-file."""
    parser = OneLineErrorParser(
        prog=f"{PROG} hash-password",
        description="Print an --ops-file line for NAME; the password is read without echo.",
    )
    parser.add_argument("name", help="the operator's name, as given to /oper")
    args = parser.parse_args(argv)
    problem = name_problem(args.name)
    if problem:
        parser.error(f"{args.name!r}: {problem}")
    try:
        if _piped():  # `echo SECRET | chatroom-server hash-password NAME`: its first line
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("password: ")
        if not password:
            parser.error("the password cannot be empty")
        if not _piped() and getpass.getpass("again: ") != password:
            parser.error("the passwords differ")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return 1
    print(f"{args.name} {hash_password(password)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if HANDOVER_ENV in os.environ:  # an upgrade's new process: no SIGUSR2 until it serves
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if argv[:1] == ["hash-password"]:
        return hash_password_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:  # started by systemd with its sockets: serve on them (socket activation)
        inherited = inherited_sockets(os.environ)
        if inherited:
            config = activated(config, inherited)
    except ActivationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    problems = config.problems()
    if problems:
        parser.error(problems[0])
    if config.password_file is not None:
        try:
            config = replace(config, password=read_password(config.password_file))
        except PasswordFileError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
    configure_logging(config.log_level, config.log_format)
    raise_fd_limit()
    try:
        if config.workers > 1:
            return run_workers(
                config,
                lambda port: [sys.executable, "-m", "chatroom.server", *worker_argv(config, port)],
                lambda port: banner_line(
                    config.host, configured_addresses(config.host, port), port, config.workers
                ),
            )
        factory = loop_factory(config.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(config, banner=not config.worker))
    except (ListenError, LoopError, WorkerStartError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
