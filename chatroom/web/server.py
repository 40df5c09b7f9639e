"""The web page that runs the real ``chatroom-client`` for each visitor (textual-serve).

textual-serve's :class:`~textual_serve.server.Server` serves a page with a terminal
(xterm.js) and, for each browser that opens its WebSocket, starts the Textual app as a
process of its own with Textual's web driver: keys go in, screen updates come out. The app
is ``chatroom-client HOST:PORT``, unchanged: every key and dialog a terminal user has.

What this module adds to textual-serve, for a page anyone may open:

- at most ``max_sessions`` client processes at once; past that the page says so plainly
  (HTTP 503, ``full.html``), and a WebSocket that comes anyway is closed (1013);
- a session with no key pressed for ``idle_timeout`` seconds is closed, its process ended;
- what a browser sends is checked: a terminal size is clamped (a 100000x100000 screen
  would cost the client gigabytes), a message is at most ``MAX_MESSAGE`` bytes, anything
  that is not a known envelope is ignored rather than a traceback;
- a client that exits (it could not reach the room, the visitor pressed Ctrl+Q) ends its
  session, and a process that does not quit when told is killed;
- without ``--public-url`` the page's links follow the address the browser used, so the
  page works on any interface it listens on; behind a reverse proxy, ``--public-url`` says
  the outside address (README, "From a browser").

Each session's process costs memory (measured in docs/PERFORMANCE.md, "chatroom-web"):
``max_sessions`` is what bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

log = logging.getLogger("chatroom.web")

TEMPLATES = Path(__file__).with_name("templates")
MAX_MESSAGE = 64 * 1024  # bytes one message from the browser may hold (a paste)
WIDTH = (20, 400)  # the terminal sizes a browser may ask for, in cells
HEIGHT = (8, 200)
TRY_AGAIN = 1013  # the WebSocket close code for "try again later"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """What ``chatroom-web`` was told (cli.py)."""

    target: str  # the room, as chatroom-client takes it: [tls://]HOST:PORT
    host: str = "127.0.0.1"
    port: int = 8080
    max_sessions: int = 10
    idle_timeout: float = 600.0  # seconds without a key pressed
    public_url: str | None = None
    title: str = "chatroom"
    stop_grace: float = 3.0  # seconds a client has to quit when told, then it is killed
    idle_check: float = 5.0  # seconds between looks for idle sessions


def clamp(value: Any, bounds: tuple[int, int], default: int) -> int:
    """``value`` as an int within ``bounds``; ``default`` if it is not a number."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(bounds[0], min(bounds[1], number))


class ClientProcess(AppService):
    """One visitor's chatroom-client process (textual-serve's AppService), which joins the
    room under the server's default name (the visitor renames with F2) and ends its
    session when it exits."""

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        # The client's default name is the login name: the web server's account is nobody's
        # name (and would be everyone's). "|" is no valid name: the room picks one.
        environment["LOGNAME"] = "|"
        return environment

    async def run(self) -> None:
        await super().run()
        process = self._process
        if process is not None and await process.wait() != 0:
            with contextlib.suppress(Exception):
                await self.remote_write_bytes(
                    b"\r\nchatroom-client could not reach the room or stopped with an error "
                    b"(the web server's log says why). Reload the page to try again.\r\n"
                )
        with contextlib.suppress(Exception):
            await self.remote_close()

    async def end(self, grace: float) -> None:
        """Tell the client to quit; kill it if it has not within ``grace`` seconds."""
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self.stop(), grace)
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


@dataclass(slots=True)
class Session:
    websocket: web.WebSocketResponse
    last_key: float = field(default_factory=time.monotonic)
    client: ClientProcess | None = None


class WebDoor(Server):
    """textual-serve's server for chatroom-client, with the limits in the module's doc."""

    def __init__(self, settings: WebSettings) -> None:
        client = [sys.executable, "-m", "chatroom.client", settings.target]
        super().__init__(
            "exec " + shlex.join(client),  # textual-serve runs it with sh: no sh left over
            host=settings.host,
            port=settings.port,
            title=settings.title,
            public_url=settings.public_url,
            templates_path=TEMPLATES,
        )
        self.settings = settings
        self.sessions: dict[str, Session] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def make_app(self) -> web.Application:
        return await self._make_app()

    async def on_startup(self, app: web.Application) -> None:
        self._reaper = asyncio.create_task(self._close_idle_sessions())

    async def on_shutdown(self, app: web.Application) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for session in list(self.sessions.values()):
            await session.websocket.close(code=1001, message=b"the web server is stopping")

    # --- the page ------------------------------------------------------------------------

    def _base_url(self, request: web.Request) -> str:
        """Where the browser reaches us: --public-url, or the address it used."""
        if self.settings.public_url is not None:
            return self.settings.public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    async def handle_index(self, request: web.Request) -> web.Response:
        settings = self.settings
        if len(self.sessions) >= settings.max_sessions:
            context = {
                "title": settings.title,
                "max_sessions": settings.max_sessions,
                "target": settings.target,
            }
            return aiohttp_jinja2.render_template("full.html", request, context, status=503)
        base = self._base_url(request)
        router = request.app.router
        socket_url = base + str(router["websocket"].url_for())
        scheme, rest = socket_url.split(":", 1)
        context = {
            "font_size": clamp(request.query.get("fontsize"), (8, 48), 16),
            "app_websocket_url": ("wss:" if scheme == "https" else "ws:") + rest,
            "config": {"static": {"url": base + "/static/"}},
            "application": {"name": settings.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    # --- one session ---------------------------------------------------------------------

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
        if len(self.sessions) >= self.settings.max_sessions:
            await websocket.prepare(request)
            await websocket.close(code=TRY_AGAIN, message=b"all sessions are in use")
            return websocket
        key = uuid.uuid4().hex
        session = self.sessions[key] = Session(websocket)  # counted before any await
        try:
            await websocket.prepare(request)
            width = clamp(request.query.get("width"), WIDTH, 80)
            height = clamp(request.query.get("height"), HEIGHT, 24)
            session.client = ClientProcess(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
            )
            log.info(
                "session %s starts (%d of %d)",
                key[:8],
                len(self.sessions),
                self.settings.max_sessions,
            )
            await session.client.start(width, height)
            await self._take_messages(session)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("session %s failed", key[:8])
        finally:
            if session.client is not None:
                await session.client.end(self.settings.stop_grace)
            with contextlib.suppress(Exception):
                await websocket.close()
            self.sessions.pop(key, None)
            log.info("session %s ended (%d open)", key[:8], len(self.sessions))
        return websocket

    async def _take_messages(self, session: Session) -> None:
        """What the browser sends: keys, sizes, focus; anything else is ignored."""
        client = session.client
        assert client is not None
        async for message in session.websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                session.last_key = time.monotonic()
                await client.send_bytes(data.encode("utf-8", "replace"))
            elif kind == "resize" and isinstance(data, dict):
                width = clamp(data.get("width"), WIDTH, 80)
                height = clamp(data.get("height"), HEIGHT, 24)
                await client.set_terminal_size(width, height)
            elif kind == "ping" and isinstance(data, str | int | float):
                await session.websocket.send_json(["pong", data])
            elif kind == "blur":
                await client.blur()
            elif kind == "focus":
                await client.focus()

    async def _close_idle_sessions(self) -> None:
        settings = self.settings
        every = min(settings.idle_check, settings.idle_timeout / 4)
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if now - session.last_key >= settings.idle_timeout:
                    if session.client is not None:
                        with contextlib.suppress(Exception):
                            await session.client.remote_write_bytes(
                                b"\r\nClosed after %ds without a key pressed.\r\n"
                                % settings.idle_timeout
                            )
                    await session.websocket.close(code=1000, message=b"idle")


async def serve(settings: WebSettings, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled (or SIGINT/SIGTERM, which the CLI turns into a cancel)."""
    door = WebDoor(settings)
    app = await door.make_app()
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        # The request a visitor sends: a short line and a few headers.
        max_line_size=4096,
        max_field_size=4096,
        max_headers=64,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(
            f"chatroom-web serving chatroom-client for {settings.target} at "
            f"http://{shown}:{bound[1]}/ (at most {settings.max_sessions} sessions)",
            flush=True,
        )
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
