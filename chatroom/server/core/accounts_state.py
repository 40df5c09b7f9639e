"""Registered names, and the one object that changes them. No I/O.

A registered name (an *account*) is a name and the scrypt hash of its password
(:mod:`chatroom.server.core.passwords`, the ops file's form). It is held by its
:func:`~chatroom.protocol.name_skeleton`, as names are online: two names that look alike
are one account. :class:`Accounts` keeps them, the password work under way for them
(handed to the adapter's pool), and the limits on guessing and registering: every
/login from an address takes a token (given back when it was right), every wrong one for
a name takes one of that name's, every /register from an address one of its own. The
rules in :mod:`chatroom.server.core.rules.accounts` decide when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chatroom import protocol as p
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import ConnId
from chatroom.server.core.admission import ConnectThrottle
from chatroom.server.core.passwords import parse_hash


def account_key(name: str) -> str:
    """What an account is kept under: its name's skeleton (look-alikes are one account)."""
    return p.name_skeleton(name)


@dataclass(frozen=True, slots=True)
class Account:
    """The name ``name`` is registered, with the password ``stored`` hashes, since
    ``created`` (two accounts are the same one only with the same hash: a name dropped and
    registered again is another account)."""

    name: str
    stored: str
    created: float

    @property
    def key(self) -> str:
        return account_key(self.name)

    def record(self) -> dict[str, Any]:
        """What the state file and the ledger keep of it."""
        return {"name": self.name, "hash": self.stored, "created": self.created}

    @classmethod
    def from_record(cls, record: Any) -> Account:
        """A kept record read back and checked (ValueError saying what is wrong)."""
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        name, stored, created = record.get("name"), record.get("hash"), record.get("created")
        if not isinstance(name, str) or p.name_problem(name) is not None:
            raise ValueError(f"its name {name!r:.40} is not a name")
        if not isinstance(stored, str):
            raise ValueError("its hash is not text")
        parse_hash(stored)  # ValueError: why a check could not run on it
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise ValueError("its created is not a time")
        if not math.isfinite(created):
            raise ValueError("its created is not a time")
        return cls(p.normal_name(name), stored, float(created))


class Pending:
    """Password work handed to the adapter for a connection: a /login of ``account`` or
    a /register of ``name``, from ``address``."""

    __slots__ = ("account", "address", "name")

    def __init__(self, name: str, address: str, account: Account | None = None) -> None:
        self.name = name
        self.address = address
        self.account = account  # a /login's: the account whose hash is being checked


class Accounts:
    """The registered names, the password work under way for them, and the limits on
    guessing and registering. Its fields are read by the rules; only its methods change
    them."""

    def __init__(self, rules: RoomRules, restored: dict[str, dict[str, Any]] | None = None):
        self._by_key: dict[str, Account] = {}
        self.version = 0  # changes whenever a name is registered or dropped (who shows it)
        # Work handed to the adapter and not answered yet: conn -> what it is for.
        self.checking: dict[ConnId, Pending] = {}
        table = rules.connect_table
        self._attempts = ConnectThrottle(rules.login_fail_rate, rules.login_fail_burst, table)
        self._wrong = ConnectThrottle(
            rules.login_name_fail_rate, rules.login_name_fail_burst, table
        )
        self._registrations = ConnectThrottle(rules.register_rate, rules.register_burst, table)
        if restored:
            self.take_shared(restored)

    # --- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, name: str) -> Account | None:
        """The account of ``name`` or of a name that looks like it."""
        return self._by_key.get(account_key(name)) if self._by_key else None

    def is_registered(self, name: str) -> bool:
        return self.get(name) is not None

    def registering(self) -> int:
        """/register hashes under way (each may become an account)."""
        return sum(1 for pending in self.checking.values() if pending.account is None)

    # --- changing them -------------------------------------------------------------------

    def keep(self, account: Account) -> None:
        self._by_key[account.key] = account
        self.version += 1

    def drop(self, key: str) -> Account | None:
        dropped = self._by_key.pop(key, None)
        if dropped is not None:
            self.version += 1
        return dropped

    def take_shared(self, records: dict[str, Any]) -> int:
        """The accounts a state file or the ledger keeps (``key -> record``) replace
        these; a record that cannot be read is skipped. Of two that look alike (kept by
        an older skeleton), the older stays. Returns how many were skipped."""
        found: dict[str, Account] = {}
        skipped = 0
        for record in records.values():
            try:
                account = Account.from_record(record)
            except ValueError:
                skipped += 1
                continue
            kept = found.get(account.key)
            if kept is None or account.created < kept.created:
                found[account.key] = account
        self._by_key = found
        self.version += 1
        return skipped

    def start(self, conn: ConnId, pending: Pending) -> None:
        """Password work for ``conn`` was handed to the adapter."""
        self.checking[conn] = pending

    def done(self, conn: ConnId) -> Pending | None:
        """The work for ``conn`` came back: what it was for (None: none was under way)."""
        return self.checking.pop(conn, None)

    # --- the limits: each returns 0 if it may go on, else the whole seconds to wait ---------

    def login_wait(self, address: str, now: float) -> int:
        """A /login from ``address`` (takes one of its tokens if it may be checked)."""
        return math.ceil(self._attempts.wait(address, now)) if self._attempts.rate else 0

    def login_was_right(self, address: str, now: float) -> None:
        """The /login that took ``address``'s token was right, or not checked: given back."""
        self._attempts.give_back(address, now)

    def wrong_wait(self, key: str, now: float) -> int:
        """Whether the account ``key`` takes a /login now (its wrong ones left a token)."""
        return math.ceil(self._wrong.waiting(key, now)) if self._wrong.rate else 0

    def wrong_password(self, key: str, now: float) -> None:
        """A wrong /login for the account ``key``: it takes one of the account's tokens."""
        if self._wrong.rate:
            self._wrong.wait(key, now)

    def register_wait(self, address: str, now: float) -> int:
        """A /register from ``address`` (takes one of its tokens if it may go on)."""
        if not self._registrations.rate:
            return 0
        return math.ceil(self._registrations.wait(address, now))

    def register_given_back(self, address: str, now: float) -> None:
        """The /register that took ``address``'s token registered nothing."""
        self._registrations.give_back(address, now)
