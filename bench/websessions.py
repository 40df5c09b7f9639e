"""What a chatroom-web session costs: ``python -m bench.websessions [--sessions N]``.

Starts a room (``chatroom-server``) and ``chatroom-web`` in front of it, opens N sessions
the way a browser does (the page's WebSocket, with a terminal size; aiohttp's client, no
browser), waits until the room has seen every session's client join and each client has
drawn its screen, then reads the memory of chatroom-web's process tree from /proc: RSS
and PSS (shared pages divided among the processes that share them, so PSS adds up), for
chatroom-web itself and for each client process. Then it closes the sessions and checks
the processes are gone. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp

from bench.serverproc import process_tree

BIN = os.path.dirname(sys.executable)


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) if it is gone."""
    values = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


def command(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return "?"


async def open_session(url: str, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    """A session as a browser opens it; returns once its client has drawn a screen."""
    ws = await http.ws_connect(url + "ws?width=120&height=40")
    await ws.send_str(json.dumps(["resize", {"width": 120, "height": 40}]))
    drawn = b""
    async with asyncio.timeout(60):
        while b"connected as" not in drawn:
            message = await ws.receive()
            if isinstance(message.data, bytes):
                drawn += message.data
    return ws


async def measure(sessions: int) -> dict:
    server = subprocess.Popen(
        [f"{BIN}/chatroom-server", "--host", "127.0.0.1", "--port", "0", "--idle-timeout", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    web = None
    try:
        port = re.search(r"127\.0\.0\.1:(\d+)", server.stdout.readline()).group(1)
        web = subprocess.Popen(
            [f"{BIN}/chatroom-web", f"127.0.0.1:{port}", "--port", "0", "--max-sessions",
             str(sessions)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        url = re.search(r"at (http://\S+/)", web.stdout.readline()).group(1)
        before = memory_kib(web.pid)
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            sockets = [await open_session(url, http) for _ in range(sessions)]
            opened = time.monotonic() - started
            await asyncio.sleep(2.0)  # the clients settle (Textual's first frames, GC)
            tree = process_tree(web.pid)
            clients = [pid for pid in tree if pid != web.pid and "chatroom.client" in command(pid)]
            others = [pid for pid in tree if pid != web.pid and pid not in clients]
            per_client = [memory_kib(pid) for pid in clients]
            web_now = memory_kib(web.pid)
            result = {
                "sessions": sessions,
                "client_processes": len(clients),
                "other_processes": [command(pid) for pid in others],
                "seconds_to_open_all": round(opened, 2),
                "web_rss_kib_before": before[0],
                "web_rss_kib_with_sessions": web_now[0],
                "client_rss_kib": sorted(rss for rss, _ in per_client),
                "client_pss_kib": sorted(pss for _, pss in per_client),
                "others_rss_kib": [memory_kib(pid)[0] for pid in others],
            }
            for ws in sockets:
                await ws.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(process_tree(web.pid)) > 1:
            await asyncio.sleep(0.2)
        result["processes_left_after_close"] = len(process_tree(web.pid)) - 1
        return result
    finally:
        for proc in (web, server):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websessions", description=__doc__)
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(measure(args.sessions))
    print(json.dumps(result, indent=2))
    rss, pss = result["client_rss_kib"], result["client_pss_kib"]
    if pss:
        print(
            f"{result['sessions']} sessions: a client process is {sum(rss) / len(rss) / 1024:.1f}"
            f" MiB RSS, {sum(pss) / len(pss) / 1024:.1f} MiB PSS (mean); chatroom-web itself "
            f"{result['web_rss_kib_before'] / 1024:.1f} -> "
            f"{result['web_rss_kib_with_sessions'] / 1024:.1f} MiB RSS",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
