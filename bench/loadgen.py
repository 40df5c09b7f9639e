"""The load generator: one process per worker, each an event loop with many raw sockets.

Clients are plain :class:`asyncio.Protocol` objects (no streams). Every client counts the
lines it receives in bulk (``data.count(b"\\n")`` per chunk); only a few *probe* clients
look inside the data, and only at the 1-in-``sample_every`` messages a sender marked with
its send time (``@<time.monotonic()>``; CLOCK_MONOTONIC is shared by all processes).

A worker talks to the coordinator (:mod:`bench.scenarios`) over a pipe and publishes live
counters in a shared array, one row of :data:`ROW` slots per worker:

- ``LINES``: lines received so far by all its clients (for the coordinator's settle wait)
- ``SENT``: messages its senders have sent since "go"
- ``MIN``: the fewest messages any of its clients has received since "go"
- ``DONE``: 1 once its senders have stopped (``SENT`` is then final)

Window mode: a sender may send while the messages in flight — sent, but not yet seen by the
slowest receiver of the whole room — number fewer than ``window`` per sender. Each worker
owns the share of that budget that belongs to its own senders.

Rooms mode (``rooms`` in the spec: the ``rooms`` scenario): client number ``g`` (counted
over all workers) joins room ``r<g // per_room>`` once welcomed (a JSON client then parts
the default room) and is ready when it gets the room's greeting; each room's first member
sends, at a fixed rate. After the workers' rows the shared array has one slot a room: the
messages its sender has sent, which its members wait for in the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import ssl
import time
from typing import Any

ROW = 4
LINES, SENT, MIN, DONE = range(ROW)
TICK = 0.001  # seconds between background pumps while running
PAD = "x" * 256


def raise_nofile() -> tuple[int, int]:
    """Raise the soft fd limit to the hard limit; return the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def poll_pipe(pipe: Any, inbox: asyncio.Queue) -> None:
    """Move the coordinator's messages into ``inbox`` (the pipe stays a blocking fd); an
    ``("exit",)`` when the pipe is gone."""
    while True:
        try:
            while pipe.poll():
                inbox.put_nowait(pipe.recv())
        except (EOFError, OSError):
            inbox.put_nowait(("exit",))
            return
        await asyncio.sleep(0.005)


class Client(asyncio.Protocol):
    __slots__ = ("w", "slot", "probe", "transport", "ready", "pre", "tail", "lost", "joining")

    def __init__(self, worker: Worker, slot: int, probe: bool) -> None:
        self.w = worker
        self.slot = slot
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.pre = b""  # bytes before the welcome, until it is found
        self.tail = b""  # probes: an unfinished line
        self.lost = False
        self.joining = False  # rooms mode: welcomed, its /join sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.w.json:
            transport.write(b"/format json\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        w = self.w
        w.counts[self.slot] += data.count(b"\n")
        w.last_rx = time.monotonic()
        if not self.ready:
            self._look_for_welcome(data)
        if self.probe and w.measuring:
            self._sample(data, w.last_rx)
        if w.window and not w.pump_scheduled:
            w.pump_scheduled = True
            w.loop.call_soon(w.pump)

    def _look_for_welcome(self, data: bytes) -> None:
        self.pre += data
        w = self.w
        if self.joining:  # rooms mode: the room's greeting
            marker = b'{"type":"room"' if w.json else b"*** now in #"
        else:
            marker = b'{"type":"welcome"' if w.json else b"*** Welcome,"
        if marker in self.pre:
            self.pre = b""
            if w.rooms and not self.joining:
                self.joining = True
                room = w.room_of[self.slot]
                leave = b"/part main\n" if w.json else b""  # JSON: /join adds a room
                self.transport.write(b"/join r%d\n%s" % (room, leave))  # type: ignore[union-attr]
                return
            self.ready = True
            w.client_ready(self)
        elif b"server full" in self.pre or b"server_full" in self.pre:
            self.w.errors.append("refused: server full")
            self.pre = b""

    def _sample(self, data: bytes, now: float) -> None:
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        latencies = self.w.latencies
        pos = data.find(b"@", 0, end)
        while pos >= 0:
            stop = data.find(b" ", pos, end)
            with contextlib.suppress(ValueError):
                latencies.append(now - float(data[pos + 1 : stop]))
            pos = data.find(b"@", stop, end)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        w = self.w
        if not w.stopping:
            w.errors.append(f"client {self.slot} lost its connection ({exc or 'closed by server'})")


class WsClient(Client):
    """The same client over the WebSocket door (bench --ws). websockets' sans-I/O client
    protocol makes the upgrade and frames what it sends (masked, as a client must).

    What it receives is counted as the TCP client counts lines, at the speed of
    ``bytes.count``, so that the generator is not what is measured: the server's frames are
    unmasked, and in this ASCII-only traffic a byte 0x81 (FIN + text) only ever starts a
    text frame (a payload byte is below 0x80, a length byte below 126), so each is one line.
    The text of the frames is plain in the bytes, so the welcome is found as over TCP. A
    ping (0x89, likewise unambiguous) is answered. Probes, which read the send times in the
    lines, take the frames through the protocol instead."""

    __slots__ = ("ws", "raw", "upgraded")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.raw = transport
        self.upgraded = False
        port = transport.get_extra_info("peername")[1]
        self.ws = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"), max_size=None)
        self.ws.send_request(self.ws.connect())
        self.transport = _LineWriter(self)  # type: ignore[assignment]
        self._flush()

    def _flush(self) -> None:
        self.raw.write(b"".join(self.ws.data_to_send()))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0 or self.probe:
                self.ws.receive_data(data)
                if self.probe:
                    self._frames()
                return
            self.ws.receive_data(data[: end + 4])  # the response: the protocol is OPEN
            self.ws.events_received()
            self.upgraded = True
            if self.w.json:
                self.transport.write(b"/format json\n")
            data = data[end + 4 :]
        if 0x89 in data:  # a ping: answer it
            at = data.index(0x89)
            self.ws.send_pong(data[at + 2 : at + 2 + data[at + 1]] if at + 1 < len(data) else b"")
            self._flush()
        w = self.w
        w.counts[self.slot] += data.count(0x81)
        w.last_rx = time.monotonic()
        if not self.ready:
            self._look_for_welcome(data)
        if w.window and not w.pump_scheduled:
            w.pump_scheduled = True
            w.loop.call_soon(w.pump)

    def _frames(self) -> None:
        """A probe: every frame through the protocol, its text as lines."""
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        lines = []
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    lines.append(event.data)
            elif isinstance(event, Response) and self.w.json:
                self.transport.write(b"/format json\n")
        self._flush()  # pongs
        if lines:
            lines.append(b"")
            super().data_received(b"\n".join(lines))


class _LineWriter:
    """What :class:`WsClient` offers as its transport: ``write`` sends each line as a text
    message, ``abort`` drops the socket."""

    __slots__ = ("client",)

    def __init__(self, client: WsClient) -> None:
        self.client = client

    def write(self, data: bytes) -> None:
        ws = self.client.ws
        for line in data.split(b"\n")[:-1]:
            ws.send_text(line)
        self.client._flush()

    def abort(self) -> None:
        self.client.raw.abort()  # type: ignore[attr-defined]


class Worker:
    """One load-generator process's clients and their schedule."""

    def __init__(self, pipe: Any, wid: int, spec: dict, shared: Any) -> None:
        self.pipe = pipe
        self.wid = wid
        self.spec = spec
        self.shared = shared
        # bench --tls: connect over TLS, verifying the server's test certificate
        cafile = spec.get("cafile")
        self.tls = ssl.create_default_context(cafile=cafile) if cafile else None
        self.row = wid * ROW
        self.json = spec["format"] == "json"
        self.window = spec.get("window", 0)
        self.n = spec["clients"]
        self.counts = [0] * self.n
        self.clients: list[Client] = []
        self.senders: list[int] = list(range(spec.get("senders", 0)))  # local slots
        self.rooms = spec.get("rooms", 0)
        self.room_of: list[int] = []  # rooms mode: each local slot's room
        if self.rooms:
            per, first = spec["per_room"], spec["first_client"]
            self.room_of = [(first + slot) // per for slot in range(self.n)]
            self.senders = [slot for slot in range(self.n) if (first + slot) % per == 0]
            self.room_sent = ROW * spec["workers"]  # the shared array's first room slot
        self.sent = [0] * len(self.senders)
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.ready_count = 0
        self.last_ready = 0.0
        self.last_rx = 0.0
        self.measuring = False
        self.stopping = False
        self.pump_scheduled = False
        self.sending = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.inbox: asyncio.Queue = None  # type: ignore[assignment]
        self._all_ready: asyncio.Event = None  # type: ignore[assignment]
        self.cpu_go = self.cpu_end = 0.0
        self.t_go = self.deadline = 0.0
        self._seq = 0

    # --- plumbing --------------------------------------------------------------------------

    async def _expect(self, kind: str) -> tuple:
        message = await self.inbox.get()
        if message[0] == "exit" and kind != "exit":
            raise SystemExit(0)
        if message[0] != kind:
            raise RuntimeError(f"worker {self.wid}: expected {kind!r}, got {message!r}")
        return message

    def client_ready(self, client: Client) -> None:
        self.ready_count += 1
        self.last_ready = time.monotonic()
        if self.ready_count == self.n:
            self._all_ready.set()

    async def _publish_lines(self) -> None:
        while not self.measuring and not self.stopping:
            self.shared[self.row + LINES] = sum(self.counts)
            await asyncio.sleep(0.02)

    # --- connecting ------------------------------------------------------------------------

    async def _connect_one(self, slot: int) -> None:
        probe = slot >= self.n - self.spec.get("probes", 0)  # probes are not senders
        client = (WsClient if self.spec.get("ws") else Client)(self, slot, probe)
        self.clients.append(client)
        try:
            await self.loop.create_connection(
                lambda: client,
                "127.0.0.1",
                self.spec["port"],
                ssl=self.tls,
                server_hostname="127.0.0.1" if self.tls else None,
            )
        except OSError as exc:
            self.errors.append(f"connect failed: {exc}")

    async def _connect_all(self, batch: int) -> None:
        slots = list(range(self.n))
        for start in range(0, self.n, batch):
            await asyncio.gather(*(self._connect_one(s) for s in slots[start : start + batch]))

    async def _wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._all_ready.wait(), timeout)
        except TimeoutError:
            self.errors.append(f"only {self.ready_count}/{self.n} clients welcomed in {timeout:g}s")

    # --- main ------------------------------------------------------------------------------

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue()
        self._all_ready = asyncio.Event()
        poller = asyncio.ensure_future(poll_pipe(self.pipe, self.inbox))
        spec = self.spec
        kind = spec["kind"]
        try:
            if kind == "burst":
                self.pipe.send(("armed",))
                _, t_go = await self._expect("go")
                await asyncio.sleep(max(0.0, t_go - time.monotonic()))
                await self._connect_all(batch=self.n)  # every connect at once
                await self._wait_ready(spec["ready_timeout"])
                self.pipe.send(("ready", self._ready_info()))
            else:
                publisher = asyncio.ensure_future(self._publish_lines())
                await self._connect_all(batch=200)
                await self._wait_ready(spec["ready_timeout"])
                self.pipe.send(("ready", self._ready_info()))
                if kind == "fanout":
                    _, t_go, deadline = await self._expect("go")
                    self.measuring = True
                    await publisher
                    await self._fanout(t_go, deadline)
                    self.pipe.send(("result", self._result()))
            await self._expect("stop")
            self.stopping = True
            self.sending = False
            self.pipe.send(("stopping",))
            await self._expect("exit")
        except SystemExit:
            pass
        finally:
            poller.cancel()
            self.stopping = True
            for client in self.clients:
                if client.transport is not None:
                    client.transport.abort()
            await asyncio.sleep(0)

    def _ready_info(self) -> dict:
        return {
            "ready": self.ready_count,
            "clients": self.n,
            "last_ready": self.last_ready,
            "errors": self.errors[:5],
            "lines": sum(self.counts),
        }

    # --- fan-out ---------------------------------------------------------------------------

    async def _fanout(self, t_go: float, deadline: float) -> None:
        spec = self.spec
        self.t_go, self.deadline = t_go, deadline
        for i in range(self.n):
            self.counts[i] = 0
        self.shared[self.row + MIN] = 0
        await asyncio.sleep(max(0.0, t_go - time.monotonic()))
        self.cpu_go = cpu_now()
        self.sending = bool(self.senders)
        size = spec["msg_size"]
        self._templates = [
            (f" s{spec['first_sender'] + i} ", size) for i in range(len(self.senders))
        ]
        if not self.sending:
            self.shared[self.row + DONE] = 1
        # A background pump: sends on schedule (fixed rate), picks up other workers' progress
        # (window mode), notices the deadline.
        while time.monotonic() < deadline:
            self.pump()
            await asyncio.sleep(TICK if self.sending else 0.05)
        self.pump()
        self._stop_sending()
        # Drain: wait until every client here has every message sent by anyone.
        drain_until = time.monotonic() + spec["drain_timeout"]
        n_workers = spec["workers"]
        while time.monotonic() < drain_until:
            done = all(self.shared[w * ROW + DONE] for w in range(n_workers))
            if done and self.rooms:  # each client: every message sent in its room
                shared, first = self.shared, self.room_sent
                if all(
                    c >= shared[first + r] for c, r in zip(self.counts, self.room_of, strict=True)
                ):
                    break
            elif done:
                total = sum(self.shared[w * ROW + SENT] for w in range(n_workers))
                if min(self.counts) >= total:
                    break
            await asyncio.sleep(0.01)
        self.measuring = False

    def _stop_sending(self) -> None:
        if self.cpu_end == 0.0:
            self.cpu_end = cpu_now()
        self.sending = False
        self.shared[self.row + SENT] = sum(self.sent)
        self.shared[self.row + DONE] = 1

    def _message(self, i: int, now: float) -> bytes:
        """One chat line from local sender ``i``; 1 in ``sample_every`` carries its send time."""
        self._seq += 1
        tag, size = self._templates[i]
        head = f"@{now:.6f}{tag}" if self._seq % self.spec["sample_every"] == 0 else f"-{tag}"
        return (head + PAD[: max(0, size - len(head))] + "\n").encode()

    def pump(self) -> None:
        """Send what the schedule or the window allows now."""
        self.pump_scheduled = False
        if not self.sending:
            return
        now = time.monotonic()
        if now >= self.deadline:
            self._stop_sending()
            return
        clients = self.clients
        if not self.window:  # fixed rate: each sender is due rate * elapsed messages
            rate = self.spec["rate"]
            due = int((now - self.t_go) * rate) + 1
            for i, slot in enumerate(self.senders):
                k = due - self.sent[i]
                if k > 0:
                    clients[slot].transport.write(b"".join(self._message(i, now) for _ in range(k)))
                    self.sent[i] += k
                    if self.rooms:
                        self.shared[self.room_sent + self.room_of[slot]] = self.sent[i]
            self.shared[self.row + SENT] = sum(self.sent)
            return
        shared, row = self.shared, self.row
        local_min = min(self.counts)
        shared[row + MIN] = local_min
        local_sent = sum(self.sent)
        shared[row + SENT] = local_sent
        n_workers = self.spec["workers"]
        global_min = min(shared[w * ROW + MIN] for w in range(n_workers))
        global_sent = sum(shared[w * ROW + SENT] for w in range(n_workers))
        # The part of this worker's messages the slowest receiver has not seen yet.
        in_flight = local_sent - global_min * local_sent / global_sent if global_sent else 0
        budget = int(self.window * len(self.senders) - in_flight)
        if budget <= 0:
            return
        per = max(1, budget // len(self.senders))
        per = min(per, 64)
        for i, slot in enumerate(self.senders):
            if budget <= 0:
                break
            k = min(per, budget)
            clients[slot].transport.write(b"".join(self._message(i, now) for _ in range(k)))
            self.sent[i] += k
            budget -= k
        shared[row + SENT] = sum(self.sent)

    def _result(self) -> dict:
        return {
            "deliveries": sum(self.counts),
            "min_received": min(self.counts),
            "sent": sum(self.sent),
            "last_rx": self.last_rx,
            "cpu": self.cpu_end - self.cpu_go,
            "latencies": self.latencies[:200_000],
            "lost": sum(c.lost for c in self.clients),
            "errors": self.errors[:10],
        }


def worker_main(pipe: Any, wid: int, spec: dict, shared: Any) -> None:
    """Entry point of a load-generator process."""
    raise_nofile()
    loop = new_loop(spec["gen_loop"])
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(Worker(pipe, wid, spec, shared).run())
    finally:
        loop.close()
