"""The scenarios and the coordinator that runs each one against a fresh server process."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.churn import churn_main
from bench.client_flood import ClientFloodError, run_client_flood
from bench.floods import FloodError, run_flood
from bench.floods import server_args as flood_server_args
from bench.loadgen import LINES, ROW, raise_nofile, worker_main
from bench.serverproc import RedisProcess, ServerProcess

_CTX = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # idle | burst | fanout | churn | flood | client
    clients: int = 0
    senders: int = 0
    window: int = 0  # fan-out: messages in flight per sender (0: fixed rate)
    rate: float = 0.0  # fan-out fixed: messages/s per sender
    format: str = "text"
    duration: float = 10.0
    msg_size: int = 48  # chat text length in bytes
    sample_every: int = 8  # 1 message in this many carries a send timestamp
    churn: dict = field(default_factory=dict)
    flood: dict = field(default_factory=dict)  # flood: its pattern and sizes (bench/floods.py)
    server_args: tuple[str, ...] = ()
    rooms: int = 0  # fan-out in rooms: clients / rooms in each, one sender a room (fixed rate)

    @property
    def label(self) -> str:
        return (
            self.name
            if self.kind in ("idle", "burst", "churn", "flood", "client")
            else f"{self.name}/{self.format}"
        )


def scenarios(quick: bool, duration: float | None, soak: float | None) -> list[Scenario]:
    """Every scenario of the benchmark issue, at full or --quick sizes."""
    q = quick
    fd = duration or (1.5 if q else 10.0)
    out = [
        Scenario("idle-1000", "idle", clients=50 if q else 1000),
        Scenario("idle-5000", "idle", clients=200 if q else 5000),
        Scenario("burst-1000", "burst", clients=100 if q else 1000),
    ]
    for fmt in ("text", "json"):
        out += [
            Scenario(
                "fanout-small",
                "fanout",
                clients=20 if q else 100,
                senders=4 if q else 10,
                window=128,
                format=fmt,
                duration=fd,
            ),
            Scenario(
                "fanout-large-fixed",
                "fanout",
                clients=100 if q else 1000,
                senders=5,
                rate=40.0,
                format=fmt,
                duration=fd,
                sample_every=1,
            ),
            Scenario(
                "fanout-large-max",
                "fanout",
                clients=100 if q else 1000,
                senders=5,
                window=32,
                format=fmt,
                duration=fd,
            ),
        ]
    for fmt in ("text", "json"):  # issue 19: many rooms, every room chatting
        out.append(rooms_scenario(q, fd, fmt))
    out.append(
        Scenario(
            "churn-soak",
            "churn",
            format="json",
            duration=soak or (8.0 if q else 120.0),
            # The talkers' ~1 MB/s of long lines is what fills a stuck client's queues: the
            # kernel buffers up to net.ipv4.tcp_wmem[2] (4 MiB here) before --max-sendq counts.
            churn={
                "observers": 8 if q else 20,
                "talkers": 3,
                "talk_rate": 330.0,
                "talk_size": 1000,
                "churners": 10 if q else 40,
                "churn_pause": 0.2,
                "stuck": 2 if q else 3,
                "stuck_every": 1e9 if q else 15.0,
            },
            # A smaller send queue than the default so the stuck clients are found in seconds.
            server_args=("--max-sendq", "65536", "--history", "5"),
        )
    )
    return out


def rooms_scenario(quick: bool, duration: float, fmt: str, others: int = 0) -> Scenario:
    """100 rooms of 50 (``--quick``: 4 of 5), each room's first member saying 10 lines/s:
    50k deliveries/s offered, 1000 lines/s in. ``others``: the server also holds that many
    empty rooms (listed with --rooms)."""
    rooms, per_room = (4, 5) if quick else (100, 50)
    listed = ("--max-rooms", str(others + 200), "--rooms", *(f"e{i}" for i in range(others)))
    return Scenario(
        f"rooms-{rooms}x{per_room}" + (f"-{others}-empty" if others else ""),
        "fanout",
        clients=rooms * per_room,
        senders=rooms,
        rate=10.0,
        format=fmt,
        duration=duration,
        rooms=rooms,
        server_args=listed if others else (),
    )


def extra_scenarios(quick: bool) -> list[Scenario]:
    """Not in the default run: ``--scenario idle-10000`` (what 10k clients cost) and
    ``--scenario chat-10000`` (10k clients connected while 5 of them chat at 2 lines/s each,
    every line to all 10k: 100k deliveries/s), and issue 9's floods (``--scenario flood-recvq``,
    ``flood-who``, ``flood-sendq``, ``flood-churn``; see bench/floods.py) and issue 18's
    ``flood-oper`` (bench/oper.py)."""
    return [
        Scenario("idle-10000", "idle", clients=300 if quick else 10_000),
        Scenario(
            "chat-10000",
            "fanout",
            clients=300 if quick else 10_000,
            senders=5,
            rate=2.0,
            duration=5.0 if quick else 10.0,
            sample_every=1,
        ),
        *flood_scenarios(quick),
        *client_scenarios(quick),
        # A single room's fan-out in a server holding 1000 empty rooms: rooms unused cost?
        *(
            replace(sc, name=f"{sc.name}-1000-empty", server_args=sc.server_args + _EMPTY)
            for sc in scenarios(quick, None, None)
            if sc.name in ("fanout-small", "fanout-large-fixed")
        ),
        *(rooms_scenario(quick, 1.5 if quick else 10.0, fmt, 1000) for fmt in ("text", "json")),
    ]


# 1000 empty rooms, listed: they exist from the start and stay.
_EMPTY = ("--max-rooms", "1200", "--rooms", *(f"e{i}" for i in range(1000)))


def client_scenarios(quick: bool) -> list[Scenario]:
    """Issue 21: a flood of ``rate`` lines/s into a real chatroom-client process in tmux
    (bench/client_flood.py), by name: ``--scenario client-500`` etc."""
    duration = 4.0 if quick else 20.0
    return [
        Scenario(f"client-{rate}", "client", clients=1, rate=float(rate), duration=duration)
        for rate in (200, 500, 2000)
    ]


# The servers' default flood control (5 lines/s after a burst of 10): BASE_ARGS turns it off.
DEFAULT_FLOOD_CONTROL = ("--rate", "5", "--burst", "10")


def flood_scenarios(quick: bool) -> list[Scenario]:
    """Issue 9's floods (bench/floods.py), only by name: ``--scenario flood-recvq`` etc.
    (``flood-recvq-1m``: the same with a 1 MiB burst)."""
    q = quick
    return [
        Scenario(
            "flood-recvq",
            "flood",
            flood={"pattern": "recvq", "flooders": 10 if q else 50, "burst_kib": 256, "hold": 2.0},
            server_args=DEFAULT_FLOOD_CONTROL,
        ),
        Scenario(  # the same with a 1 MiB burst: does what is held grow with the burst?
            "flood-recvq-1m",
            "flood",
            flood={"pattern": "recvq", "flooders": 10 if q else 50, "burst_kib": 1024, "hold": 2.0},
            server_args=DEFAULT_FLOOD_CONTROL,
        ),
        Scenario(
            "flood-who",
            "flood",
            flood={
                "pattern": "who",
                "members": 200 if q else 2000,
                "attackers": 5 if q else 20,
                "window": 4.0,
                "probe_every": 0.25,  # under the probe's own 5 lines/s
            },
            server_args=DEFAULT_FLOOD_CONTROL,
        ),
        Scenario(
            "flood-sendq",
            "flood",
            flood={"pattern": "sendq", "megabytes": 1 if q else 6, "timeout": 60.0},
        ),
        Scenario(
            "flood-churn",
            "flood",
            flood={
                "pattern": "churn",
                "members": 10,
                "seconds": 2.0 if q else 5.0,
                "throttle_loopback": True,  # --exempt-ip with no network, if the server has it
            },
        ),
        Scenario(  # issue 18: /oper guessers from 8 addresses; a bystander's round trip
            "flood-oper",
            "flood",
            flood={
                "pattern": "oper",
                "addresses": 8,
                "per_address": 2,
                "seconds": 10.0,
                "warmup": 1.0,
                "ping_every": 0.05,
            },
            server_args=("--log-level", "warning"),
        ),
        Scenario(  # the same from 64 addresses: each one's burst keeps the hashing busy
            "flood-oper-64",
            "flood",
            flood={
                "pattern": "oper",
                "addresses": 64,
                "per_address": 1,
                "seconds": 10.0,
                "warmup": 1.0,
                "ping_every": 0.05,
            },
            server_args=("--log-level", "warning"),
        ),
    ]


# --- coordination ------------------------------------------------------------------------------


class Failure(Exception):
    pass


def _recv(pipe: Any, kind: str, timeout: float) -> tuple:
    if not pipe.poll(timeout):
        raise Failure(f"no {kind!r} from a load generator within {timeout:g}s")
    message = pipe.recv()
    if message[0] != kind:
        raise Failure(f"expected {kind!r} from a load generator, got {message[0]!r}")
    return message


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _make_certificate(directory: Path) -> tuple[str, str, str]:
    """A CA, and a certificate for 127.0.0.1 it signed: (cafile, cert, key) PEM paths."""
    import trustme  # only for --tls (pip install trustme; it is in the test extra)

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    paths = tuple(str(directory / name) for name in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(paths[0])
    leaf.cert_chain_pems[0].write_to_path(paths[1])
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(paths[1], append=True)
    leaf.private_key_pem.write_to_path(paths[2])
    return paths  # type: ignore[return-value]


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Run:
    """One scenario against one fresh server process."""

    def __init__(self, sc: Scenario, opts: Any) -> None:
        self.sc = sc
        self.opts = opts
        # --redis: a fresh redis-server per scenario; --server-workers N: the server's --workers.
        self.use_redis = bool(getattr(opts, "redis", False))
        self.server_workers = int(getattr(opts, "server_workers", 1) or 1)
        self.redis = RedisProcess() if self.use_redis else None
        self.server_args = list(sc.server_args)
        if sc.kind == "flood":
            self.server_args += flood_server_args(sc.flood, opts.server_src)
        if self.server_workers > 1:
            self.server_args += ["--workers", str(self.server_workers)]
        # --tls: a certificate made now (trustme); the load generator's clients connect to
        # the TLS port and verify it. Churn and flood scenarios stay on the plaintext port.
        self.tls = bool(getattr(opts, "tls", False))
        self._tls_dir = tempfile.TemporaryDirectory() if self.tls else None
        self.cafile: str | None = None
        if self._tls_dir is not None:
            self.cafile, cert, key = _make_certificate(Path(self._tls_dir.name))
            self.server_args += ["--tls-port", "0", "--tls-cert", cert, "--tls-key", key]
        # --ws: the clients connect to the WebSocket door, one line a message.
        self.ws = bool(getattr(opts, "ws", False))
        if self.ws:
            self.server_args += ["--ws-port", "0"]
        # --state: a fresh SQLite file, and a history for chat to be written to.
        self._state_dir = tempfile.TemporaryDirectory() if getattr(opts, "state", False) else None
        history = getattr(opts, "history", None)
        if self._state_dir is not None:
            state = str(Path(self._state_dir.name) / "state.db")
            self.server_args += ["--state", state]
            history = 20 if history is None else history
        if history is not None:  # after BASE_ARGS' --history 0: the last one counts
            self.server_args += ["--history", str(history)]
        self.server = ServerProcess(opts.loop, self.server_args, opts.server_src)
        self.procs: list[Any] = []
        self.pipes: list[Any] = []
        self.result: dict[str, Any] = {
            "scenario": sc.name,
            "label": sc.label,
            "kind": sc.kind,
            "format": sc.format,
            "loop": opts.loop,
            "gen_loop": opts.gen_loop,
            "clients": sc.clients,
            "senders": sc.senders,
            "window": sc.window,
            "rate_per_sender": sc.rate,
            "duration": sc.duration,
            "server_src": opts.server_src or "checkout",
            "redis": self.use_redis,
            "server_workers": self.server_workers,
            "tls": self.tls,
            "ws": self.ws,
            "state": self._state_dir is not None,
            "errors": [],
        }

    def execute(self) -> dict:
        started = time.monotonic()
        self.result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
        try:
            if self.redis is not None:
                self.redis.start()
                self.server.argv += ["--redis", self.redis.url]
            self.server.start()
            time.sleep(0.2)
            self.result["server_pids"] = len(self.server.pids())
            self.result["rss_baseline_kib"] = self.server.rss_kib()
            getattr(self, f"_{self.sc.kind}")()
        except (Failure, FloodError) as exc:
            self.result["errors"].append(str(exc))
        except Exception as exc:  # a broken run is reported, not a crash of the whole benchmark
            self.result["errors"].append(f"{type(exc).__name__}: {exc}")
        finally:
            self._teardown()
            if self._tls_dir is not None:
                self._tls_dir.cleanup()
            if self._state_dir is not None:
                self._state_dir.cleanup()
        self.result["wall_seconds"] = round(time.monotonic() - started, 2)
        self.result["ok"] = not self.result["errors"]
        return self.result

    # --- workers -------------------------------------------------------------------------------

    def _spawn(self, target: Any, specs: list[dict], shared: Any = None) -> None:
        for wid, spec in enumerate(specs):
            parent, child = _CTX.Pipe()
            args = (child, wid, spec, shared) if shared is not None else (child, spec)
            proc = _CTX.Process(target=target, args=args, daemon=True)
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)

    def _gather(self, kind: str, timeout: float) -> list[Any]:
        """One message of ``kind`` from every worker; its payload (None if it has none)."""
        deadline = time.monotonic() + timeout
        messages = [_recv(p, kind, max(0.1, deadline - time.monotonic())) for p in self.pipes]
        return [m[1] if len(m) > 1 else None for m in messages]

    def _worker_specs(self, kind: str, extra: dict | None = None) -> list[dict]:
        sc, n_workers = self.sc, max(1, min(self.opts.workers, self.sc.clients))
        clients = _split(sc.clients, n_workers)
        senders = _split(sc.senders, n_workers)
        specs, first = [], 0
        for w in range(n_workers):
            specs.append(
                {
                    "kind": kind,
                    "port": self.server.port,
                    "format": sc.format,
                    "gen_loop": self.opts.gen_loop,
                    "clients": clients[w],
                    "senders": senders[w],
                    "first_sender": first,
                    "workers": n_workers,
                    "window": sc.window,
                    "rate": sc.rate,
                    "msg_size": sc.msg_size,
                    "sample_every": sc.sample_every,
                    "probes": min(2, clients[w] - senders[w]),
                    "ready_timeout": (10 if self.opts.quick else 60) + sc.clients / 50,
                    "drain_timeout": 3.0 if self.opts.quick else 10.0,
                    **({"port": self.server.tls_port, "cafile": self.cafile} if self.tls else {}),
                    **({"port": self.server.ws_port, "ws": True} if self.ws else {}),
                    **(self._rooms_spec(sum(clients[:w])) if sc.rooms else {}),
                    **(extra or {}),
                }
            )
            first += senders[w]
        self.result["workers"] = n_workers
        return specs

    def _rooms_spec(self, first_client: int) -> dict:
        """Rooms mode: which room each client joins (bench/loadgen.py)."""
        sc = self.sc
        return {"rooms": sc.rooms, "per_room": sc.clients // sc.rooms, "first_client": first_client}

    def _settle_quiet(self, shared: Any, quiet: float = 1.0) -> None:
        """Rooms mode: who sees which join depends on timing; wait until no line has come
        for ``quiet`` seconds, so "go" starts from silence."""
        deadline = time.monotonic() + 60 + self.sc.clients / 20
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            lines = sum(shared[w * ROW + LINES] for w in range(len(self.pipes)))
            if lines != seen:
                seen, since = lines, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)
        raise Failure(f"settle: lines still arriving ({seen}) after the deadline")

    def _check_ready(self, infos: list[dict]) -> float:
        ready = sum(i["ready"] for i in infos)
        self.result["welcomed"] = ready
        for info in infos:
            self.result["errors"] += info["errors"]
        if ready != self.sc.clients:
            raise Failure(f"only {ready}/{self.sc.clients} clients were welcomed")
        return max(i["last_ready"] for i in infos)

    def _settle(self, shared: Any) -> None:
        """Wait until every join line has arrived everywhere, so "go" starts from silence."""
        n = self.sc.clients
        expected = n * (n + 1) // 2 + n * (3 if self.sc.format == "json" else 1)
        deadline = time.monotonic() + 60 + n / 20
        lines, last_change, seen = 0, time.monotonic(), -1
        while time.monotonic() < deadline:
            lines = sum(shared[w * ROW + LINES] for w in range(len(self.pipes)))
            if lines >= expected:
                time.sleep(0.1)
                return
            if lines != seen:
                seen, last_change = lines, time.monotonic()
            elif (
                self.redis is not None
                and self.sc.format == "json"
                and lines >= expected - n
                and time.monotonic() - last_change > 1.0
            ):
                # On Redis a client whose "/format json" reaches the server before its own
                # join is sequenced never gets that join line (docs/PERFORMANCE.md, "One room
                # on Redis"): up to one line per client short, quiet for 1 s, is settled.
                self.result["settle_missing_lines"] = expected - lines
                return
            time.sleep(0.02)
        raise Failure(f"settle: {lines} of {expected} join/welcome lines arrived")

    def _teardown(self) -> None:
        """Stop the server while the clients are still reading (a graceful-shutdown check)."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for pipe in self.pipes:
            with contextlib.suppress(Failure, OSError, EOFError):
                _recv(pipe, "stopping", 10)
        if self.server.proc is not None:
            rc = self.server.stop()
            self.result["server_exit"] = rc
            if self.server.shutdown_seconds is not None:
                self.result["shutdown_seconds"] = round(self.server.shutdown_seconds, 2)
            if rc != 0:
                self.result["errors"].append(
                    f"server exited with {rc}: {self.server.log_tail(500)}"
                )
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit",))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        if self.redis is not None:
            self.redis.cleanup()

    def _redis_cpu(self) -> float | None:
        return None if self.redis is None or self.redis.proc is None else self.redis.cpu_seconds()

    def _redis_pct(self, cpu0: float | None, wall: float) -> float | None:
        cpu1 = self._redis_cpu()
        if cpu0 is None or cpu1 is None:
            return None
        return round(100 * (cpu1 - cpu0) / max(1e-9, wall), 1)

    # --- the scenario kinds --------------------------------------------------------------------

    def _idle(self) -> None:
        sc = self.sc
        shared = _CTX.RawArray("q", ROW * max(1, min(self.opts.workers, sc.clients)))
        self._spawn(worker_main, self._worker_specs("idle"), shared)
        self._check_ready(self._gather("ready", 120 + sc.clients / 20))
        self._settle(shared)
        time.sleep(0.5)
        rss = self.server.rss_kib()
        base = self.result["rss_baseline_kib"]
        self.result.update(
            {
                "rss_kib": rss,
                "kib_per_client": round((rss - base) / sc.clients, 2),
                "figure": round((rss - base) / sc.clients, 2),
                "unit": "KiB/client",
            }
        )

    def _burst(self) -> None:
        sc = self.sc
        shared = _CTX.RawArray("q", ROW * max(1, min(self.opts.workers, sc.clients)))
        self._spawn(worker_main, self._worker_specs("burst"), shared)
        self._gather("armed", 30)
        cpu0, rcpu0 = self.server.cpu_seconds(), self._redis_cpu()
        t_go = time.monotonic() + 0.2
        for pipe in self.pipes:
            pipe.send(("go", t_go))
        last = self._check_ready(self._gather("ready", 120))
        seconds = last - t_go
        self.result.update(
            {
                "seconds_to_all_welcomed": round(seconds, 3),
                "figure": round(seconds, 3),
                "unit": "s",
                "server_cpu_seconds": round(self.server.cpu_seconds() - cpu0, 2),
                "redis_cpu_seconds": None
                if rcpu0 is None
                else round(self.redis.cpu_seconds() - rcpu0, 2),  # type: ignore[union-attr]
                "rss_kib": self.server.rss_kib(),
            }
        )

    def _fanout(self) -> None:
        sc = self.sc
        n_workers = max(1, min(self.opts.workers, sc.clients))
        shared = _CTX.RawArray("q", ROW * n_workers + sc.rooms)  # rooms: one slot each
        self._spawn(worker_main, self._worker_specs("fanout"), shared)
        self._check_ready(self._gather("ready", 120 + sc.clients / 20))
        if sc.rooms:
            self._settle_quiet(shared)
        else:
            self._settle(shared)
        t_go = time.monotonic() + 0.1
        deadline = t_go + sc.duration
        for pipe in self.pipes:
            pipe.send(("go", t_go, deadline))
        time.sleep(max(0.0, t_go - time.monotonic()))
        cpu0, rcpu0, wall0 = self.server.cpu_seconds(), self._redis_cpu(), time.monotonic()
        spy = self._start_py_spy(sc.duration)
        time.sleep(max(0.0, deadline - time.monotonic()))
        cpu1, wall1 = self.server.cpu_seconds(), time.monotonic()
        redis_pct = self._redis_pct(rcpu0, wall1 - wall0)
        if spy is not None:
            spy.wait(30)
        rss = self.server.rss_kib()
        results = self._gather("result", 60 + sc.duration)
        cpu_all = self.server.cpu_seconds() - cpu0  # through the drain: all deliveries
        sent = sum(r["sent"] for r in results)
        delivered = sum(r["deliveries"] for r in results)
        expected = sent * (sc.clients // sc.rooms if sc.rooms else sc.clients)
        last_rx = max(r["last_rx"] for r in results)
        elapsed = max(1e-9, last_rx - t_go)
        lat = sorted(x for r in results for x in r["latencies"])
        loss = 1 - delivered / expected if expected else 1.0
        self.result.update(
            {
                "messages_sent": sent,
                "deliveries": delivered,
                "expected_deliveries": expected,
                "loss": round(max(0.0, loss), 6),
                "deliveries_per_s": round(delivered / elapsed),
                "figure": round(delivered / elapsed),
                "unit": "deliveries/s",
                "offered_per_s": round(sc.rate * sc.senders * sc.clients / (sc.rooms or 1))
                if sc.rate
                else None,
                "latency_samples": len(lat),
                "p50_ms": None if not lat else round(_pct(lat, 0.50) * 1000, 2),
                "p99_ms": None if not lat else round(_pct(lat, 0.99) * 1000, 2),
                "max_ms": None if not lat else round(lat[-1] * 1000, 2),
                "server_cpu_pct": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
                "server_cpu_us_per_delivery": round(1e6 * cpu_all / max(1, delivered), 3),
                "gen_cpu_pct": round(100 * sum(r["cpu"] for r in results) / (wall1 - wall0), 1),
                "redis_cpu_pct": redis_pct,
                "rss_kib": rss,
                "rooms": sc.rooms,
            }
        )
        for r in results:
            self.result["errors"] += r["errors"]
        if sent == 0:
            raise Failure("no message was sent")
        if sc.rooms and delivered > expected:  # a line went to more than its room
            raise Failure(f"{delivered} deliveries, more than the {expected} of the rooms")
        if delivered < expected:
            missing = expected - delivered
            raise Failure(f"{missing} of {expected} deliveries missing after the drain")

    def _start_py_spy(self, duration: float) -> Any:
        """``--py-spy``: sample the server during the run (collapsed stacks, with line numbers)."""
        if not self.opts.py_spy:
            return None
        out = (
            Path(self.opts.py_spy) / f"pyspy-{self.sc.label.replace('/', '-')}-{self.opts.loop}.txt"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        self.result["py_spy"] = str(out)
        seconds = max(1, int(duration) - 1)
        spy_bin = Path(sys.executable).with_name("py-spy")
        # With --server-workers the pid is the idle supervisor: sample its workers too.
        workers = ["--subprocesses"] if (getattr(self.opts, "server_workers", 1) or 1) > 1 else []
        return subprocess.Popen(
            [
                str(spy_bin) if spy_bin.exists() else "py-spy",
                "record",
                *workers,
                "--pid",
                str(self.server.pid),
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _flood(self) -> None:
        run_flood(self)

    def _churn(self) -> None:
        sc = self.sc
        spec = {
            "port": self.server.port,
            "gen_loop": self.opts.gen_loop,
            "duration": sc.duration,
            **sc.churn,
        }
        self._spawn(churn_main, [spec])
        self.result["workers"] = 1
        _recv(self.pipes[0], "ready", 60)
        cpu0, rcpu0, wall0 = self.server.cpu_seconds(), self._redis_cpu(), time.monotonic()
        samples: list[tuple[float, int]] = []
        pipe = self.pipes[0]
        end = wall0 + sc.duration + 60
        while not pipe.poll(0.5):
            samples.append((time.monotonic() - wall0, self.server.rss_kib()))
            if time.monotonic() > end:
                raise Failure("churn: no result in time")
        cpu1, wall1 = self.server.cpu_seconds(), time.monotonic()
        redis_pct = self._redis_pct(rcpu0, wall1 - wall0)
        res = _recv(pipe, "result", 1)[1]
        # RSS flat: compare the last fifth with the second fifth (the first one is warm-up).
        n = len(samples)
        early = [r for _, r in samples[n // 5 : 2 * n // 5]] or [samples[0][1]]
        late = [r for _, r in samples[4 * n // 5 :]] or [samples[-1][1]]
        growth = sum(late) / len(late) - sum(early) / len(early)
        self.result.update(
            {
                "clients": res["observers"],
                **{k: v for k, v in res.items() if k != "cpu"},
                "rss_early_kib": round(sum(early) / len(early)),
                "rss_late_kib": round(sum(late) / len(late)),
                "rss_growth_kib": round(growth),
                "rss_max_kib": max(r for _, r in samples) if samples else None,
                "rss_samples": samples[:: max(1, n // 40)],
                "server_cpu_pct": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
                "gen_cpu_pct": round(100 * res["cpu"] / (wall1 - wall0), 1),
                "redis_cpu_pct": redis_pct,
                "figure": res["cycles"],
                "unit": "join/leave cycles",
            }
        )
        self.result["errors"] = self.result["errors"] + list(res["errors"])
        if res["gaps"]:
            raise Failure(f"churn: {res['gaps']} seq gaps seen by observers: {res['gap_examples']}")
        if res["stuck_not_kicked"]:
            raise Failure(f"churn: never kicked as slow: {res['stuck_not_kicked']}")
        if not res["cycles"] or not res["events_checked"]:
            raise Failure("churn: nothing happened")


def run(sc: Scenario, opts: Any) -> dict:
    if sc.kind == "client":
        return _client(sc)
    raise_nofile()
    return Run(sc, opts).execute()


def _client(sc: Scenario) -> dict:
    result: dict[str, Any] = {
        "name": sc.name, "label": sc.label, "kind": sc.kind, "clients": 1, "errors": []
    }  # fmt: skip
    started = time.monotonic()
    try:
        result.update(run_client_flood(sc.rate, sc.duration))
        result["ok"] = True
    except (ClientFloodError, OSError, subprocess.SubprocessError) as exc:
        result.update(ok=False, errors=[str(exc)])
    result["wall_seconds"] = round(time.monotonic() - started, 2)
    return result
