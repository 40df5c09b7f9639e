"""``flood-oper`` (issue 18, item 2): /oper guessers from many addresses, and what a
bystander's round trip is meanwhile.

The server has one operator (``--ops-file``, a hash of the default cost). ``addresses``
loopback addresses (127.0.0.2, 127.0.0.3 ...) each run ``per_address`` guessers; a
guesser connects, waits for its welcome, sends ``/oper boss WRONG``, waits for the answer
and closes, over and over: a reconnect is how a guesser gets past a wait kept per
connection. Meanwhile one bystander on 127.0.0.1 sends ``/ping N`` every ``ping_every``
seconds (whether or not the last one was answered) and times each ``*** pong N``; the
figures are its round trips' p50, p90 and max, and what the guessers were told.

Run it with ``python -m bench --scenario flood-oper`` (``--server-src DIR`` for an older
server: the figures before and after are in docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.loadgen import new_loop, raise_nofile

_OPS_DIR: tempfile.TemporaryDirectory | None = None


def server_args() -> list[str]:
    """``--ops-file`` with the operator ``boss`` (a hash made by this checkout, with the
    default cost: what ``chatroom-server hash-password`` writes)."""
    global _OPS_DIR
    from chatroom.server.core.passwords import hash_password

    if _OPS_DIR is None:
        _OPS_DIR = tempfile.TemporaryDirectory(prefix="bench-oper-")
    path = Path(_OPS_DIR.name) / "ops"
    path.write_text(f"boss {hash_password('the right one')}\n")
    return ["--ops-file", str(path)]


# --- the generator side ------------------------------------------------------------------------


class OperLoad:
    def __init__(self, port: int, params: dict) -> None:
        self.port = port
        self.p = params
        self.told: dict[str, int] = {}  # the guessers' answers, by their first words
        self.attempts = 0
        self.rtts: list[float] = []
        self.pings_lost = 0
        self.stop = False

    async def guesser(self, source: str, k: int) -> None:
        n = 0
        while not self.stop:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0)
                )
            except OSError:
                self.told["connect failed"] = self.told.get("connect failed", 0) + 1
                await asyncio.sleep(0.05)
                continue
            try:
                await reader.readline()  # the welcome
                n += 1
                writer.write(f"/oper boss wrong-{source}-{k}-{n}\n".encode())
                self.attempts += 1
                while line := await asyncio.wait_for(reader.readline(), 30):
                    if line.startswith(b"error:"):
                        words = " ".join(line.decode().split()[1:4])
                        self.told[words] = self.told.get(words, 0) + 1
                        break
            except (OSError, TimeoutError):
                self.told["no answer"] = self.told.get("no answer", 0) + 1
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def bystander(self, seconds: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        await reader.readline()
        sent: dict[int, float] = {}

        async def read() -> None:
            while line := await reader.readline():
                if line.startswith(b"*** pong "):
                    number = int(line.split()[2])
                    self.rtts.append(time.monotonic() - sent.pop(number))

        reading = asyncio.create_task(read())
        end = time.monotonic() + seconds
        number = 0
        while time.monotonic() < end:
            number += 1
            sent[number] = time.monotonic()
            writer.write(f"/ping {number}\n".encode())
            await asyncio.sleep(self.p["ping_every"])
        with contextlib.suppress(TimeoutError):  # the last answers
            async with asyncio.timeout(10):
                while sent:
                    await asyncio.sleep(0.05)
        self.pings_lost = len(sent)
        reading.cancel()
        writer.close()

    async def run(self) -> dict:
        p = self.p
        sources = [f"127.0.0.{2 + a}" for a in range(p["addresses"])]
        guessers = [
            asyncio.create_task(self.guesser(source, k))
            for source in sources
            for k in range(p["per_address"])
        ]
        await asyncio.sleep(p["warmup"])
        attempts0 = self.attempts
        started = time.monotonic()
        await self.bystander(p["seconds"])
        seconds = time.monotonic() - started
        self.stop = True
        attempts = self.attempts - attempts0
        await asyncio.wait(guessers, timeout=30)
        for task in guessers:
            task.cancel()
        rtts = sorted(self.rtts)
        return {"rtts": rtts, "pings_lost": self.pings_lost, "attempts": attempts,
                "seconds": seconds, "told": self.told}  # fmt: skip


def oper_main(pipe: Any, spec: dict) -> None:
    """Entry point of the generator process: ("run", params) -> ("ok", figures)."""
    raise_nofile()
    loop = new_loop(spec["gen_loop"])
    asyncio.set_event_loop(loop)
    try:
        while True:
            message = pipe.recv()
            if message[0] == "run":
                try:
                    result = loop.run_until_complete(OperLoad(spec["port"], message[1]).run())
                except Exception as exc:  # reported, not raised: the coordinator waits
                    pipe.send(("error", f"{type(exc).__name__}: {exc}"))
                else:
                    pipe.send(("ok", result))
            elif message[0] == "stop":
                pipe.send(("stopping",))
            elif message[0] == "exit":
                return
    finally:
        loop.close()


# --- the coordinator side ----------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def run_oper(flood: Any) -> None:
    """The scenario, driven by :class:`bench.floods.Flood` (``flood``)."""
    run, p = flood.run, flood.p
    seconds = 3.0 if flood.quick else p["seconds"]
    params = {**p, "seconds": seconds}
    run._spawn(oper_main, [{"port": flood.server.port, "gen_loop": run.opts.gen_loop}])
    cpu0, t0 = flood.server.cpu_seconds(), time.monotonic()
    got = flood.call(0, "run", params, timeout=seconds + p["warmup"] + 90, sample=True)
    cpu_pct = 100 * (flood.server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    rtts = got["rtts"]
    ms = {q: None if (v := _pct(rtts, q)) is None else round(v * 1000, 1) for q in (0.5, 0.9)}
    worst = round(rtts[-1] * 1000, 1) if rtts else None
    rate = got["attempts"] / max(1e-9, got["seconds"])
    flood.result.update(
        {
            "clients": p["addresses"] * p["per_address"] + 1,
            "p50_ms": ms[0.5],
            "p90_ms": ms[0.9],
            "max_ms": worst,
            "pings": len(rtts),
            "pings_lost": got["pings_lost"],
            "oper_attempts_per_s": round(rate, 1),
            "guessers_told": got["told"],
            "server_cpu_pct": round(cpu_pct, 1),
            "figure": ms[0.9],
            "unit": "ms (bystander p90)",
            "summary": f"bystander round trip p50 {ms[0.5]} ms, p90 {ms[0.9]} ms, max {worst} "
            f"ms ({len(rtts)} pings, {got['pings_lost']} lost); {rate:.0f} /oper a second "
            f"from {p['addresses']} addresses; told {got['told']}",
        }
    )
    if not rtts:
        flood.result["errors"].append("the bystander got no pong")
