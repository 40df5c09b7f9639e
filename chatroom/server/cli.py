"""``chatroom-server``: parse flags, start the room, stop it gracefully on Ctrl+C or SIGTERM.

The flags are generated from the config (cli_flags.py); one process serves the room
(serve.py), or ``--workers N`` processes do (workers.py).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from dataclasses import replace

from chatroom.cli_parser import OneLineErrorParser
from chatroom.protocol import name_problem
from chatroom.server.adapter.logformat import configure as configure_logging
from chatroom.server.cli_flags import PROG, build_parser, config_from_args
from chatroom.server.core.passwords import hash_password
from chatroom.server.serve import (
    ListenError,
    LoopError,
    banner_line,
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


def hash_password_main(argv: list[str]) -> int:
    """``chatroom-server hash-password NAME``: read a password without echo, print the line
    for --ops-file."""
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
        password = getpass.getpass("password: ")
        if not password:
            parser.error("the password cannot be empty")
        if getpass.getpass("again: ") != password:
            parser.error("the passwords differ")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return 1
    print(f"{args.name} {hash_password(password)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        return hash_password_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args)
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
                lambda port: banner_line(config.host, config.host, port, config.workers),
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
