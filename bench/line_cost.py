"""What one line costs the room's core, in instructions: run it under callgrind with K lines
and with none, and divide the difference by K (docs/PERFORMANCE.md, "History, request ids
and the seq lease"). A room of 100 (text mode), the lines from one JSON member.

    valgrind --tool=callgrind python bench/line_cost.py chat|request K [state]

``state``: the room as a server with ``--state`` makes it (a seq lease to keep to).
"""

from __future__ import annotations

import sys

from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import Restored
from chatroom.server.core.room import Room


def main() -> None:
    kind, count = sys.argv[1], int(sys.argv[2])
    state = sys.argv[3:] == ["state"]
    rules = RoomRules.from_config(ServerConfig(idle_timeout=0, rate=0))
    restored = Restored(lease=10**12) if state else None
    room = Room(rules, epoch="e1", restored=restored)
    now = 1000.0
    for conn in range(1, 101):
        room.handle(i.Connected(conn, "127.0.0.1", 5000 + conn), now)
    room.handle(i.LineReceived(1, "/format json"), now)
    for n in range(count):
        line = f"hello {n}" if kind == "chat" else f'{{"id": "r{n}", "text": "hello {n}"}}'
        room.handle(i.LineReceived(1, line), now)


if __name__ == "__main__":
    main()
