"""The argument parser both commands use: a bad flag is one clear line, not a usage block."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def package_version() -> str:
    """The installed chatroom's version, for ``--version``."""
    try:
        return version("chatroom")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` for argparse: its ValueError's reason becomes the one-line usage error."""

    def argument(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    argument.__name__ = parse.__name__
    return argument
