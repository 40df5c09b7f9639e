"""The who list: everyone in the room, as a ``who`` event. No I/O; it only reads the room's
state."""

from __future__ import annotations

from collections.abc import Callable

from chatroom import protocol as p
from chatroom.server.core.state import RoomState


def who_list(
    state: RoomState,
    now: float,
    query: str = "",
    limit: int | None = None,
    registered: Callable[[str], bool] = lambda name: False,
    room: str | None = None,
) -> p.Who:
    """Everyone in ``room`` (None: the default room) in join order (or those whose names
    contain ``query``), the first ``limit`` of them listed; ``registered`` says whose names
    are registered."""
    key = p.name_key(query)
    room = room or state.default
    users = state.users(room)
    matching = [u for u in users if key in p.name_key(u.name)] if key else users
    total = len(matching)
    entries = []
    for user in matching:
        if limit is not None and len(entries) >= limit:
            break
        member = state.local(user.id) if user.node == state.node else None
        last = member.last_active if member is not None else user.last_seen
        entries.append(
            p.WhoEntry(
                id=user.id,
                name=user.name,
                idle=max(0, int(now - last)),
                op=member is not None and member.operator,
                away=member.away if member is not None else None,
                registered=registered(user.name),
                bot=member.bot if member is not None else user.bot,
            )
        )
    return p.Who(users=tuple(entries), total=total if total > len(entries) else None, room=room)
