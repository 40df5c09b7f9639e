"""What the room's moderation knows, and the one object that changes it. No I/O.

The operators (name and scrypt hash, from ``--ops-file``) and the /oper checks under way,
the message of the day, who is muted until when (see :class:`Mute`), the bans and the
topic live in :class:`Moderation`, and only its methods change them; the moderation
commands' rules (:mod:`chatroom.server.core.rules.moderation`) decide when.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId, Restored
from chatroom.server.core.addresses import Network, normal_host, normal_network
from chatroom.server.core.passwords import decoy_for


def span(seconds: float) -> str:
    """``seconds`` as a person reads it: 45s, 10m, 2h5m, 1d."""
    seconds = math.ceil(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


def network_of(address: str) -> Network | str:
    """An address as the per-address limits count it (admission.py: an IPv4 address, an
    IPv6 /64...) as a network, or itself if it is not an IP (an IPv4-mapped address as
    the IPv4 one: :mod:`~chatroom.server.core.addresses`)."""
    try:
        return normal_network(ipaddress.ip_network(address, strict=False))
    except ValueError:
        return address


def parse_target(query: str) -> Network | None:
    """A /ban's target as an address or a CIDR network (None: it is a name)."""
    try:
        return normal_network(ipaddress.ip_network(query, strict=False))
    except ValueError:
        return None


@dataclass(slots=True)
class Ban:
    """Everyone from ``target`` is sent away and refused at connect until ``until``."""

    target: Network | str  # a network, or an address that is not an IP (matched as is)
    until: float  # inf: until /unban
    name: str | None  # the user it was made against (/ban NAME), shown in /bans
    reason: str | None
    by: str

    def matches(self, where: Network | str) -> bool:
        """Whether it covers ``where`` (a network of :func:`network_of`): a ban of one
        IPv6 address covers its /64, as the per-address limits count it."""
        target = self.target
        if isinstance(target, str) or isinstance(where, str):
            return target == where
        return target.version == where.version and target.overlaps(where)  # type: ignore[arg-type]

    def describe(self, now: float) -> str:
        """One line for /bans: what, whose, how long still, by whom, why."""
        name = f" ({self.name})" if self.name else ""
        left = "no end" if self.until == math.inf else f"{span(self.until - now)} left"
        why = f": {self.reason}" if self.reason else ""
        return f"{self.target}{name}, {left}, by {self.by}{why}"

    def record(self) -> dict[str, Any]:
        """What the state file keeps of it (--state; an endless ban's ``until`` is None)."""
        until = None if self.until == math.inf else self.until
        return {"target": str(self.target), "until": until, "name": self.name,
                "reason": self.reason, "by": self.by}  # fmt: skip

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Ban:
        until = record.get("until")
        return cls(
            network_of(str(record["target"])),
            math.inf if until is None else float(until),
            record.get("name"),
            record.get("reason"),
            str(record.get("by", "?")),
        )


@dataclass(slots=True)
class Mute:
    """Whoever uses the name ``name`` or connects from ``address`` may not speak until
    ``until``: a mute holds across reconnects, renames and restarts. ``address`` is None
    when the user's address is one many share (an exempt network: loopback, a proxy), or
    for a record an older server kept: then the mute holds the name (and the connection
    it was made on, :attr:`Moderation.mutes`)."""

    name: str
    address: str | None  # as the per-address limits count it (an IPv6 /64)
    until: float  # inf: until /unmute
    room: str | None = None  # the room it holds in (None: every room; given in the default)

    def record(self) -> dict[str, Any]:
        """What the state file and the ledger keep (an older server reads name and until;
        ``address`` and ``room`` are left out when there is none)."""
        until = None if self.until == math.inf else self.until
        kept: dict[str, Any] = {"name": self.name, "until": until}
        if self.room is not None:
            kept["room"] = self.room
        return kept if self.address is None else {**kept, "address": self.address}

    @classmethod
    def from_record(cls, key: str, record: dict[str, Any]) -> Mute:
        if not isinstance(record, dict):
            raise ValueError(f"a mute record of {type(record).__name__}")
        until, address = record.get("until"), record.get("address")
        if not (until is None or isinstance(until, int | float)):
            raise ValueError(f"a mute's until of {until!r}")
        name, room = record.get("name"), record.get("room")
        if room is not None and (not isinstance(room, str) or p.room_key(room) != room):
            raise ValueError(f"a mute's room of {room!r}")
        return cls(
            name if isinstance(name, str) else key,
            normal_host(address) if isinstance(address, str) and address else None,
            math.inf if until is None else float(until),
            room,
        )


def in_room(key: str, room: str | None) -> str:
    """``key`` (a user id, a name's key, an address) for a mute that holds in ``room``
    alone (None: in every room): a room's mutes are kept beside the others under these."""
    return key if room is None else f"{key}\x1f{room}"  # no name, id or address has it


class Moderation:
    """What the room's moderation knows: the operators' names and hashes, who is muted
    until when, the bans, the topic and the message of the day. Its fields are read by
    the rules; only its methods change them."""

    def __init__(
        self,
        operators: dict[str, tuple[str, str]] | None = None,
        motd: str | None = None,
        restored: Restored | None = None,
        default_room: str = p.DEFAULT_ROOM,
    ) -> None:
        self.default_room = default_room
        self.operators = dict(operators or {})  # name_key(NAME) -> (NAME, hash): --ops-file
        self.motd = motd  # --motd-file, read at start
        self.mutes: dict[str, float] = {}  # user id -> muted until (inf: until unmuted)
        # The mutes the state file and the ledger keep, by key (name_key of the name it was
        # made against), and the names and addresses they hold (-> until; the latest).
        self.kept_mutes: dict[str, Mute] = {}
        self.muted_names: dict[str, float] = {}
        self.muted_addresses: dict[str, float] = {}
        self.bans: dict[str, Ban] = {}  # str(target) -> its ban; at most rules.max_bans
        self.topics: dict[str, p.Topic] = {}  # room key -> its topic (none: not set)
        # A hash to check unknown names against, so a wrong name costs what a wrong
        # password does (no timing tells which names are operators): the first operator's
        # cost, a random digest (made without hashing).
        first = next(iter(self.operators.values()), None)
        self._decoy = decoy_for(first[1] if first else None)
        # /oper checks handed to the adapter and not answered yet: conn -> the address.
        self.checking: dict[ConnId, str] = {}
        self._requests = 0  # operators' commands sent to other nodes: the last one's number
        if restored is not None:
            self._restore(restored)

    def _restore(self, restored: Restored) -> None:
        """Take the bans, mutes and topic a state file kept (--state)."""
        for key, record in restored.bans.items():
            with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):  # skipped
                self.bans[key] = Ban.from_record(record)
        for key, record in restored.mutes.items():
            with contextlib.suppress(ValueError):
                self.kept_mutes[key] = Mute.from_record(key, record)
        self._index_mutes()
        kept = {self.default_room: restored.topic, **restored.topics}
        for room, record in kept.items():
            if record is not None and isinstance(record.get("text"), str) and record["text"]:
                by = record.get("by")
                topic = p.Topic(text=record["text"], by=by if isinstance(by, str) else None)
                self.topics[room] = p.replace(topic, room=room)

    # --- reading -------------------------------------------------------------------------

    def ban_of(self, address: str, now: float) -> Ban | None:
        """The ban that refuses ``address`` now, if one does (expired ones are forgotten)."""
        if not self.bans:
            return None
        self.forget_expired(now)
        where = network_of(address)
        return next((ban for ban in self.bans.values() if ban.matches(where)), None)

    def ban_of_name(self, name: str, now: float) -> Ban | None:
        """The ban made against a user called ``name``, or a name like it (``/ban NAME``),
        that holds now, if one does: the registered name's /login is refused meanwhile."""
        if not self.bans:
            return None
        self.forget_expired(now)
        key = p.name_skeleton(name)
        named = (ban for ban in self.bans.values() if ban.name)
        return next((ban for ban in named if p.name_skeleton(ban.name or "") == key), None)

    def refusal(self, address: str, now: float) -> str | None:
        """What a newcomer from a banned ``address`` is told (None: it is not banned)."""
        ban = self.ban_of(address, now)
        if ban is None:
            return None
        why = f": {ban.reason}" if ban.reason else ""
        left = "with no end" if ban.until == math.inf else f"for {span(ban.until - now)} more"
        return f"your address is banned from this server {left}{why}"

    def stored_hash(self, name: str) -> str:
        """The hash an /oper for ``name`` is checked against: its operator's, or the decoy
        (which no password matches) for a name that is no operator's."""
        entry = self.operators.get(p.name_key(name))
        return entry[1] if entry is not None else self._decoy

    def muted_until(
        self,
        user_id: str,
        name: str,
        now: float,
        address: str | None = None,
        room: str | None = None,
    ) -> float | None:
        """Until when the user ``user_id`` called ``name``, from ``address``, is muted in
        ``room`` (None: it may speak); a mute that ran out is forgotten."""
        key = p.name_key(name)
        found = [
            until
            for where in (None, room) if where is None or where != self.default_room
            for until in (
                self.mutes.get(in_room(user_id, where)),
                self.muted_names.get(in_room(key, where)) if self.muted_names else None,
                self.muted_addresses.get(in_room(address, where))
                if address and self.muted_addresses else None,
            )
            if until is not None
        ]  # fmt: skip
        if not found:
            return None
        if now < max(found):
            return max(found)
        self.mutes.pop(in_room(user_id, room), None)  # every mute that holds it ran out
        self.mutes.pop(user_id, None)
        self._forget_mutes(lambda mute: mute.until <= now)
        return None

    # --- changing it ---------------------------------------------------------------------

    def forget_expired(self, now: float) -> None:
        for key in [key for key, ban in self.bans.items() if ban.until <= now]:
            del self.bans[key]

    def mute(self, user_id: str, key: str, mute: Mute) -> None:
        """Mute the connection ``user_id`` (in ``mute.room``), and keep ``mute`` under
        ``key``."""
        self.mutes[in_room(user_id, mute.room)] = mute.until
        self.keep_mute(key, mute)

    def keep_mute(self, key: str, mute: Mute | None) -> None:
        """Keep ``mute`` under ``key`` (a state file's or another node's; None: lift it)."""
        if mute is None:
            self.kept_mutes.pop(key, None)
        else:
            self.kept_mutes[key] = mute
        self._index_mutes()

    def unmute(self, user_id: str, name: str, address: str | None) -> tuple[bool, list[str]]:
        """Lift every mute that holds the user ``user_id`` called ``name``, from ``address``:
        whether there was one, and the keys of the kept mutes lifted."""
        by_id = self.mutes.pop(user_id, None)
        for held in [k for k in self.mutes if k.startswith(user_id + "\x1f")]:
            by_id = self.mutes.pop(held)
        key = p.name_key(name)
        lifted = self._forget_mutes(
            lambda mute: p.name_key(mute.name) == key or (address and mute.address == address)
        )
        return by_id is not None or bool(lifted), lifted

    def _forget_mutes(self, which: Callable[[Mute], object]) -> list[str]:
        """Forget the kept mutes ``which`` picks; their keys."""
        keys = [key for key, mute in self.kept_mutes.items() if which(mute)]
        for key in keys:
            del self.kept_mutes[key]
        if keys:
            self._index_mutes()
        return keys

    def _index_mutes(self) -> None:
        names: dict[str, float] = {}
        addresses: dict[str, float] = {}
        for mute in self.kept_mutes.values():
            name = in_room(p.name_key(mute.name), mute.room)
            names[name] = max(mute.until, names.get(name, 0.0))
            if mute.address is not None:
                address = in_room(mute.address, mute.room)
                addresses[address] = max(mute.until, addresses.get(address, 0.0))
        self.muted_names, self.muted_addresses = names, addresses

    def add_ban(self, ban: Ban) -> None:
        self.bans[str(ban.target)] = ban

    def lift_ban(self, key: str) -> None:
        self.bans.pop(key, None)

    @property
    def topic(self) -> p.Topic | None:
        """The default room's topic."""
        return self.topics.get(self.default_room)

    def topic_of(self, room: str) -> p.Topic | None:
        return self.topics.get(room)

    def set_topic(self, topic: p.Topic | None, room: str | None = None) -> None:
        """``room``'s topic (None: the default room's) is ``topic`` (None: none)."""
        room = room or self.default_room
        if topic is None:
            self.topics.pop(room, None)
        else:
            self.topics[room] = p.replace(topic, room=room)

    def new_request(self) -> int:
        """The number of an operator's command about to be sent to another node."""
        self._requests += 1
        return self._requests

    def start_check(self, conn: ConnId, address: str) -> None:
        """An /oper from ``conn`` (from ``address``) was handed to the adapter to check."""
        self.checking[conn] = address

    def check_done(self, conn: ConnId) -> str | None:
        """The check of ``conn``'s /oper came back: the address it came from (None: there
        was none under way)."""
        return self.checking.pop(conn, None)

    def take_shared(self, bans: dict[str, Ban], mutes: dict[str, Mute]) -> None:
        """The bans and kept mutes every node shares replace this node's."""
        self.bans = bans
        self.kept_mutes = mutes
        self._index_mutes()
