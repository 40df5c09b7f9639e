"""A desktop notification for a mention, where the terminal supports one; the bell
otherwise. No Textual.

Terminals take a notification as an escape sequence: OSC 777 (``ESC ] 777 ; notify ;
TITLE ; BODY BEL``: VTE terminals such as GNOME Terminal, foot, WezTerm, urxvt with its
extension) or OSC 9 (``ESC ] 9 ; BODY BEL``: iTerm2, Windows Terminal, kitty, WezTerm).
None of them can be asked whether it supports one, so ``--notify auto`` guesses from the
environment the terminal sets (:func:`choose`) and falls back to the bell. Inside tmux the
sequence is wrapped for tmux to pass on (its ``allow-passthrough`` option must be on).

The title and body are remote text: every control character (ESC, BEL, ...) and the ``;``
that separates OSC 777's fields is taken out, and both are cut short, so a message cannot
end the sequence early and write to the terminal itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from chatroom.protocol.text_rules import strip_controls


class Method(StrEnum):
    AUTO = "auto"
    OSC777 = "osc777"
    OSC9 = "osc9"
    BELL = "bell"
    OFF = "off"


FIELD_MAX = 120  # characters of the title or the body


def choose(method: Method, env: Mapping[str, str]) -> Method:
    """The method to use: ``method`` itself unless it is ``auto``, which guesses."""
    if method is not Method.AUTO:
        return method
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    if env.get("VTE_VERSION") or term.startswith(("foot", "rxvt-unicode")):
        return Method.OSC777
    if program == "WezTerm":
        return Method.OSC777
    if program == "iTerm.app" or env.get("WT_SESSION") or term == "xterm-kitty":
        return Method.OSC9
    return Method.BELL


def clean(text: str) -> str:
    text = strip_controls(text).replace(";", ",").replace("\x07", "")
    return " ".join(text.split())[:FIELD_MAX]


def sequence(method: Method, title: str, body: str, *, tmux: bool = False) -> str:
    """What to write to the terminal for a notification (the bell: ``BEL``; off: "")."""
    match method:
        case Method.OSC777:
            osc = f"\x1b]777;notify;{clean(title)};{clean(body)}\x07"
        case Method.OSC9:
            osc = f"\x1b]9;{clean(title)}: {clean(body)}\x07"
        case Method.BELL:
            return "\x07"
        case _:
            return ""
    if tmux:  # tmux passes on what is wrapped so, each ESC doubled
        osc = "\x1bPtmux;" + osc.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return osc + "\x07"  # the bell too: a terminal that ignores the OSC still rings
