"""Tab completion of names (and slash commands) in the input line, with cycling."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatroom.protocol import SLASH_COMMANDS, name_key

# /format is left out: switching the client's own connection to text would break it.
# When a prefix fits several commands, the longer-established one comes first: "/m" offers
# /msg before /me, so a Tab never turns a private message into a public action unasked.
COMMAND_PREFERENCE = ("msg", "nick", "names", "who", "help", "quit", "me")
COMPLETABLE_COMMANDS = tuple(
    f"/{word}"
    for word in sorted(
        SLASH_COMMANDS - {"format"},
        key=lambda w: (COMMAND_PREFERENCE.index(w) if w in COMMAND_PREFERENCE else 99, w),
    )
)


# Commands whose first argument is a user's name: Tab on an empty word there offers names.
NAME_COMMANDS = frozenset(
    {"msg", "query", "kick", "mute", "unmute", "ban", "unban", "ignore", "unignore", "nick"}
)


def _takes_a_name(head: str) -> bool:
    """Whether the text before the cursor is a command followed by the name it takes."""
    words = head.split()
    return (
        len(words) == 1 and head.endswith(" ") and words[0][:1] == "/"
        and words[0][1:].lower() in NAME_COMMANDS
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Completion:
    value: str
    cursor: int
    candidates: tuple[str, ...] = ()  # every match, as offered (for showing them)
    index: int = 0  # which of them ``value`` holds

    def hint(self) -> str:
        """The matches for the user to see, the chosen one in brackets: "Tab: [/msg] /me"."""
        if len(self.candidates) < 2:
            return ""
        words = [c.rstrip(": ").rstrip() for c in self.candidates]
        return "Tab: " + " ".join(f"[{w}]" if i == self.index else w for i, w in enumerate(words))


@dataclass(frozen=True, slots=True)
class _Cycle:
    result: Completion  # what the last Tab produced; any other state starts over
    candidates: tuple[str, ...]
    index: int
    start: int
    tail: str  # text that was right of the cursor


class TabCompleter:
    """Completes the word left of the cursor; pressing Tab again offers the next match.

    A name typed first on the line gets ": " after it, the IRC way of addressing someone;
    anywhere else (``/msg NAME``) it gets a space.
    """

    def __init__(self) -> None:
        self._cycle: _Cycle | None = None

    def continues(self, value: str) -> bool:
        """Whether ``value`` is still what the last Tab produced."""
        return self._cycle is not None and self._cycle.result.value == value

    def complete(self, value: str, cursor: int, names: Iterable[str]) -> Completion | None:
        cycle = self._cycle
        if cycle is not None and (cycle.result.value, cycle.result.cursor) == (value, cursor):
            index = (cycle.index + 1) % len(cycle.candidates)
            return self._apply(
                value[: cycle.start], cycle.candidates, index, cycle.start, cycle.tail
            )

        start = cursor
        while start > 0 and not value[start - 1].isspace():
            start -= 1
        prefix = value[start:cursor]
        if not prefix and not _takes_a_name(value[:start]):
            self._cycle = None
            return None
        if start == 0 and prefix.startswith("/"):
            candidates = tuple(
                c + " " for c in COMPLETABLE_COMMANDS if c.startswith(prefix.lower())
            )
        else:
            key = name_key(prefix)
            suffix = ": " if start == 0 else " "
            matches = sorted((n for n in names if name_key(n).startswith(key)), key=name_key)
            candidates = tuple(n + suffix for n in matches)
        if not candidates:
            self._cycle = None
            return None
        return self._apply(value[:start], candidates, 0, start, value[cursor:])

    def _apply(
        self, head: str, candidates: tuple[str, ...], index: int, start: int, tail: str
    ) -> Completion:
        chosen = candidates[index]
        result = Completion(head + chosen + tail, start + len(chosen), candidates, index)
        self._cycle = _Cycle(result, candidates, index, start, tail)
        return result
