"""What one chat line costs the room, in instructions (valgrind's callgrind): deterministic,
so a small change shows on this noisy shared machine where CPU time would not.

The room (the I/O-free core) of the chatroom package in ``--server-src`` (default: this
checkout's) is made with ``--members`` nc users and handed ``--warm`` chat lines, then
``--lines`` more; the same without the last ``--lines`` is run too, and the difference is
divided by ``--lines``: one line's handling (its rule, its seq, its history, the broadcast
encoded once per format, queued in the outbox and taken as the bytes for each connection,
as the adapter's flush takes them), not Python's start or the setup. ``--other-rooms N``
makes the server hold N more rooms (listed, empty); ``--used-rooms N``: one more member
walks through N rooms (``/join``) before the lines, as a room used once and left.

    PYTHONHASHSEED=0 python -m bench.callgrind_line --server-src DIR --members 100
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Run inside valgrind: argv: src, members, lines, other rooms, rooms used once.
INNER = """
import sys
src, members, lines, others, used = sys.argv[1], *map(int, sys.argv[2:6])
sys.path.insert(0, src)
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core.outbox import Outbox
from chatroom.server.core.room import Room
names = tuple(f"r{i}" for i in range(others))
listed = {"rooms": names, "max_rooms": others + 10} if others else {}
config = ServerConfig(rate=0.0, idle_timeout=0.0, history=0, **listed)
room = Room(RoomRules.from_config(config), epoch="bench")
box = Outbox()
def run(actions):
    for action in actions:
        box.queue(action)
    while box:
        box.take()
now = 1000.0
for conn in range(1, members + 1):
    run(room.connect(conn, "10.0.%d.%d" % (conn // 250, conn % 250 + 1), 40000 + conn, now))
if used:
    run(room.connect(members + 1, "10.1.0.1", 1, now))
    for n in range(used):
        run(room.receive(members + 1, "/join u%d" % n, now))
    run(room.receive(members + 1, "/part", now))
for n in range(lines):
    run(room.receive(1 + n % members, "- s0 " + "x" * 43, now + n * 0.001))
"""


def instructions(src: str, members: int, lines: int, others: int, used: int) -> int:
    """Instructions valgrind counted for the whole run (start, setup and ``lines``)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                INNER,
                src,
                str(members),
                str(lines),
                str(others),
                str(used),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-src", default=str(REPO_ROOT), help="a tree with chatroom/")
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--warm", type=int, default=200, help="lines before the counted ones")
    parser.add_argument("--lines", type=int, default=1000, help="lines counted")
    parser.add_argument("--other-rooms", type=int, default=0, help="listed, empty")
    parser.add_argument("--used-rooms", type=int, default=0, help="joined once, then left")
    args = parser.parse_args()
    src = str(Path(args.server_src).resolve())
    shape = (args.other_rooms, args.used_rooms)
    base = instructions(src, args.members, args.warm, *shape)
    full = instructions(src, args.members, args.warm + args.lines, *shape)
    per_line = (full - base) / args.lines
    print(
        f"{src}: {args.members} members, {args.other_rooms} other rooms, "
        f"{args.used_rooms} used once: "
        f"{per_line / 1000:.2f}k instructions a line ({full - base} for {args.lines})"
    )


if __name__ == "__main__":
    main()
