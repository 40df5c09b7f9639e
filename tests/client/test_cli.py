"""chatroom-client's command line: bad input is one clear line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(sys.executable).with_name("chatroom-client")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "HOST:PORT"),
        (["host:99999"], "port"),
        (["127.0.0.1:8087", "--name", "bad name"], "--name"),
        (["127.0.0.1:8087", "--bogus"], "--bogus"),
    ],
)
def test_bad_arguments_are_one_line(argv, complaint):
    result = subprocess.run([str(CLIENT), *argv], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and complaint in result.stderr
    assert result.stderr.startswith("chatroom-client: error: ")
    assert "Traceback" not in result.stderr
