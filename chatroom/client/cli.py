"""``chatroom-client HOST:PORT [--name NAME]``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ssl
import sys
from pathlib import Path

from chatroom.cli_parser import OneLineErrorParser, package_version
from chatroom.client.connection import (
    AddressError,
    ServerConnection,
    describe_failure,
    parse_target,
    tls_context,
)
from chatroom.client.notifier import Method
from chatroom.client.settings import DEFAULT_SCROLLBACK, ClientSettings
from chatroom.protocol import DEFAULT_PORT, NAME_MAX_CHARS, name_problem

CONNECTING_AFTER = 0.5  # seconds of silence before the client says it is still connecting


def login_name() -> str | None:
    """The login user name made into a valid chat name, or None if nothing usable is left."""
    try:
        raw = getpass.getuser()
    except Exception:  # getuser raises OSError or KeyError when the user is unknown
        return None
    cleaned = "".join(c for c in raw if c.isprintable() and not c.isspace() and c not in "|:")
    cleaned = cleaned[:NAME_MAX_CHARS]
    return cleaned if name_problem(cleaned) is None else None


def _name(text: str) -> str:
    if (problem := name_problem(text)) is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="chatroom-client",
        description="Join a chatroom server in a terminal UI.",
        epilog="Keys: Enter sends, Up/Down walk the input history, Tab completes names, "
        "F2 renames, Ctrl+F searches, Ctrl+R reconnects, Ctrl+Q quits; /help lists all.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "address",
        metavar="[tls://]HOST:PORT",
        help=f"the server to join (the port defaults to {DEFAULT_PORT}); tls:// connects over "
        "TLS and verifies the server's certificate",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, as tls:// does (the certificate is verified; no fallback)",
    )
    parser.add_argument(
        "--cafile",
        metavar="FILE",
        help="with TLS: trust the CA certificates in FILE (PEM) instead of the system's, "
        "for a private CA or a self-signed server",
    )
    parser.add_argument(
        "--name",
        type=_name,
        default=None,
        help="the name to take after joining (default: your login name)",
    )
    parser.add_argument(
        "--password-file",
        metavar="FILE",
        help="a file holding the room's password, sent when the server asks for it "
        "(default: ask in a dialog)",
    )
    parser.add_argument(
        "--account-password-file",
        metavar="FILE",
        help="a file holding the password of --name, a registered name: the client takes "
        "it with /login instead of /nick (default: /nick; a registered name is refused)",
    )
    parser.add_argument(
        "--scrollback",
        type=int,
        default=DEFAULT_SCROLLBACK,
        metavar="LINES",
        help=f"how many log lines to keep (default: {DEFAULT_SCROLLBACK})",
    )
    parser.add_argument(
        "--log",
        metavar="DIR",
        type=Path,
        help="write each conversation (the room, each private one) to a plain file in DIR",
    )
    parser.add_argument("--seconds", action="store_true", help="show times with seconds (HH:MM:SS)")
    parser.add_argument(
        "--notify",
        choices=[m.value for m in Method],
        default=Method.AUTO.value,
        help="how a mention reaches the desktop: auto (guessed from the terminal), osc777, "
        "osc9, bell or off (default: auto)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port, tls = parse_target(args.address)
    except AddressError as exc:
        parser.error(str(exc))
    if args.scrollback < 1:
        parser.error("--scrollback must be at least 1")
    if args.log is not None and args.log.exists() and not args.log.is_dir():
        parser.error(f"--log {args.log}: not a directory")
    if args.cafile and not (tls or args.tls):
        parser.error("--cafile is for TLS: use tls://HOST:PORT or --tls")
    context = None
    if tls or args.tls:
        try:
            context = tls_context(args.cafile)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not PEM"
            parser.error(f"--cafile {args.cafile}: {reason}")

    password = _secret(parser, "--password-file", args.password_file)
    account_password = _secret(parser, "--account-password-file", args.account_password_file)

    settings = ClientSettings(
        host,
        port,
        name=args.name or login_name(),
        tls=context,
        password=password,
        account_password=account_password,
        scrollback=args.scrollback,
        seconds=args.seconds,
        log_dir=args.log,
        notify=args.notify,
    )
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:  # Ctrl+C while still connecting, before the UI took the keys
        return 130


def _secret(parser: argparse.ArgumentParser, flag: str, path: str | None) -> str | None:
    """The password in the file ``path`` (``flag``'s), or None without one."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"{flag} {path}: {getattr(exc, 'strerror', None) or exc}")
    if not secret:
        parser.error(f"{flag} {path}: the file holds no password")
    return secret


async def run(settings: ClientSettings) -> int:
    # Connect before the UI starts: an unreachable server is one line on stderr, with no
    # screen flashing up and down, and the room sees no join/leave for a mere probe.
    address = settings.address
    opening = asyncio.ensure_future(
        ServerConnection.open(settings.host, settings.port, tls=settings.tls)
    )
    done, _ = await asyncio.wait({opening}, timeout=CONNECTING_AFTER)
    if not done:  # a server that accepts but does not greet: say so, not a blank terminal
        print(f"chatroom-client: connecting to {address}… (waiting for the server's welcome)",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        connection = await opening
    except (OSError, TimeoutError) as exc:
        print(f"chatroom-client: cannot reach {address}: {describe_failure(exc)}", file=sys.stderr)
        return 1

    from chatroom.client.app import ChatApp  # Textual is slow to import: only when needed

    app = ChatApp(settings, connection=connection)
    await app.run_async()
    if app.failure is not None:
        print(f"chatroom-client: {app.failure}", file=sys.stderr)
        return 1
    return app.return_code or 0
