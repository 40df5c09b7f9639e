"""What every rule is handed: the room's state objects, its rules and its sequencer.

One :class:`Context` is made with the room and lives as long as it; the rules read its
fields and change the state only through the state objects' own methods.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatroom.server.config import RoomRules
from chatroom.server.core.accounts_state import Accounts
from chatroom.server.core.actions import ConnId, RoomAction
from chatroom.server.core.admission import Admission
from chatroom.server.core.moderation_state import Moderation
from chatroom.server.core.requests import Requests
from chatroom.server.core.sequencer import Line, Sequencer
from chatroom.server.core.state import Member, RoomState


@dataclass(frozen=True, slots=True)
class Context:
    rules: RoomRules
    node: str  # this node's name ("local" when one server holds the room)
    state: RoomState
    moderation: Moderation
    admission: Admission
    accounts: Accounts  # the registered names (rules/accounts.py)
    sequencer: Sequencer
    requests: Requests  # request ids remembered, and requests waiting for their seq
    random: random.Random  # guest names and opaque ids (--hide-addresses)
    # Report what must outlive the process as Persist actions: --state, or a shared room
    # (whose ledger keeps bans, mutes and the topic for every node).
    persisting: bool
    # The room's own handling of a line: for lines that waited for their sender's join or
    # rename, handled once it is sequenced (they go through the room's one dispatcher).
    rerun: Callable[[ConnId, Line, float], list[RoomAction]]
    # The room's dispatcher for one command of a member (a request's line, rules/programs.py).
    run: Callable[[Member, Any, float], list[RoomAction]]
    # A request line (JSON mode, ``{"id": ID, "text": LINE}``): rules/programs.py's rule.
    request: Callable[[Member, str, float], list[RoomAction]]
