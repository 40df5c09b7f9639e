"""``python -m bench``: run the scenarios, print a Markdown table, optionally write JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.loadgen import raise_nofile
from bench.scenarios import Scenario, extra_scenarios, run, scenarios


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark a real chatroom-server process (see docs/PERFORMANCE.md).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, under a minute: the CI smoke run (no timed checks)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only this scenario (repeatable; a name such as fanout-small runs both formats)",
    )
    parser.add_argument(
        "--format",
        choices=["text", "json", "both"],
        default="both",
        help="fan-out output format(s) to run (default: both)",
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="the server's event loop, its --loop flag (default: auto, as the server: "
        "uvloop if installed)",
    )
    parser.add_argument(
        "--gen-loop",
        choices=["asyncio", "uvloop"],
        default="uvloop" if _uvloop_available() else "asyncio",
        help="the load generator's event loop (default: uvloop if installed)",
    )
    parser.add_argument(
        "--server-src",
        metavar="DIR",
        help="run the chatroom package found in DIR instead of this checkout's "
        "(e.g. `git archive COMMIT chatroom | tar -x -C DIR`)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="load-generator processes (default: 2)"
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="start a fresh redis-server per scenario (127.0.0.1, free port, nothing on disk) "
        "and run the server with --redis against it; Redis CPU is reported beside the server's",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        metavar="N",
        help="the server's --workers N (N processes sharing the port; needs --redis). RSS "
        "and CPU are summed over the server's process tree",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the server also listens with TLS (a certificate made by trustme) and the load "
        "generator's clients connect over it (fan-out, burst, idle; churn and floods stay "
        "plaintext)",
    )
    parser.add_argument(
        "--ws",
        action="store_true",
        help="the server also listens for WebSocket (--ws-port) and the load generator's "
        "clients connect over it, one line a message (fan-out, burst, idle; churn and floods "
        "stay on TCP): compare deliveries/s with the same run over TCP",
    )
    parser.add_argument(
        "--state",
        action="store_true",
        help="the server keeps its state in a fresh SQLite file (--state), with --history 20 so "
        "chat is written to it: the cost of persistence on fan-out (compare with --history 20)",
    )
    parser.add_argument(
        "--history",
        type=int,
        metavar="N",
        help="the server's --history N (default 0, or 20 with --state): to compare --state "
        "with a run that keeps the same history in memory only",
    )
    parser.add_argument("--duration", type=float, help="seconds per fan-out run")
    parser.add_argument("--soak", type=float, help="seconds of churn soak")
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="profile the server with py-spy during each fan-out run; collapsed "
        "stacks go to DIR (summarise: python -m bench.hotspots FILE)",
    )
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON here")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


def _select(
    all_sc: list[Scenario], extra: list[Scenario], args: argparse.Namespace
) -> list[Scenario]:
    chosen = all_sc
    if args.scenario:
        chosen = [
            sc for sc in all_sc + extra if any(sc.label == s or sc.name == s for s in args.scenario)
        ]
    if args.format != "both":
        chosen = [sc for sc in chosen if sc.kind != "fanout" or sc.format == args.format]
    return chosen


def _fmt(value: object, spec: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and spec:
        return format(value, spec)
    return str(value)


def _figure(r: dict) -> str:
    kind = r["kind"]
    if kind == "idle":
        return f"{r.get('kib_per_client', '–')} KiB/client"
    if kind == "burst":
        return f"{r.get('seconds_to_all_welcomed', '–')} s to all welcomed"
    if kind == "fanout":
        rate = r.get("deliveries_per_s")
        return "–" if rate is None else f"{rate / 1e6:.3f} M deliveries/s"
    if kind == "churn":
        return (
            f"{r.get('cycles', '–')} cycles, {r.get('events_checked', '–')} events checked, "
            f"{r.get('gaps', '–')} gaps, {r.get('stuck_kicked_slow', '–')}/{r.get('stuck', '–')} "
            f"stuck kicked"
        )
    if kind in ("flood", "handover"):
        return r.get("summary", "–")
    if kind == "client":
        if "ms_cpu_per_line" not in r:
            return "–"
        return (
            f"{r['ms_cpu_per_line']} ms CPU/line ({r['client_cpu_pct']}% of a core), lag "
            f"{r['lag_ms_p50']}/{r['lag_ms_max']} ms (early {r['lag_ms_early']}, late "
            f"{r['lag_ms_late']}), client RSS {r['rss_last_kib'] / 1024:.0f} MiB"
        )
    return "–"


def markdown_table(results: list[dict]) -> str:
    redis = any(r.get("redis") for r in results)
    head = (
        "| scenario | clients | result | p50 ms | p99 ms | loss | server CPU % | gen CPU % "
        + ("| redis CPU % " if redis else "")
        + "| server RSS MiB | ok |"
    )
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---:|" + ("---:|" * redis) + "---:|---|"]
    for r in results:
        loss = r.get("loss")
        rss = r.get("rss_kib") or r.get("rss_late_kib")
        lines.append(
            f"| {r['label']} | {r.get('clients')} | {_figure(r)} | {_fmt(r.get('p50_ms'))} "
            f"| {_fmt(r.get('p99_ms'))} | {'–' if loss is None else f'{loss:.2%}'} "
            f"| {_fmt(r.get('server_cpu_pct'))} | {_fmt(r.get('gen_cpu_pct'))} "
            + (f"| {_fmt(r.get('redis_cpu_pct'))} " if redis else "")
            + f"| {'–' if rss is None else f'{rss / 1024:.1f}'} | {'yes' if r['ok'] else 'NO'} |"
        )
    return "\n".join(lines)


def machine() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "nofile": list(raise_nofile()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.server_workers < 1:
        parser.error("--server-workers must be at least 1")
    if args.server_workers > 1 and not args.redis:
        parser.error("--server-workers needs --redis (the server's --workers does)")
    if args.loop == "auto":  # resolved here so that results name the loop that ran
        args.loop = "uvloop" if _uvloop_available() else "asyncio"
    all_sc = scenarios(args.quick, args.duration, args.soak)
    extra = extra_scenarios(args.quick)
    if args.list:
        for sc in all_sc + extra:
            print(sc.label)
        return 0
    chosen = _select(all_sc, extra, args)
    if not chosen:
        print(f"no scenario matches {args.scenario}", file=sys.stderr)
        return 2
    info = machine()
    print(
        f"# chatroom benchmark ({'quick' if args.quick else 'full'}): server loop {args.loop}"
        f"{' with redis' if args.redis else ''}{', clients over TLS' if args.tls else ''}"
        f"{', clients over WebSocket' if args.ws else ''}"
        f"{', --state' if args.state else ''}"
        f"{f', {args.server_workers} server workers' if args.server_workers > 1 else ''}, "
        f"generator {args.workers} x {args.gen_loop}; {info['nproc']} CPUs ({info['cpu']}), "
        f"Python {info['python']}, fd limit {info['nofile'][0]}",
        flush=True,
    )
    results = []
    started = time.monotonic()
    for sc in chosen:
        print(f"- {sc.label} ...", end=" ", flush=True, file=sys.stderr)
        result = run(sc, args)
        results.append(result)
        status = "ok" if result["ok"] else "FAILED: " + "; ".join(result["errors"][:3])
        print(
            f"{_figure(result)} ({result['wall_seconds']} s) {status}", file=sys.stderr, flush=True
        )
    print()
    print(markdown_table(results))
    print(f"\n{len(results)} scenarios in {time.monotonic() - started:.0f} s")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"machine": info, "argv": sys.argv[1:], "results": results}, indent=1) + "\n"
        )
    failed = [r["label"] for r in results if not r["ok"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
