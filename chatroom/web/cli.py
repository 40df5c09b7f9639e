"""``chatroom-web HOST:PORT [--host H] [--port W]``: the chat client in a web page."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from chatroom.cli_parser import OneLineErrorParser, argument_type, package_version
from chatroom.client.connection import AddressError, parse_target
from chatroom.server import flag_values as v
from chatroom.web.server import WebSettings, serve

PROG = "chatroom-web"


def _public_url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or "?" in text or "#" in text:
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    defaults = WebSettings("")
    parser = OneLineErrorParser(
        prog=PROG,
        description="Serve chatroom-client in a web page: each visitor gets the real client, "
        "connected to the room at [tls://]HOST:PORT.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("target", metavar="[tls://]HOST:PORT", help="the room to join")
    parser.add_argument(
        "--host",
        default=defaults.host,
        help="address the web page listens on (default: %(default)s; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port",
        type=argument_type(v.port),
        default=defaults.port,
        help="web port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--max-sessions",
        type=argument_type(v.positive_int),
        default=defaults.max_sessions,
        metavar="N",
        help="visitors at once, each a client process (about 41 MiB); later ones are told all "
        "sessions are in use (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=argument_type(v.positive_float),
        default=defaults.idle_timeout,
        metavar="SECONDS",
        help="close a session with no key pressed for this long (default: %(default)g)",
    )
    parser.add_argument(
        "--public-url",
        type=argument_type(_public_url),
        metavar="URL",
        help="the page's address as visitors see it, behind a reverse proxy "
        "(e.g. https://chat.example.org); default: the address the browser used",
    )
    parser.add_argument("--title", default=defaults.title, help="the page's title")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        parse_target(args.target)
    except AddressError as exc:
        parser.error(str(exc))
    settings = WebSettings(
        args.target,
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        public_url=args.public_url,
        title=args.title,
    )
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    return asyncio.run(_run(settings))


async def _run(settings: WebSettings) -> int:
    task = asyncio.ensure_future(serve(settings))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        return 0
    except OSError as exc:
        print(f"{PROG}: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
