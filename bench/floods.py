"""The flood scenarios of issue 9: what a flood costs the server in memory, and whether the
room stays usable meanwhile. Not in the default run nor in ``--quick``; run one with
``python -m bench --scenario flood-recvq`` (or ``flood-who``, ``flood-sendq``, ``flood-churn``).

- ``flood-recvq`` (item 3): N connections each send one burst of short lines (``a\\n``) at
  the default flood control, which paces them at 5 lines/s, and stay connected, reading
  what the room sends. RSS growth per flooder once the burst has been taken in, and what
  stays after they close. ``flood-recvq-1m``: the same with 1 MiB bursts. This is the
  figure tests/test_attacks.py used to assert (under 64 KiB per flooder, 40 x 256 KiB,
  both loops): a measurement, not a test (``--loop asyncio`` for the other loop).
- ``flood-who`` (item 4): a room of M members, connected and then not reading; K clients
  that never read each send ``/who`` and ``/format json`` 10 times in one packet. RSS growth
  per attacker, and a probe member's chat round trip (its own line echoed back) meanwhile.
- ``flood-sendq`` (item 4): ``--rate 0``; one client sends 6 MB of lines and reads its
  echoes while one member never reads. Peak RSS growth (``/proc`` every 50 ms) and whether
  the flooder, who kept up, was dropped.
- ``flood-oper`` (issue 18, item 2): /oper guessers from 8 addresses while a bystander
  pings (bench/oper.py).
- ``flood-churn`` (item 6): one process connects and closes at once, from one address, as
  fast as it can, while 10 members read. Cycles/s, server CPU, join/leave lines per member,
  RSS, and whether a member was dropped as slow. A server that knows ``--exempt-ip`` gets it
  with no network, so that loopback is throttled as any address.

One generator process (two for flood-churn: members, churner) holds the clients and obeys
the coordinator's commands over a pipe; the coordinator (:func:`run_flood`, inside
:class:`bench.scenarios.Run`) samples the server's ``/proc`` between them. Every wait has a
timeout; only 127.0.0.0/8 is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

from bench import oper
from bench.loadgen import new_loop, poll_pipe, raise_nofile
from bench.serverproc import server_flags

SAMPLE_EVERY = 0.05  # seconds between RSS samples while something is going on
SLOW = (b'"reason":"slow"', b"(too slow to read")  # a member dropped as slow (JSON, text)
WELCOME = (b"*** Welcome,", b'"type":"welcome"')
JOIN, LEAVE = b'"type":"join"', b'"type":"leave"'
ECHO = b"~"  # flood-sendq's lines start with it; nothing else the server sends has one
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class FloodError(Exception):
    pass


def server_args(params: dict, src: str | None) -> list[str]:
    """Flags that depend on what the server under test knows (see :func:`server_flags`)."""
    if params.get("throttle_loopback") and "--exempt-ip" in server_flags(src):
        return ["--exempt-ip"]  # no network: nobody is exempt, loopback is throttled
    if params.get("pattern") == "oper":
        return oper.server_args()
    return []


# --- the generator side ------------------------------------------------------------------------


class Conn(asyncio.Protocol):
    """A client that counts lines, and the given tokens within whole lines."""

    def __init__(self, w: FloodWorker, group: str, opts: dict) -> None:
        self.w = w
        self.group = group
        self.hello: bytes = opts.get("hello", b"")
        self.paused = bool(opts.get("paused"))
        self.tokens: tuple[bytes, ...] = (*opts.get("tokens", ()), *SLOW)
        self.counts = [0] * len(self.tokens)
        self.probe = bool(opts.get("probe"))
        self.transport: asyncio.Transport | None = None
        self.lines = 0
        self.tail = b""
        self.welcomed = asyncio.Event()
        self.lost = False
        self.sent_at: dict[int, float] = {}  # probe: line number -> send time
        self.rtts: list[tuple[float, float]] = []  # probe: (send time, round trip)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.paused:
            transport.pause_reading()  # type: ignore[attr-defined]
        if self.hello:
            transport.write(self.hello)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.lines += data.count(b"\n")
        buf = self.tail + data if self.tail else data
        cut = buf.rfind(b"\n") + 1
        whole, self.tail = buf[:cut], buf[cut:]
        if not whole:
            return
        for i, token in enumerate(self.tokens):
            self.counts[i] += whole.count(token)
        if not self.welcomed.is_set() and any(t in whole for t in WELCOME):
            self.welcomed.set()
        if self.probe:
            for line in whole.split(b"\n"):
                if b"> rtt " in line:
                    n = int(line.rsplit(b" ", 1)[1])
                    sent = self.sent_at.pop(n, None)
                    if sent is not None:
                        self.rtts.append((sent, now - sent))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class FloodWorker:
    """Holds groups of clients and runs the coordinator's commands, one at a time."""

    def __init__(self, pipe: Any, spec: dict) -> None:
        self.pipe = pipe
        self.spec = spec
        self.port = spec["port"]
        self.groups: dict[str, list[Conn]] = {}
        self.probe_task: asyncio.Task | None = None

    async def run(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        poller = asyncio.ensure_future(poll_pipe(self.pipe, self.inbox))
        try:
            while True:
                message = await self.inbox.get()
                cmd, args = message[0], message[1:]
                if cmd == "exit":
                    break
                if cmd == "stop":  # the server is stopped next: read, so that it can say bye
                    for conns in self.groups.values():
                        for conn in conns:
                            if conn.transport is not None and not conn.lost:
                                conn.transport.resume_reading()
                    self.pipe.send(("stopping",))
                    continue
                try:
                    out = await getattr(self, f"do_{cmd}")(*args)
                except Exception as exc:
                    self.pipe.send(("error", f"{type(exc).__name__}: {exc}"))
                else:
                    self.pipe.send(("ok", out))
        finally:
            poller.cancel()
            for conns in self.groups.values():
                for conn in conns:
                    if conn.transport is not None:
                        conn.transport.abort()
            await asyncio.sleep(0)

    # --- commands ------------------------------------------------------------------------------

    async def do_connect(self, group: str, n: int, opts: dict) -> dict:
        """Connect ``n`` clients from ``opts["src"]``; wait for their welcomes unless paused."""
        loop = asyncio.get_running_loop()
        conns = self.groups.setdefault(group, [])
        errors: list[str] = []

        async def one() -> None:
            conn = Conn(self, group, opts)
            try:
                await loop.create_connection(
                    lambda: conn, "127.0.0.1", self.port, local_addr=(opts.get("src", ""), 0)
                )
                conns.append(conn)
            except OSError as exc:
                errors.append(f"connect: {exc}")

        batch = opts.get("batch", 200)
        for start in range(0, n, batch):
            await asyncio.gather(*(one() for _ in range(min(batch, n - start))))
        welcomed = 0
        if not opts.get("paused"):
            deadline = time.monotonic() + opts.get("timeout", 60)
            for conn in conns:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        conn.welcomed.wait(), max(0.01, deadline - time.monotonic())
                    )
            welcomed = sum(c.welcomed.is_set() for c in conns)
        return {"connected": len(conns), "welcomed": welcomed, "errors": errors[:5]}

    async def do_settle(self, quiet: float, timeout: float) -> int:
        """Wait until no client has received a line for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            lines = sum(c.lines for conns in self.groups.values() for c in conns)
            if lines != seen:
                seen, since = lines, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return lines
            await asyncio.sleep(0.02)
        raise FloodError(f"lines still arriving after {timeout:g}s")

    async def do_pause(self, group: str) -> None:
        for conn in self.groups[group]:
            if conn.transport is not None:
                conn.transport.pause_reading()

    async def do_send(self, group: str, data: bytes) -> None:
        for conn in self.groups[group]:
            if conn.transport is not None and not conn.lost:
                conn.transport.write(data)

    async def do_stats(self, group: str) -> dict:
        conns = self.groups.get(group, [])
        return {
            "n": len(conns),
            "lost": sum(c.lost for c in conns),
            "lines": [c.lines for c in conns],
            "counts": [sum(c.counts[i] for c in conns) for i in range(len(conns[0].tokens))]
            if conns
            else [],
            "unsent": [
                c.transport.get_write_buffer_size() if c.transport and not c.lost else 0
                for c in conns
            ],
        }

    async def do_close(self, group: str) -> None:
        for conn in self.groups.pop(group, []):
            if conn.transport is not None:
                conn.transport.abort()

    async def do_wait_count(self, group: str, token: int, target: int, timeout: float) -> dict:
        """Until the group has seen ``target`` of its token ``token``, or all are gone."""
        conns = self.groups[group]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(c.counts[token] for c in conns) >= target or all(c.lost for c in conns):
                break
            await asyncio.sleep(0.01)
        return await self.do_stats(group)

    async def do_probe_start(self, group: str, interval: float) -> None:
        conn = self.groups[group][0]

        async def send() -> None:
            n = 0
            while conn.transport is not None and not conn.lost:
                conn.sent_at[n] = time.monotonic()
                conn.transport.write(b"rtt %d\n" % n)
                n += 1
                await asyncio.sleep(interval)

        self.probe_task = asyncio.ensure_future(send())

    async def do_probe_stop(self, group: str, grace: float) -> dict:
        conn = self.groups[group][0]
        if self.probe_task is not None:
            self.probe_task.cancel()
        deadline = time.monotonic() + grace
        while conn.sent_at and not conn.lost and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return {"rtts": conn.rtts, "unanswered": len(conn.sent_at), "lost": conn.lost}

    async def do_churn(self, src: str, seconds: float) -> dict:
        """Connect and close at once, no line, from ``src``, as fast as this process can
        (blocking sockets: nothing else runs in the churner's process)."""
        cycles = failures = 0
        started = time.monotonic()
        end = started + seconds
        while time.monotonic() < end:
            sock = socket.socket()
            try:
                # The port is chosen at connect(), where loopback may reuse TIME_WAIT ports.
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.settimeout(3.0)
                sock.bind((src, 0))
                sock.connect(("127.0.0.1", self.port))
                cycles += 1
            except OSError:
                failures += 1
            finally:
                sock.close()
        return {"cycles": cycles, "failures": failures, "seconds": time.monotonic() - started}


def flood_main(pipe: Any, spec: dict) -> None:
    """Entry point of a flood generator process."""
    raise_nofile()
    loop = new_loop(spec["gen_loop"])
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(FloodWorker(pipe, spec).run())
    finally:
        loop.close()


# --- the coordinator side ----------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Flood:
    """One flood scenario, driven from :class:`bench.scenarios.Run` (``run``)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.server = run.server
        self.result: dict = run.result
        self.p: dict = run.sc.flood
        self.quick = bool(run.opts.quick)
        self.samples: list[tuple[float, int]] = []

    def spawn(self, n: int) -> None:
        spec = {"port": self.server.port, "gen_loop": self.run.opts.gen_loop}
        self.run._spawn(flood_main, [spec] * n)
        self.result["workers"] = n

    def call(self, w: int, *cmd: Any, timeout: float = 60.0, sample: bool = False) -> Any:
        """Send a command to generator ``w``; sample RSS every 50 ms while it runs."""
        pipe = self.run.pipes[w]
        pipe.send(cmd)
        deadline = time.monotonic() + timeout
        while not pipe.poll(SAMPLE_EVERY if sample else 0.2):
            if sample:
                self.sample()
            if time.monotonic() > deadline:
                raise FloodError(f"{cmd[0]}: no answer from the generator in {timeout:g}s")
            if not self.server.alive():
                raise FloodError(f"the server died: {self.server.log_tail(500)}")
        message = pipe.recv()
        if message[0] != "ok":
            raise FloodError(f"{cmd[0]}: {message[1:]}")
        return message[1]

    def sample(self) -> int:
        rss = self.server.rss_kib()
        self.samples.append((time.monotonic(), rss))
        return rss

    def wait(self, seconds: float) -> int:
        """Sleep, sampling RSS; the last sample."""
        end = time.monotonic() + seconds
        rss = self.sample()
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_EVERY, max(0.0, end - time.monotonic())))
            rss = self.sample()
        return rss

    def peak_since(self, t0: float) -> int:
        return max(r for t, r in self.samples if t >= t0)

    def idle(self, limit: float = 15.0) -> int:
        """Wait until the server uses under 5 % of a core for 0.5 s (at most ``limit`` s);
        its RSS then."""
        end = time.monotonic() + limit
        cpu = self.server.cpu_seconds()
        while time.monotonic() < end:
            time.sleep(0.5)
            now = self.server.cpu_seconds()
            if now - cpu < 0.025:
                break
            cpu = now
        return self.server.rss_kib()

    def connect(self, w: int, group: str, n: int, **opts: Any) -> dict:
        info = self.call(w, "connect", group, n, opts, timeout=60 + n / 20)
        self.result["errors"] += info["errors"]
        if info["connected"] != n:
            raise FloodError(f"{group}: only {info['connected']}/{n} connected")
        if not opts.get("paused") and info["welcomed"] != n:
            raise FloodError(f"{group}: only {info['welcomed']}/{n} welcomed")
        return info

    # --- the patterns --------------------------------------------------------------------------

    def recvq(self) -> None:
        n, kib, hold = self.p["flooders"], self.p["burst_kib"], self.p["hold"]
        self.spawn(1)
        self.connect(0, "flood", n, src="127.0.0.1")
        self.call(0, "settle", 0.5, 60)
        fresh = self.result["rss_baseline_kib"]
        rss0 = self.idle()
        t0 = time.monotonic()
        self.call(0, "send", "flood", b"a\n" * (kib * 512), sample=True)
        rss_hold = self.wait(hold)
        peak = self.peak_since(t0)
        st = self.call(0, "stats", "flood")
        self.call(0, "close", "flood")
        rss_closed = self.idle()
        sent = (kib * 1024 * n - sum(st["unsent"])) / n / 1024
        per, after = (rss_hold - rss0) / n, (rss_closed - fresh) / n
        delivered = sum(st["lines"]) / n
        self.result.update(
            {
                "clients": n,
                "burst_kib": kib,
                "hold_seconds": hold,
                "sent_kib_per_flooder": round(sent, 1),
                "rss_connected_kib": rss0,
                "rss_kib": rss_hold,
                "rss_peak_kib": peak,
                "rss_closed_kib": rss_closed,
                "kib_per_flooder": round(per, 1),
                "peak_kib_per_flooder": round((peak - rss0) / n, 1),
                "kib_per_flooder_after_close": round(after, 1),
                "lines_received_per_flooder": round(delivered, 1),
                "flooders_dropped": st["lost"],
                "figure": round(per, 1),
                "unit": "KiB/flooder",
                "summary": f"+{per:.1f} KiB/flooder after {hold:g} s"
                f" (peak +{(peak - rss0) / n:.1f}),"
                f" {after:+.1f} KiB/flooder after close; {sent:.0f} KiB sent each,"
                f" {st['lost']}/{n} dropped",
            }
        )
        if st["lost"]:
            self.result["errors"].append(f"{st['lost']}/{n} paced flooders were disconnected")
        if not delivered:
            self.result["errors"].append("no paced line reached the room")

    def who(self) -> None:
        m, k, window = self.p["members"], self.p["attackers"], self.p["window"]
        self.spawn(1)
        self.connect(0, "members", m, src="127.0.0.1")
        self.connect(0, "probe", 1, src="127.0.0.1", probe=True)
        self.call(0, "settle", 0.5, 120 + m / 10)
        self.call(0, "pause", "members")
        rss0 = self.idle()
        self.call(0, "probe_start", "probe", self.p["probe_every"])
        self.wait(1.0)
        t0 = time.monotonic()
        packet = b"/who\n/format json\n" * 10
        self.connect(0, "attackers", k, src="127.0.0.1", paused=True, hello=packet)
        rss_end = self.wait(window)
        peak = self.peak_since(t0)
        probe = self.call(0, "probe_stop", "probe", 10.0, timeout=30)
        attackers = self.call(0, "stats", "attackers")
        members = self.call(0, "stats", "members")
        before = [rtt * 1000 for sent, rtt in probe["rtts"] if sent < t0]
        during = [rtt * 1000 for sent, rtt in probe["rtts"] if sent >= t0]
        per = (rss_end - rss0) / k
        p50, p99 = _pct(during, 0.5), _pct(during, 0.99)
        self.result.update(
            {
                "clients": m + k + 1,
                "members": m,
                "attackers": k,
                "window_seconds": window,
                "rss_before_kib": rss0,
                "rss_kib": rss_end,
                "rss_peak_kib": peak,
                "kib_per_attacker": round(per, 1),
                "peak_kib_per_attacker": round((peak - rss0) / k, 1),
                "attackers_dropped": attackers["lost"],
                "probe_lines": len(probe["rtts"]) + probe["unanswered"],
                "probe_unanswered": probe["unanswered"],
                "probe_p50_ms_before": None if not before else round(_pct(before, 0.5), 2),
                "p50_ms": None if p50 is None else round(p50, 2),
                "p99_ms": None if p99 is None else round(p99, 2),
                "max_ms": None if not during else round(max(during), 2),
                "figure": round(per, 1),
                "unit": "KiB/attacker",
                "summary": f"+{per:.1f} KiB/attacker after {window:g} s (peak"
                f" +{(peak - rss0) / k:.1f}); probe RTT p50"
                f" {'–' if p50 is None else f'{p50:.1f}'} ms, max"
                f" {'–' if not during else f'{max(during):.0f}'} ms"
                f" ({len(during)} lines); {attackers['lost']}/{k} attackers dropped",
            }
        )
        if probe["lost"] or probe["unanswered"]:
            self.result["errors"].append(
                f"probe: {probe['unanswered']} lines not echoed within 10 s"
                + (" (disconnected)" if probe["lost"] else "")
            )
        if not during:
            self.result["errors"].append("probe: no round trip measured during the attack")
        if members["lost"]:
            self.result["errors"].append(f"{members['lost']} idle members were disconnected")

    def sendq(self) -> None:
        size = self.p["megabytes"] * 1_000_000
        line = ECHO + b"x" * 44 + b"\n"
        n_lines = size // len(line)
        self.spawn(1)
        self.connect(0, "member", 1, src="127.0.0.1")
        self.call(0, "pause", "member")
        self.connect(0, "flooder", 1, src="127.0.0.1", tokens=(ECHO,))
        self.call(0, "settle", 0.3, 30)
        rss0 = self.idle()
        t0 = time.monotonic()
        self.call(0, "send", "flooder", line * n_lines, sample=True)
        st = self.call(
            0, "wait_count", "flooder", 0, n_lines, self.p["timeout"], timeout=30 + 60, sample=True
        )
        seconds = time.monotonic() - t0
        rss_end = self.idle()
        peak = self.peak_since(t0)
        echoes, slow_seen = st["counts"][0], st["counts"][1] + st["counts"][2]
        dropped = bool(st["lost"])
        self.result.update(
            {
                "clients": 2,
                "bytes_sent": n_lines * len(line),
                "lines_sent": n_lines,
                "echoes_received": echoes,
                "seconds": round(seconds, 2),
                "rss_before_kib": rss0,
                "rss_kib": rss_end,
                "rss_peak_kib": peak,
                "peak_growth_kib": peak - rss0,
                "flooder_dropped": dropped,
                "member_dropped_slow": bool(slow_seen),
                "figure": peak - rss0,
                "unit": "KiB peak growth",
                "summary": f"peak +{(peak - rss0) / 1024:.1f} MiB; flooder"
                f" {'DROPPED' if dropped else 'kept'} ({echoes}/{n_lines} echoes);"
                f" idle member {'dropped as slow' if slow_seen else 'not dropped'}",
            }
        )
        if dropped:
            self.result["errors"].append(
                f"the flooder, reading its echoes, was disconnected after {echoes}/{n_lines}"
            )
        elif echoes < n_lines:
            self.result["errors"].append(f"only {echoes}/{n_lines} echoes in {seconds:.0f} s")

    def churn(self) -> None:
        members, seconds = self.p["members"], self.p["seconds"]
        self.spawn(2)  # 0: the members, 1: the churner
        self.connect(0, "members", members, src="127.0.0.2", hello=b"/format json\n",
                     tokens=(JOIN, LEAVE))  # fmt: skip
        self.call(0, "settle", 0.5, 30)
        rss0 = self.idle()
        before = self.call(0, "stats", "members")["counts"]
        cpu0, t0 = self.server.cpu_seconds(), time.monotonic()
        ch = self.call(1, "churn", "127.0.0.3", seconds, timeout=seconds + 60, sample=True)
        cpu1, t1 = self.server.cpu_seconds(), time.monotonic()
        self.call(0, "settle", 1.0, 60, timeout=90, sample=True)
        st = self.call(0, "stats", "members")
        rss_end = self.server.rss_kib()
        peak = self.peak_since(t0)
        joins = (st["counts"][0] - before[0]) / members
        leaves = (st["counts"][1] - before[1]) / members
        slow = st["counts"][2] + st["counts"][3] - before[2] - before[3]
        rate = ch["cycles"] / max(1e-9, ch["seconds"])
        cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
        per = (peak - rss0) / members
        self.result.update(
            {
                "clients": members,
                "churn_seconds": round(ch["seconds"], 2),
                "cycles": ch["cycles"],
                "connect_failures": ch["failures"],
                "cycles_per_s": round(rate),
                "server_cpu_pct": round(cpu_pct, 1),
                "joins_per_member": round(joins, 1),
                "leaves_per_member": round(leaves, 1),
                "rss_before_kib": rss0,
                "rss_kib": rss_end,
                "rss_peak_kib": peak,
                "peak_kib_per_member": round(per, 1),
                "kib_per_member_after": round((rss_end - rss0) / members, 1),
                "members_dropped": st["lost"],
                "slow_leaves_seen": slow,
                "exempt_ip_empty": "--exempt-ip" in self.server.argv,
                "figure": round(rate),
                "unit": "cycles/s",
                "summary": f"{rate:.0f} cycles/s ({ch['failures']} failed), server CPU"
                f" {cpu_pct:.0f} %; {joins:.0f} joins + {leaves:.0f} leaves/member; RSS peak"
                f" {per:+.1f} KiB/member; {st['lost']}/{members} members dropped",
            }
        )
        if st["lost"] or slow:
            self.result["errors"].append(
                f"{st['lost']}/{members} reading members disconnected, {slow} slow leaves seen"
            )
        if not ch["cycles"]:
            self.result["errors"].append("churn: no connection made")

    def oper(self) -> None:
        oper.run_oper(self)


def run_flood(run: Any) -> None:
    """Run the scenario ``run.sc`` (its ``flood["pattern"]`` names a method of Flood)."""
    getattr(Flood(run), run.sc.flood["pattern"])()
