"""``chatroom-server``'s argument parser, generated from the config's flag fields.

Each flag is a field of :class:`~chatroom.server.config_flags.FlagSettings` whose metadata
says its flag, help, metavar, parse function, choices and nargs; this module only turns
them into argparse arguments, in the fields' order, so ``--help`` lists them in that order.
Every flag sets the field it is named after (``--max-sendq`` sets ``max_sendq``).
"""

from __future__ import annotations

import argparse
from dataclasses import Field
from typing import Any

from chatroom.cli_parser import OneLineErrorParser, argument_type, package_version
from chatroom.server.config import ServerConfig, flag_fields

PROG = "chatroom-server"


def _add(parser: argparse.ArgumentParser, spec: Field[Any]) -> None:
    """The argument for one flag field."""
    meta = spec.metadata
    options: dict[str, Any] = {"dest": spec.name, "default": spec.default}
    help_text = meta["help"]
    if help_text is None:
        help_text = argparse.SUPPRESS
    elif meta.get("nargs") and "%(default)s" in help_text:
        # A list is shown as it is typed: the values apart, not a tuple's repr.
        shown = " ".join(spec.default).replace("%", "%%")
        help_text = help_text.replace("%(default)s", shown)
    options["help"] = help_text
    if isinstance(spec.default, bool):
        options["action"] = "store_true"
    if meta.get("repeat"):  # one value a use; argparse would append to the default: None
        options["action"], options["default"] = "append", None
    for key in ("metavar", "choices", "nargs", "action"):
        if key in meta:
            options[key] = meta[key]
    if meta.get("action") == "extend":  # repeatable: each use adds to a fresh list
        options["default"] = list(spec.default)
    if "parse" in meta:
        options["type"] = argument_type(meta["parse"])
    parser.add_argument(meta["flag"], **options)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Run one chat room over TCP. Join it with `nc HOST PORT` or chatroom-client.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    for spec in flag_fields():
        _add(parser, spec)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Every flag is named after the config field it sets (--max-sendq sets max_sendq); a
    repeatable flag not given is the field's default."""
    values = vars(args)
    for spec in flag_fields():
        if spec.metadata.get("repeat") and values.get(spec.name) is None:
            values[spec.name] = spec.default
    return ServerConfig(**values)
