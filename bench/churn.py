"""The churn soak: clients join, chat, rename and leave while a few never read.

One load-generator process runs three kinds of client against one server:

- *observers* stay for the whole run in JSON mode, chat and rename now and then, and check
  that the ``seq`` of every live broadcast event is the previous one plus 1 (no gaps, no
  repeats). A few of them (*talkers*) also send long lines, so that the stuck clients' queues
  fill up in seconds rather than hours.
- *churners* loop: connect (half in JSON mode), wait for the welcome, chat, rename, chat,
  then leave by ``/quit``, by closing (EOF) or by resetting the connection.
- *stuck* clients connect with a tiny receive buffer, rename themselves ``stuckN`` and never
  read. The server must drop each one with reason ``slow``; the observers see those leaves.

Every loop ends at the deadline; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from typing import Any

from bench.loadgen import cpu_now, new_loop, raise_nofile


class Observer(asyncio.Protocol):
    def __init__(self, w: ChurnWorker, index: int) -> None:
        self.w = w
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.json_on = False
        self.welcomed = asyncio.Event()
        self.last_seq: int | None = None
        self.events = 0
        self.gaps: list[tuple[int, int]] = []
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"/format json\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if not self.json_on:
                if line.startswith(b'{"type":"format"'):
                    self.json_on = True
                continue
            event = json.loads(line)
            kind = event["type"]
            if kind == "welcome":
                self.welcomed.set()
                continue
            seq = event.get("seq")
            if seq is None or event.get("history"):
                continue
            if self.last_seq is not None and seq != self.last_seq + 1:
                self.gaps.append((self.last_seq, seq))
            self.last_seq = seq
            self.events += 1
            if kind == "leave" and event["reason"] == "slow":
                self.w.slow_names.add(event["name"])

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.w.stopping:
            self.w.errors.append(f"observer {self.index} lost its connection ({exc})")


class Churner(asyncio.Protocol):
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.transport: asyncio.Transport | None = None
        self.pre = b""
        self.welcomed = asyncio.Event()
        self.closed = asyncio.Event()
        self.lines = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.json_mode:
            transport.write(b"/format json\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.lines += data.count(b"\n")
        if not self.welcomed.is_set():
            self.pre += data
            if (b'{"type":"welcome"' if self.json_mode else b"*** Welcome,") in self.pre:
                self.welcomed.set()
                self.pre = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


class ChurnWorker:
    def __init__(self, pipe: Any, spec: dict) -> None:
        self.pipe = pipe
        self.spec = spec
        self.port = spec["port"]
        self.errors: list[str] = []
        self.slow_names: set[str] = set()
        self.stuck_names: list[str] = []
        self.stuck_socks: list[socket.socket] = []
        self.stopping = False
        self.cycles = 0
        self.leaves = {"quit": 0, "eof": 0, "reset": 0}
        self.transports: list[asyncio.BaseTransport] = []
        self.rng = random.Random(spec.get("seed", 1))

    async def _connect(self, factory: Any) -> Any:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_connection(factory, "127.0.0.1", self.port)
        self.transports.append(transport)
        return proto

    async def _stuck(self, i: int) -> None:
        name = f"stuck{i}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        await loop.sock_sendall(sock, f"rename|{name}\n".encode())
        # A bare socket that no loop watches: nothing ever reads it.
        self.stuck_socks.append(sock)
        self.stuck_names.append(name)

    async def _observer_life(self, obs: Observer, talker: bool, deadline: float) -> None:
        big = ("T" * self.spec["talk_size"]).encode()
        k = 0
        while time.monotonic() < deadline and not obs.lost:
            k += 1
            assert obs.transport is not None
            if talker:
                obs.transport.write(b"".join(b"%d %s\n" % (j, big) for j in range(4)))
            else:
                obs.transport.write(b"observer %d says %d\n" % (obs.index, k))
            if k % 25 == 0:
                obs.transport.write(b"rename|obs%dr%d\n" % (obs.index, k))
            if k % 40 == 0:
                obs.transport.write(b"/me waves\n/who\n")
            await asyncio.sleep(4 / self.spec["talk_rate"] if talker else 0.3)

    async def _churner(self, slot: int, deadline: float) -> None:
        rng = self.rng
        n = 0
        while time.monotonic() < deadline - 0.5:
            n += 1
            proto = Churner(json_mode=rng.random() < 0.5)
            try:
                await asyncio.wait_for(self._connect(lambda proto=proto: proto), 5)
                await asyncio.wait_for(proto.welcomed.wait(), 5)
            except (OSError, TimeoutError) as exc:
                self.errors.append(f"churner {slot}: no welcome ({exc!r})")
                return
            t = proto.transport
            assert t is not None
            t.write(b"hello from churner %d\n" % slot)
            t.write(b"rename|c%dn%d\n" % (slot, n))
            await asyncio.sleep(rng.uniform(0.02, 0.2))
            t.write(b"still here %d\n" % n)
            how = rng.choice(("quit", "eof", "reset"))
            self.leaves[how] += 1
            if how == "quit":
                t.write(b"/quit churning\n")
            elif how == "eof":
                t.write_eof()
            else:
                t.abort()
            try:
                await asyncio.wait_for(proto.closed.wait(), 5)
            except TimeoutError:
                self.errors.append(f"churner {slot}: server did not close after {how}")
                t.abort()
            self.cycles += 1
            await asyncio.sleep(rng.uniform(0.0, self.spec["churn_pause"]))

    async def run(self) -> None:
        spec = self.spec
        loop = asyncio.get_running_loop()
        observers = [Observer(self, i) for i in range(spec["observers"])]
        for obs in observers:
            await self._connect(lambda obs=obs: obs)
        for obs in observers:
            try:
                await asyncio.wait_for(obs.welcomed.wait(), 10)
            except TimeoutError:
                self.errors.append(f"observer {obs.index}: no JSON welcome")
        cpu0 = cpu_now()
        t0 = time.monotonic()
        deadline = t0 + spec["duration"]
        self.pipe.send(("ready", {"observers": len(observers)}))
        tasks = [
            loop.create_task(self._observer_life(o, o.index < spec["talkers"], deadline))
            for o in observers
        ]
        tasks += [loop.create_task(self._churner(s, deadline)) for s in range(spec["churners"])]
        # Stuck clients: some at once, then one more every stuck_every seconds in the first half.
        stuck_i = 0
        for _ in range(spec["stuck"]):
            await self._stuck(stuck_i)
            stuck_i += 1
        next_stuck = t0 + spec["stuck_every"]
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if time.monotonic() >= next_stuck and time.monotonic() < t0 + spec["duration"] / 2:
                await self._stuck(stuck_i)
                stuck_i += 1
                next_stuck += spec["stuck_every"]
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        # Let the last events reach the observers, then check what they saw.
        await asyncio.sleep(1.0)
        cpu = cpu_now() - cpu0
        missing = sorted(set(self.stuck_names) - self.slow_names)
        result = {
            "duration": time.monotonic() - t0,
            "cpu": cpu,
            "cycles": self.cycles,
            "leaves": self.leaves,
            "observers": len(observers),
            "events_checked": sum(o.events for o in observers),
            "gaps": sum(len(o.gaps) for o in observers),
            "gap_examples": [g for o in observers for g in o.gaps][:5],
            "stuck": len(self.stuck_names),
            "stuck_kicked_slow": len(set(self.stuck_names) & self.slow_names),
            "stuck_not_kicked": missing,
            "errors": self.errors[:10],
        }
        self.pipe.send(("result", result))
        while True:
            if self.pipe.poll():
                message = self.pipe.recv()
                if message[0] == "stop":
                    self.stopping = True
                    self.pipe.send(("stopping",))
                elif message[0] == "exit":
                    break
            await asyncio.sleep(0.05)
        self.stopping = True
        for t in self.transports:
            t.abort()
        for sock in self.stuck_socks:
            sock.close()
        await asyncio.sleep(0)


def churn_main(pipe: Any, spec: dict) -> None:
    raise_nofile()
    loop = new_loop(spec["gen_loop"])
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(ChurnWorker(pipe, spec).run())
    finally:
        loop.close()
