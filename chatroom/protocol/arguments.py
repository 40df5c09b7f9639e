"""The arguments of the commands whose syntax is more than words: ``/ban`` (a duration or
not, then a reason) and ``/history`` (a count, or ``since SEQ [EPOCH]``). Read for
:func:`chatroom.protocol.commands.parse`, which makes the commands from them."""

from __future__ import annotations

from chatroom.protocol.durations import DURATION_USAGE, parse_duration
from chatroom.protocol.text_rules import strip_controls


def ban_arguments(arg: str) -> tuple[str, float | None, str | None] | str:
    """``TARGET [DURATION] [REASON]`` as (target, seconds, reason), or the usage error: a
    second word starting with a digit (or a sign and a digit: ``-5m`` is no duration) is
    a duration (a bad one is an error), any other is the reason's first word."""
    target, _, rest = arg.partition(" ")
    if not target:
        return "usage: /ban NAME|ADDRESS|CIDR [DURATION] [REASON]"
    word, _, after = rest.strip().partition(" ")
    seconds = None
    if word.lstrip("+-")[:1].isdigit():
        seconds = parse_duration(word)
        if seconds is None:
            return DURATION_USAGE
        rest = after
    return target, seconds, strip_controls(rest).strip()[:200] or None


def history_arguments(arg: str) -> tuple[str, int | None] | tuple[str, int, str | None] | None:
    """``[N]`` as ("last", N or None), ``since SEQ [EPOCH]`` as ("since", SEQ, EPOCH), or
    None if it is neither."""
    words = arg.split()
    if not words:
        return "last", None
    if len(words) == 1 and words[0].isascii() and words[0].isdigit() and len(words[0]) <= 18:
        return "last", int(words[0])
    if words[0].lower() == "since" and 2 <= len(words) <= 3:
        seq, epoch = words[1], (words[2] if len(words) == 3 else None)
        good_epoch = epoch is None or (len(epoch) <= 64 and epoch.isprintable())
        if seq.isascii() and seq.isdigit() and len(seq) <= 18 and good_epoch:
            return "since", int(seq), epoch
    return None
