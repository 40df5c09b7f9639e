"""A connection of this node (:class:`Member`) and someone on the server (:class:`User`),
on this node or another. No I/O.

A member's own flags are changed by its own methods here; what others see of it (its
name, its marks, the rooms it is in) changes through
:class:`~chatroom.server.core.state.RoomState`, which keeps the indexes those feed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId

if TYPE_CHECKING:
    from chatroom.server.core.accounts_state import Account


@dataclass(slots=True)
class Member:
    """A connection on this node."""

    conn: ConnId
    id: str
    address: str  # its remote address as the per-address limits count it (admission.py)
    name: str
    last_active: float
    format: p.OutputFormat = p.OutputFormat.TEXT
    warned: bool = False  # told it will be kicked as idle soon
    connected_at: float = 0.0
    spoke: bool = False  # it has sent a line
    # Admitted quietly while the room churns: its join waits until then or its first line.
    quiet_until: float | None = None
    # The room has a password this newcomer has not given yet: it is in nobody's sight.
    waiting: bool = False
    failures: int = 0  # wrong passwords it sent
    # Moderation (rules/operators.py): an operator, and its wrong /oper attempts.
    operator: bool = False
    oper_failures: int = 0
    oper_retry_at: float = 0.0
    # Self-service (rules/selfservice.py): the user ids it ignores, and its /away text.
    ignoring: set[str] = field(default_factory=set)
    away: str | None = None
    # The registered name this connection proved it owns (/register, /login; accounts.py).
    account: Account | None = None
    bot: bool = False  # a program (/bot): marked in who, no replay on join
    # The rooms it is in (their keys, in the order it joined them: a text-mode member is in
    # one), where its plain lines go, and the room of the line being handled when a
    # request names one (docs/PROTOCOL.md, "Rooms").
    rooms: list[str] = field(default_factory=list)
    current: str = p.DEFAULT_ROOM
    aimed: str | None = None

    @property
    def here(self) -> str:
        """The room the line being handled is for."""
        return self.aimed or self.current

    def aim(self, room: str | None) -> None:
        """The line being handled is for ``room`` (None: for its current room again)."""
        self.aimed = room

    # Its own flags, changed only here (the marks others see go through RoomState).

    def touched(self, now: float) -> bool:
        """A line from it: it is active (not warned). True if it is its first line."""
        self.last_active = now
        self.warned = False
        first = not self.spoke
        self.spoke = True
        return first

    def warn(self) -> None:
        """It was told it will be kicked as idle soon."""
        self.warned = True

    def quiet(self, until: float | None) -> None:
        """Admitted quietly until ``until`` (None: its join is announced now)."""
        self.quiet_until = until

    def let_in(self, now: float) -> None:
        """It gave the room's password: it is no longer waiting."""
        self.waiting = False
        self.last_active = now

    def password_failed(self) -> int:
        """A wrong password from it; how many it has given."""
        self.failures += 1
        return self.failures

    def owns(self, account: Account | None) -> None:
        """It registered ``account``'s name or logged in to it (None: it owns none now)."""
        self.account = account

    def oper_failed(self, backoff: Callable[[int], float], now: float) -> int:
        """A wrong /oper from it: its next waits ``backoff(failures)`` seconds."""
        self.oper_failures += 1
        self.oper_retry_at = now + backoff(self.oper_failures)
        return self.oper_failures


@dataclass(slots=True)
class User:
    """Someone on the server, on this node or another, in one room or more."""

    id: str
    name: str
    node: str
    last_seen: float  # when the room last saw a line of theirs (for other nodes' users)
    rooms: set[str] = field(default_factory=set)  # the keys of the rooms it is in
    bot: bool = False  # marked as a program (/bot; in a shared room, another node's too)
