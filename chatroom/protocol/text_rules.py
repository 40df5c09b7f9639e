"""The text rules both sides apply: what a name may be, when two names are the same, and
what is removed from chat text before anyone sees it. No I/O.

Names follow the PRECIS nickname profile (precis-i18n) and are compared by their UTS #39
skeleton, so a look-alike is the same name; chat text loses escape sequences, control and
invisible formatting characters and is NFC-normalised. docs/PROTOCOL.md states both rules.
:mod:`chatroom.protocol` re-exports these names: both sides import them from there.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import unicodedata
from pathlib import Path

import precis_i18n

NAME_MAX_CHARS = 32

_NICKNAME = precis_i18n.get_profile("NicknameCasePreserved")
# Characters that draw nothing but are letters or symbols (so neither whitespace nor
# invisible): a name made of them looks blank, and one with them looks like several words.
# The Hangul fillers are also refused by PRECIS; listed so the reason given is this one.
_BLANK_LOOKING = frozenset("\u2800\u3164\uffa0\u115f\u1160")
MAX_COMBINING_RUN = 3  # combining marks in a row on one letter (more is "zalgo")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be chosen, or None if it can.

    A name is 1-32 characters with no whitespace, no control, invisible or direction-changing
    characters, no blank-looking ones (U+2800, U+3164, U+FFA0...), no ``|`` (the separator
    of ``rename|NAME``), nothing that PRECIS's nickname profile (RFC 8266) disallows, no
    leading combining mark and no run of more than 3 of them, and nothing that looks like
    ``:`` (by the Unicode confusables skeleton), which is kept for the ``ip:port``
    names users start with so nobody can pose as an address. Names are refused, never
    cleaned: what a user asked for is what they get (in its normal form, see
    :func:`normal_name`), or an error.
    """
    if not name:
        return "a name cannot be empty"
    if len(name) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    for char in name:
        if char.isspace():
            return "a name cannot contain spaces"
        if not char.isprintable():
            return "a name cannot contain control, invisible or direction-changing characters"
        if char in _BLANK_LOOKING:
            return "a name cannot contain characters that look blank"
        if char in "|:":
            return f"a name cannot contain {char!r}"
    try:
        normal = _NICKNAME.enforce(name)
    except UnicodeError:
        return "a name cannot contain invisible, unassigned or other disallowed characters"
    if len(normal) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    if _is_mark(normal[0]):
        return "a name cannot start with a combining mark"
    run = 0
    for char in normal:
        run = run + 1 if _is_mark(char) else 0
        if run > MAX_COMBINING_RUN:
            return f"a name cannot stack more than {MAX_COMBINING_RUN} combining marks"
    if ":" in name_skeleton(name):  # ꞉ ∶ ։ ： look like the colon of an ip:port name
        return "a name cannot contain a character that looks like ':'"
    return None


def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def normal_name(name: str) -> str:
    """The form a valid name is held and shown in: PRECIS's nickname profile, case kept
    (NFKC: ``José`` typed decomposed is the precomposed one, fullwidth ``Ａｎｎ`` is ``Ann``)."""
    if name.isascii():
        return name
    return _NICKNAME.enforce(name)


def name_key(name: str) -> str:
    """Names compared without case or Unicode form: for sorting, searching, mentions."""
    if name.isascii():
        return name.casefold()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def name_skeleton(name: str) -> str:
    """What ``name`` looks like: the key names are held by, so two names that look alike
    cannot both be online (``аnn`` with a Cyrillic а is ``ann``; ``rn`` is ``m``).

    The UTS #39 skeleton (NFD, each character to its prototype in Unicode's confusables
    data, NFD again) of the name's :func:`name_key`. The data is read once, when first
    needed (see :func:`_prototypes`).
    """
    table = _prototypes()
    key = name_key(name)
    if key.isascii():
        return key.translate(table)
    decomposed = unicodedata.normalize("NFD", key)
    return unicodedata.normalize("NFD", decomposed.translate(table))


def load_name_data() -> None:
    """Read the confusables data now rather than with the first name: a server does it as it
    starts, when a file can still be opened (not at its file-descriptor limit) and before
    its memory is measured against its connections."""
    _prototypes()


@functools.cache
def _prototypes() -> dict[int, str]:
    """Unicode's confusables mapping (UTS #39 ``confusables.txt``) as a translate table.

    The data is the one ``confusable-homoglyphs`` ships (found, not imported), which lists
    each line of Unicode's file both ways: a character with a single look-alike is the
    source of that line, mapped to its prototype; a character several map to is a prototype.
    Where two characters list only each other, the data does not say which is the
    prototype: the later code point is mapped to the earlier, which makes the same pairs
    equal (what a skeleton is for).
    """
    spec = importlib.util.find_spec("confusable_homoglyphs")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("confusable-homoglyphs (Unicode's confusables data) is missing")
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = json.loads((folder / "confusables.json").read_text(encoding="utf-8"))
    table: dict[int, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or len(entries) != 1:
            continue  # a prototype: several characters look like it
        target = entries[0]["c"]
        back = data.get(target, ())
        if len(back) == 1 and back[0]["c"] == char and char < target:
            continue  # the earlier of a pair that only look like each other
        table[ord(char)] = target
    return table


# Invisible characters that can forge a line or hide or reorder text. Kept: ZWJ and ZWNJ
# (emoji sequences, Persian and Indic spelling), variation selectors (emoji presentation,
# ideographic variants). Each is listed with its reason in docs/PROTOCOL.md.
_INVISIBLE = (
    "\u2028\u2029"  # line and paragraph separators: str.splitlines() breaks lines there
    "\u00ad"  # soft hyphen: invisible except at a line break
    "\u180e"  # Mongolian vowel separator: invisible since Unicode 6.3
    "\u200b"  # zero-width space
    "\u200e\u200f\u061c"  # LRM, RLM, ALM: invisible bidi marks that reorder what is near
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides, isolates: reorder the line
    "\u2060-\u2064"  # word joiner, invisible math operators
    "\u206a-\u206f"  # deprecated format characters
    "\ufeff"  # zero-width no-break space (byte order mark)
    "\ufff9-\ufffb"  # interlinear annotation: hides the annotation text
    "\U000e0000-\U000e007f"  # tags: invisible ASCII (kept only in a flag, see below)
)
# CSI and other escape sequences (7-bit and 8-bit introducers), OSC/DCS strings up to their
# terminator, then any remaining C0 (but tab), DEL and C1 character and the invisible ones.
_ESCAPES_RE = (
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x9d\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f" + _INVISIBLE + "]"
)
_ESCAPES = re.compile(_ESCAPES_RE)
# A subdivision flag (England, Scotland, Wales...): black flag, a CLDR subdivision id of 3-7
# tag letters or digits, cancel tag: the one place tag characters are kept (group 1). Only
# used when a black flag is present: keeping a match costs twice the time of removing.
_BLACK_FLAG = "\U0001f3f4"
_ESCAPES_BUT_FLAGS = re.compile(
    "("
    + _BLACK_FLAG
    + "[\U000e0030-\U000e0039\U000e0061-\U000e007a]{3,7}\U000e007f)|"
    + _ESCAPES_RE
)


def strip_controls(text: str) -> str:
    """``text`` without escape sequences, control characters (tab is kept) or the invisible
    characters that can forge a line or hide text, in Unicode normal form NFC.

    Applied to everything a user writes that others will see, so nobody can move another
    user's cursor, change colours, set the window title, ring bells in a loop, start what a
    client shows as a new line (U+2028), or hide or reorder text. docs/PROTOCOL.md lists
    what is removed and what is kept. Every removed character is unprintable, so printable
    ASCII, the common case, is returned as it is at the cost of one check.
    """
    if text.isprintable():  # fast path: nothing to remove
        if text.isascii() or unicodedata.is_normalized("NFC", text):
            return text
        return unicodedata.normalize("NFC", text)
    if _BLACK_FLAG in text:  # there may be a flag to keep
        return unicodedata.normalize("NFC", _ESCAPES_BUT_FLAGS.sub(r"\1", text))
    return unicodedata.normalize("NFC", _ESCAPES.sub("", text))


def chat_line(text: str) -> str:
    """The line a client sends so that ``text`` arrives as chat rather than a slash command.

    The bare commands ``who`` and ``rename|NAME`` stay commands: the protocol has no escape
    for them, and nc users type them on purpose.
    """
    if text.startswith("/"):
        return "/" + text
    return text
