"""Lines the user sent, walked with Up and Down like a shell's history."""

from __future__ import annotations

from collections import deque


class InputHistory:
    """Up goes back, Down comes forward; past the newest entry the unsent draft returns."""

    def __init__(self, limit: int = 500) -> None:
        self._entries: deque[str] = deque(maxlen=limit)
        self._position: int | None = None  # index into _entries while browsing
        self._draft = ""

    def add(self, line: str) -> None:
        if line and (not self._entries or self._entries[-1] != line):
            self._entries.append(line)
        self._position = None
        self._draft = ""

    def previous(self, current: str) -> str | None:
        """The entry before the one shown, or None at the oldest (keep what is shown)."""
        if not self._entries:
            return None
        if self._position is None:
            self._draft = current
            self._position = len(self._entries) - 1
        elif self._position > 0:
            self._position -= 1
        else:
            return None
        return self._entries[self._position]

    def next(self) -> str | None:
        """The entry after the one shown, the draft after the newest, None if not browsing."""
        if self._position is None:
            return None
        if self._position < len(self._entries) - 1:
            self._position += 1
            return self._entries[self._position]
        self._position = None
        return self._draft

    def __len__(self) -> int:
        return len(self._entries)
