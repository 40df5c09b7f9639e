"""Why the shared ledger refused to append an event (stdlib only: the room imports it)."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    TAKEN = "taken"  # the name (or the id) is held by another user of the shared room
    GONE = "gone"  # the user is no longer in the shared room
    UNAVAILABLE = "unavailable"  # the ledger cannot be reached
