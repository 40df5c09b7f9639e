"""Who is in the room and under which name: the one object that changes it. No I/O.

Everything the room knows of who is here lives here — this node's connections (members),
everyone in the room (users, on this node or, in a shared room, on others), the names they
hold, the broadcast subscribers by output format, the connections from each address, the
recent chat and the last seq — and only the methods below change it, so every rule about it
(a name is held by one user, a member is a user of this node once its join is applied, a
subscriber is a member) is kept in one place. The room (:mod:`chatroom.server.core.room`)
decides *when* to change it; this module says *how*. Who may come in is decided with
:mod:`chatroom.server.core.admission`, which keeps the connection throttle and the churn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId
from chatroom.server.core.history import ChatHistory

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
    """Someone in the room, on this node or another."""

    id: str
    name: str
    node: str
    last_seen: float  # when the room last saw a line of theirs (for other nodes' users)
    bot: bool = False  # another node's user marked as a program (/bot)


class RoomState:
    def __init__(self, node: str, keep: int, epoch: str | None = None) -> None:
        self.node = node  # this node's name; every user of a single-node room is on it
        self.epoch = epoch  # which history the seqs count in (see protocol.Welcome)
        self._members: dict[ConnId, Member] = {}  # this node's connections
        self._local: dict[str, Member] = {}  # the same, by user id
        self._users: dict[str, User] = {}  # everyone in the room, by id, in join order
        # name_skeleton(name) -> user id: one holder for all the names that look alike
        self._by_key: dict[str, str] = {}
        self._subscribers: dict[p.OutputFormat, dict[ConnId, Member]] = {
            fmt: {} for fmt in p.OutputFormat
        }
        self._per_address: dict[str, int] = {}
        self._history = ChatHistory(keep)  # the last ``keep`` messages (history.py)
        self._seq = 0
        self._version = 0  # changes whenever who is here, or a name, changes
        # ignored user id -> the conns of this node's members ignoring it (never empty)
        self._ignored_by: dict[str, set[ConnId]] = {}
        # The last full who reply per format, reused while nobody joined, left or renamed
        # and the second (idle times are in whole seconds) is the same.
        self._who_cache: dict[p.OutputFormat, tuple[tuple[int, ...], Any]] = {}
        self.messages = 0  # chat lines and actions applied since start (for the metrics)

    # --- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Connections on this node."""
        return len(self._members)

    @property
    def seq(self) -> int:
        """The seq of the last broadcast event applied (0 before the first)."""
        return self._seq

    @property
    def user_count(self) -> int:
        return len(self._users)

    @property
    def history(self) -> tuple[p.Message | p.Action, ...]:
        return self._history.events

    @property
    def chat(self) -> ChatHistory:
        """The messages kept, to read (they change through :meth:`said` alone)."""
        return self._history

    def member(self, conn: ConnId) -> Member | None:
        return self._members.get(conn)

    def members(self) -> list[Member]:
        return list(self._members.values())

    def local(self, user_id: str) -> Member | None:
        """This node's member with ``user_id``, if it has one."""
        return self._local.get(user_id)

    def user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def users(self) -> list[User]:
        return list(self._users.values())

    def holder_of(self, name: str) -> str | None:
        """The id of the user holding ``name`` or a name that looks like it (compared by
        :func:`~chatroom.protocol.name_skeleton`: without case, form or look-alikes)."""
        return self._by_key.get(p.name_skeleton(name))

    def connections_from(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def is_subscribed(self, conn: ConnId) -> bool:
        member = self._members.get(conn)
        return member is not None and conn in self._subscribers[member.format]

    def formats_in_use(self) -> list[p.OutputFormat]:
        return [fmt for fmt, subscribers in self._subscribers.items() if subscribers]

    @property
    def version(self) -> int:
        """A number that changes whenever the list of users or their names change."""
        return self._version

    def ignorers_of(self, user_id: str) -> set[ConnId] | None:
        """The conns of this node's members who ignore ``user_id`` (None: nobody does)."""
        return self._ignored_by.get(user_id)

    @property
    def ignored_by(self) -> dict[str, set[ConnId]]:
        """Who ignores whom: ignored user id -> its ignorers' conns (read only)."""
        return self._ignored_by

    def cached_who(self, fmt: p.OutputFormat, stamp: tuple[int, ...]) -> Any | None:
        """The full who reply kept for ``fmt`` if it was made at ``stamp``."""
        cached = self._who_cache.get(fmt)
        return cached[1] if cached is not None and cached[0] == stamp else None

    def keep_who(self, fmt: p.OutputFormat, stamp: tuple[int, ...], reply: Any) -> None:
        self._who_cache[fmt] = (stamp, reply)

    def history_changed(self) -> bool:
        """Whether the history has lines a state file does not have yet; from now on it is
        taken to have them (the caller hands the history over)."""
        return self._history.changed()

    # --- a member's marks others see, and who ignores whom ------------------------------------

    def made_operator(self, member: Member) -> None:
        member.operator = True
        member.oper_failures = 0
        self._version += 1  # who shows the mark

    def mark_bot(self, member: Member) -> None:
        member.bot = True
        self.mark_remote_bot(member.id, True)  # its user too: known once the member left

    def mark_remote_bot(self, user_id: str, bot: bool) -> None:
        """A user is (or no longer is) a program (/bot; another node says so in a shared room)."""
        user = self._users.get(user_id)
        if user is not None:
            user.bot, self._version = bot, self._version + 1

    def is_bot(self, user_id: str) -> bool:
        user, member = self._users.get(user_id), self._local.get(user_id)
        return member.bot if member is not None else user is not None and user.bot

    def set_away(self, member: Member, text: str | None) -> None:
        member.away = text
        self._version += 1  # who shows it

    def ignore(self, member: Member, user_id: str) -> None:
        member.ignoring.add(user_id)
        self._ignored_by.setdefault(user_id, set()).add(member.conn)

    def unignore(self, member: Member, user_id: str) -> None:
        member.ignoring.discard(user_id)
        conns = self._ignored_by.get(user_id)
        if conns is not None:
            conns.discard(member.conn)
            if not conns:
                del self._ignored_by[user_id]

    # --- this node's connections -----------------------------------------------------------

    def add_member(self, member: Member) -> None:
        if member.conn in self._members:
            raise ValueError(f"connection {member.conn} is already in the room")
        self._members[member.conn] = member
        self._local[member.id] = member
        self._per_address[member.address] = self._per_address.get(member.address, 0) + 1

    def remove_member(self, conn: ConnId) -> Member | None:
        """Take ``conn`` off this node (and off the broadcasts); its user stays in the room
        until its leave is applied."""
        member = self._members.pop(conn, None)
        if member is None:
            return None
        for user_id in list(member.ignoring):  # it ignores nobody any more
            self.unignore(member, user_id)
        del self._local[member.id]
        self._subscribers[member.format].pop(conn, None)
        remaining = self._per_address[member.address] - 1
        if remaining:
            self._per_address[member.address] = remaining
        else:
            del self._per_address[member.address]
        return member

    def reidentify(self, member: Member, user_id: str) -> None:
        """``member``, not yet in the room under its id, takes ``user_id`` instead (and the
        name with it, while its name was its id)."""
        if user_id in self._local:
            raise ValueError(f"user id {user_id} is already this node's")
        del self._local[member.id]
        if member.name == member.id:
            member.name = user_id
        member.id = user_id
        self._local[user_id] = member

    def subscribe(self, member: Member) -> None:
        self._subscribers[member.format][member.conn] = member

    def set_format(self, member: Member, fmt: p.OutputFormat, *, subscribe: bool = True) -> None:
        """``member``'s output is now in ``fmt`` (and, with ``subscribe``, so are the
        broadcasts it receives)."""
        self._subscribers[member.format].pop(member.conn, None)
        member.format = fmt
        if subscribe:
            self._subscribers[fmt][member.conn] = member

    # --- the room's events, in the order they are sequenced ----------------------------------

    def joined(self, event: p.Join, node: str) -> Member | None:
        """``event``'s user is in the room; returns it if it is this node's member."""
        self._seq = event.seq
        self._version += 1
        self._users[event.id] = User(event.id, event.name, node, event.ts)
        self._by_key[p.name_skeleton(event.name)] = event.id
        member = self._local.get(event.id) if node == self.node else None
        if member is not None:
            member.name = event.name
        return member

    def renamed(self, event: p.Rename, node: str) -> Member | None:
        """``event``'s user now holds its new name; returns it if it is this node's member."""
        self._seq = event.seq
        self._version += 1
        user = self._users.get(event.id)
        if user is not None:
            self._release_name(user)
            user.name, user.last_seen = event.new, event.ts
            self._by_key[p.name_skeleton(event.new)] = user.id
        member = self._local.get(event.id) if node == self.node else None
        if member is not None:
            member.name = event.new
        return member

    def left(self, event: p.Leave) -> None:
        self._seq = event.seq
        self._version += 1
        user = self._users.pop(event.id, None)
        if user is not None:
            self._release_name(user)
        # Its ignorers forget it (its id is never used again).
        for conn in self._ignored_by.pop(event.id, ()):
            ignorer = self._members.get(conn)
            if ignorer is not None:
                ignorer.ignoring.discard(event.id)

    def said(self, event: p.Message | p.Action) -> None:
        self._seq = event.seq
        self.messages += 1
        self._history.append(event)
        user = self._users.get(event.id)
        if user is not None:
            user.last_seen = event.ts

    def restore_history(
        self,
        history: Iterable[p.Message | p.Action],
        seq: int = 0,
        *,
        known: int = 0,
        hole: tuple[int, int] | None = None,
    ) -> None:
        """The recent chat a state file kept (--state): replayed to newcomers, and the seq
        goes on from its last (or ``seq``, where a clean stop or a crash's lease left it),
        so new events never number below it. ``known`` and ``hole``: what it covers
        (:class:`~chatroom.server.core.history.ChatHistory`)."""
        self._history.restore(history, known=known, hole=hole)
        self._seq = max(self._seq, seq, self._history.last_seq)

    def everyone_leaves(self) -> list[ConnId]:
        """The server is stopping: this node's members leave at once. Returns their conns."""
        conns = list(self._members)
        self._version += 1
        for conn in conns:
            member = self.remove_member(conn)
            user = self._users.pop(member.id, None) if member is not None else None
            if user is not None:
                self._release_name(user)
        return conns

    def reset(
        self,
        users: Iterable[tuple[str, str, str]],
        seq: int,
        history: Iterable[p.Message | p.Action],
        now: float,
        epoch: str | None = None,
        kept_from: int = 0,
    ) -> None:
        """Take a ledger's view of the room: ``(id, name, node)`` of everyone, the last seq,
        the recent chat (every message after ``kept_from``), the epoch. This node's members
        are kept; the caller reconciles them."""
        self._version += 1
        same = epoch is not None and epoch == self.epoch
        self._history.resync(list(history), kept_from, self._seq, same)
        self.epoch = epoch
        self._users = {uid: User(uid, name, node, now) for uid, name, node in users}
        self._by_key = {p.name_skeleton(user.name): uid for uid, user in self._users.items()}
        self._seq = seq

    def adopt_name(self, member: Member, name: str) -> None:
        """``member`` is called ``name`` from now on: the ledger says so (it renamed while we
        were cut off), or the guest name it was given is held on another node."""
        self._version += 1
        member.name = name

    def _release_name(self, user: User) -> None:
        """``user`` no longer holds its name — unless someone else has claimed it since."""
        key = p.name_skeleton(user.name)
        if self._by_key.get(key) == user.id:
            del self._by_key[key]
