"""What a flag's text may be: each function turns the text into the config's value, or
raises ``ValueError`` with the one-line reason the command line shows (cli_flags.py).

The config's fields name them in their metadata (``parse``), so a flag and the rule for its
value are written in one place. No argparse here: the command line wraps them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from chatroom.protocol.room_names import ROOM_RULE, room_key


def non_negative(kind: type) -> Callable[[str], float | int]:
    """A number of ``kind`` (int or float), 0 or more."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if value < 0:
            raise ValueError(f"must not be negative: {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


non_negative_int = non_negative(int)
non_negative_float = non_negative(float)


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise ValueError("must be at least 1")
    return int(value)


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise ValueError("must be more than 0")
    return value


def port(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise ValueError(f"not a TCP port: {text!r}")
    return int(value)


def port_or_off(text: str) -> int | None:
    """A port, or ``off`` (None): no such listener."""
    return None if text == "off" else port(text)


def cidr(text: str) -> str:
    """An address or network, in its normal form (``10.1.2.3`` is ``10.1.2.3/32``)."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"not an address or network: {text!r}") from None


def room(text: str) -> str:
    """A room's key (``#Dev`` is ``dev``): docs/PROTOCOL.md, "Rooms"."""
    key = room_key(text)
    if key is None:
        raise ValueError(f"{text!r}: {ROOM_RULE}")
    return key


_ORIGIN = re.compile(r"(https?)://([^/?#\s]+)")


def origin(text: str) -> str:
    """A web page's origin as browsers send it: ``scheme://host[:port]``, no path."""
    match = _ORIGIN.fullmatch(text.strip().rstrip("/"))
    if match is None:
        raise ValueError(f"not an origin like https://chat.example.org: {text!r}")
    return f"{match[1]}://{match[2].lower()}"
