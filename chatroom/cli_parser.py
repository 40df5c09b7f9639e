"""The argument parser both commands use: a bad flag is one clear line, not a usage block."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def package_version() -> str:
    """The installed chatroom's version, for ``--version``."""
    try:
        return version("chatroom")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
