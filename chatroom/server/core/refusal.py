"""Why the shared ledger (Redis, in cluster mode) did not append an event.

Standard library only: the room imports this, and it must import without redis installed.
docs/SCALING.md lists the same reasons for people.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """The ledger's answer to an append that it did not make.

    - ``TAKEN``: a join or rename claims a name (casefolded) that another user of the shared
      room holds (for a join, whose name is the address: another node has a user with that
      address); nothing was appended.
    - ``DUPLICATE``: a join's user id is held by a user of another node (two nodes saw one
      address and port, as behind a load balancer); nothing was appended.
    - ``GONE``: the user is no longer in the shared room (it left already, or its node was
      reaped as dead), or the id is another node's user's; nothing was appended.
    - ``ROOM_LIMIT``: a join into a room not in use while the server has ``--max-rooms``
      rooms in use (counted in the ledger, on every node); nothing was appended.
    - ``UNAVAILABLE``: the ledger cannot be reached; the event may or may not have been
      appended (an answer lost on the way is indistinguishable from a request lost).
    """

    TAKEN = "taken"
    DUPLICATE = "duplicate"
    GONE = "gone"
    ROOM_LIMIT = "room_limit"
    UNAVAILABLE = "unavailable"
