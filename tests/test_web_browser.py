"""chatroom-web in a real browser: Debian's headless Chromium, driven by Playwright.

The real processes: ``chatroom-server``, ``chatroom-web`` (which starts one real
``chatroom-client`` a visitor), and Chromium; the other user is a raw TCP socket, as nc.
The terminal in the page is drawn on a canvas, so what the browser shows is checked as
what it received to draw: the WebSocket frames the page got from chatroom-web (Textual's
screen updates, in which the text of each line appears as it is written).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright

from tests import processes
from tests.conftest import Peer
from tests.test_server_process import ServerProcess

WEB_SCRIPT = Path(sys.executable).with_name("chatroom-web")
PAGE_TIMEOUT = 30.0  # a client process starts in a second or two; the machine is shared
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class WebProcess:
    """``chatroom-web`` for a room; ``url`` from its start-up line."""

    def __init__(self, target: str, *flags: str) -> None:
        assert WEB_SCRIPT.exists(), "chatroom-web is not installed next to this Python"
        self.proc = processes.spawn(
            [str(WEB_SCRIPT), target, "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = self.proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", self.banner)
        assert match, f"no start-up line: {self.banner!r} {self.proc.stderr.read()!r}"
        self.url = match.group(1)


@pytest.fixture
def web():
    """A room (the server process) and chatroom-web in front of it."""
    started = []

    def start(*flags: str, server_flags: tuple[str, ...] = ()) -> tuple[ServerProcess, WebProcess]:
        server = ServerProcess("--port", "0", "--rate", "0", "--idle-timeout", "0", *server_flags)
        page = WebProcess(f"127.0.0.1:{server.port}", *flags)
        started.extend([page, server])
        return server, page

    yield start
    for process in started:
        processes.stop(process.proc)


@pytest.fixture
async def browser(tmp_path):
    """Headless Chromium (Debian's package), a fresh profile."""
    executable = processes.require("chromium")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 650},
        )
        try:
            yield context
        finally:
            await context.close()


class Screen:
    """What a page received from chatroom-web to draw: the text of its frames."""

    def __init__(self) -> None:
        self.received = ""
        self.changed = asyncio.Event()

    def attach(self, page) -> None:
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        self.received += text
        self.changed.set()

    async def shows(self, text: str, timeout: float = PAGE_TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.received:
                self.changed.clear()
                await self.changed.wait()


async def open_client(browser, url: str) -> tuple[object, Screen]:
    """A page with the client drawn in it (its first screen update has come)."""
    page = await browser.new_page()
    screen = Screen()
    screen.attach(page)
    await page.goto(url)
    await page.wait_for_selector("body.-first-byte", timeout=PAGE_TIMEOUT * 1000)
    return page, screen


async def test_a_browser_user_and_an_nc_user_hear_each_other(web, browser, tmp_path):
    server, site = web()
    nc = await Peer.connect(server.port)
    await nc.until_contains("joined")  # its own join
    page, screen = await open_client(browser, site.url)
    joined = await nc.until_contains("joined")
    visitor = joined.split()[1]  # the room named the visitor: the server's default name
    await screen.shows(f"connected as {visitor}")
    await page.click("#terminal")
    await page.keyboard.type("hello from a browser")
    await page.keyboard.press("Enter")
    assert await nc.until_contains("hello from a browser") == (f"<{visitor}> hello from a browser")
    await nc.send("hello from nc")
    await screen.shows("hello from nc")
    shot = tmp_path / "client.png"
    await page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a drawn screen, not an empty page
    await page.close()  # the tab goes: its client process quits and leaves the room
    assert await nc.until_contains(f"{visitor} left") == f"*** {visitor} left"
    await nc.close()


async def test_the_page_says_plainly_when_every_session_is_in_use(web, browser):
    server, site = web("--max-sessions", "1")
    nc = await Peer.connect(server.port)
    first, _ = await open_client(browser, site.url)
    await nc.until(lambda line: line.count("joined") and "127.0.0.1" in line)
    second = await browser.new_page()
    response = await second.goto(site.url)
    assert response.status == 503
    text = await second.inner_text("#full")
    assert "All 1 sessions are in use." in text and "Try again" in text
    await first.close()
    await nc.until_contains(" left")  # its client quit; its session ends with it
    async with asyncio.timeout(PAGE_TIMEOUT):
        while (await second.reload()).status == 503:
            await asyncio.sleep(0.2)
    await second.wait_for_selector("body.-first-byte", timeout=PAGE_TIMEOUT * 1000)
    await nc.close()


async def test_an_idle_session_is_closed_and_says_so(web, browser):
    server, site = web("--idle-timeout", "1")
    nc = await Peer.connect(server.port)
    await nc.until_contains("joined")
    page, screen = await open_client(browser, site.url)
    await nc.until_contains("joined")
    await screen.shows("without a key pressed")
    await page.wait_for_selector("body.-closed", timeout=PAGE_TIMEOUT * 1000)
    await nc.until_contains(" left")
    await nc.close()


async def test_what_a_browser_sends_is_checked_and_never_a_crash(web):
    """Not a browser: what a hostile page's script could send on the session's socket."""
    server, site = web()
    nc = await Peer.connect(server.port)
    await nc.until_contains("joined")
    socket_url = site.url + "ws?width=100000&height=-5"
    async with aiohttp.ClientSession() as http, http.ws_connect(socket_url) as ws:
        await nc.until_contains("joined")  # the client came up, its size clamped
        drawn = b""
        async with asyncio.timeout(PAGE_TIMEOUT):
            while b"connected as" not in drawn:  # its screen is up: it takes keys now
                message = await ws.receive()
                if isinstance(message.data, bytes):
                    drawn += message.data
        for junk in ("not json", "{}", "[]", '["resize", 5]', '["stdin", 7]', '["nope"]'):
            await ws.send_str(junk)
        await ws.send_str('["resize", {"width": 100000, "height": 100000}]')
        await ws.send_bytes(b"\x00binary")
        await ws.send_str('["ping", "x"]')
        # Still a working client: a line typed reaches the room (keys, then Enter).
        await ws.send_str('["stdin", "typed over the socket\\r"]')
        assert "typed over the socket" in await nc.until_contains("typed over the socket")
        too_big = '["stdin", "' + "x" * 70_000 + '"]'
        await ws.send_str(too_big)  # over the message limit: closed by aiohttp (1009)
        async with asyncio.timeout(PAGE_TIMEOUT):
            async for _ in ws:
                pass
        assert ws.close_code == 1009
    await nc.until_contains(" left")  # its client process ended with the session
    assert site.proc.poll() is None  # chatroom-web is still serving
    async with aiohttp.ClientSession() as http, http.get(site.url) as page:
        assert page.status == 200
    await nc.close()
