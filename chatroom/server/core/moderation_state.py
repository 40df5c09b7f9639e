"""What the room's moderation knows, and the one object that changes it. No I/O.

The operators (name and scrypt hash, from ``--ops-file``), the message of the day, who is
muted until when (by user id, and by name for mutes a state file or another node kept),
the bans and the topic live in :class:`Moderation`, and only its methods change them;
the moderation commands' rules (:mod:`chatroom.server.core.rules.moderation`) decide when.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import Restored
from chatroom.server.core.passwords import check_password, hash_password


def span(seconds: float) -> str:
    """``seconds`` as a person reads it: 45s, 10m, 2h5m, 1d."""
    seconds = math.ceil(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_of(address: str) -> Network | str:
    """An address as the per-address limits count it (admission.py: an IPv4 address, an
    IPv6 /64...) as a network, or itself if it is not an IP."""
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address


def parse_target(query: str) -> Network | None:
    """A /ban's target as an address or a CIDR network (None: it is a name)."""
    try:
        return ipaddress.ip_network(query, strict=False)
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


class Moderation:
    """What the room's moderation knows: the operators' names and hashes, who is muted
    until when, the bans, the topic and the message of the day. Its fields are read by
    the rules; only its methods change them."""

    def __init__(
        self,
        operators: dict[str, tuple[str, str]] | None = None,
        motd: str | None = None,
        restored: Restored | None = None,
    ) -> None:
        self.operators = dict(operators or {})  # name_key(NAME) -> (NAME, hash): --ops-file
        self.motd = motd  # --motd-file, read at start
        self.mutes: dict[str, float] = {}  # user id -> muted until (inf: until unmuted)
        # Mutes kept by name (a state file's, another node's): name_key(name) -> until. A
        # user id does not outlive its connection, so such a mute holds whoever uses the name.
        self.muted_names: dict[str, float] = {}
        self.bans: dict[str, Ban] = {}  # str(target) -> its ban; at most rules.max_bans
        self.topic: p.Topic | None = None
        # A hash to check unknown names against, so a wrong name costs what a wrong
        # password does (no timing tells which names are operators); made when first needed.
        self._decoy: str | None = None
        self._requests = 0  # operators' commands sent to other nodes: the last one's number
        if restored is not None:
            self._restore(restored)

    def _restore(self, restored: Restored) -> None:
        """Take the bans, mutes and topic a state file kept (--state)."""
        for key, record in restored.bans.items():
            self.bans[key] = Ban.from_record(record)
        for key, record in restored.mutes.items():
            until = record.get("until")
            self.muted_names[key] = math.inf if until is None else float(until)
        if restored.topic is not None and restored.topic.get("text"):
            self.topic = p.Topic(text=str(restored.topic["text"]), by=restored.topic.get("by"))

    # --- reading -------------------------------------------------------------------------

    def ban_of(self, address: str, now: float) -> Ban | None:
        """The ban that refuses ``address`` now, if one does (expired ones are forgotten)."""
        if not self.bans:
            return None
        self.forget_expired(now)
        where = network_of(address)
        return next((ban for ban in self.bans.values() if ban.matches(where)), None)

    def refusal(self, address: str, now: float) -> str | None:
        """What a newcomer from a banned ``address`` is told (None: it is not banned)."""
        ban = self.ban_of(address, now)
        if ban is None:
            return None
        why = f": {ban.reason}" if ban.reason else ""
        left = "with no end" if ban.until == math.inf else f"for {span(ban.until - now)} more"
        return f"your address is banned from this server {left}{why}"

    def verify(self, name: str, password: str) -> bool:
        entry = self.operators.get(p.name_key(name))
        if entry is None and self._decoy is None:
            self._decoy = hash_password("", salt=bytes(16))
        ok = check_password(password, entry[1] if entry else self._decoy)  # type: ignore[arg-type]
        return ok and entry is not None

    def muted_until(self, user_id: str, name: str, now: float) -> float | None:
        """Until when the user ``user_id`` called ``name`` is muted (None: it may speak);
        a mute that ran out is forgotten."""
        until = self.mutes.get(user_id)
        key = p.name_key(name) if until is None and self.muted_names else None
        if key is not None:
            until = self.muted_names.get(key)
        if until is not None and now >= until:
            if key is None:
                del self.mutes[user_id]
            else:
                del self.muted_names[key]
            return None
        return until

    # --- changing it ---------------------------------------------------------------------

    def forget_expired(self, now: float) -> None:
        for key in [key for key, ban in self.bans.items() if ban.until <= now]:
            del self.bans[key]

    def mute(self, user_id: str, until: float) -> None:
        self.mutes[user_id] = until

    def unmute(self, user_id: str, name: str) -> bool:
        """Lift the mutes of ``user_id`` and of its ``name``; whether there was one."""
        by_id = self.mutes.pop(user_id, None)
        by_name = self.muted_names.pop(p.name_key(name), None)
        return by_id is not None or by_name is not None

    def mute_name(self, key: str, until: float | None) -> None:
        """Mute whoever holds the name ``key`` until ``until`` (None: lift it)."""
        if until is None:
            self.muted_names.pop(key, None)
        else:
            self.muted_names[key] = until

    def add_ban(self, ban: Ban) -> None:
        self.bans[str(ban.target)] = ban

    def lift_ban(self, key: str) -> None:
        self.bans.pop(key, None)

    def set_topic(self, topic: p.Topic | None) -> None:
        self.topic = topic

    def new_request(self) -> int:
        """The number of an operator's command about to be sent to another node."""
        self._requests += 1
        return self._requests

    def take_shared(self, bans: dict[str, Ban], muted_names: dict[str, float]) -> None:
        """The bans and mutes by name every node shares replace this node's."""
        self.bans = bans
        self.muted_names = muted_names
