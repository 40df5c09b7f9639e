"""Room names, as both sides read and show them (docs/PROTOCOL.md, "Rooms"). No I/O.

A room name is 1-32 ASCII letters, digits, ``-``, ``_`` or ``.``; a leading ``#`` is
optional and ignored, and names are compared ignoring case. On the wire a room is its key
(lowercase, no ``#``); people see it as ``#key``. ASCII alone, so no two rooms can look
alike (names of users have their skeletons; rooms need none).
"""

from __future__ import annotations

import re

DEFAULT_ROOM = "main"
ROOM_MAX_CHARS = 32
_ROOM = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
ROOM_RULE = "a room name is 1-32 letters, digits, '-', '_' or '.' (a leading '#' is optional)"


def room_key(text: str) -> str | None:
    """The room ``text`` names (lowercase, without ``#``), or None if it is no room name."""
    name = text[1:] if text.startswith("#") else text
    return name.lower() if _ROOM.fullmatch(name) else None


def shown_room(key: str) -> str:
    """How people see the room ``key``: ``#dev``."""
    return f"#{key}"
