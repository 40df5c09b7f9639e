"""The argument parser both commands use: a bad flag is one clear line, not a usage block."""

from __future__ import annotations

import argparse


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
