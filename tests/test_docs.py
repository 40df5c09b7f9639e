"""The README lists everything the programs accept, read from the programs themselves: every
flag of ``chatroom-server --help`` and ``chatroom-client --help`` (the real processes), and
every command of the server's ``/help``. A flag or command added without a line in the
README fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatroom.protocol.commands import HELP_TEXT, OPERATOR_HELP_TEXT

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## ``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"the README has no section '## {title}'"
    return match.group(1)


def table_rows(text: str) -> str:
    """The table rows of ``text`` (a ``\\|`` in a cell is a ``|``)."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return "\n".join(rows).replace("\\|", "|")


def help_flags(program: str) -> list[str]:
    """Every long flag ``program --help`` lists (its option lines' first column)."""
    result = subprocess.run(
        [str(BIN / program), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    flags = []
    for line in result.stdout.splitlines():
        if re.match(r"  -", line):  # an option line (a continuation is indented further)
            invocation = re.split(r"\s{2,}", line.strip())[0]
            flags += re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", invocation)
    assert len(flags) >= 5, result.stdout  # the parse found the flags
    return flags


def mentions(rows: str, flag: str) -> bool:
    return re.search(rf"`{re.escape(flag)}(?![\w-])", rows) is not None


@pytest.mark.parametrize(
    ("program", "title"),
    [("chatroom-server", "Server flags"), ("chatroom-client", "Client flags")],
)
def test_every_flag_of_help_is_in_the_readmes_flag_table(program, title):
    rows = table_rows(section(title))
    missing = [flag for flag in help_flags(program) if not mentions(rows, flag)]
    assert not missing, f"flags of {program} --help missing from the README's {title}: {missing}"


def help_commands() -> list[str]:
    """The first word of every command form the server's /help lists (``/who``, ``who``,
    ``rename|NAME``, ``//TEXT``...), the operators' too."""
    commands = []
    for line in (HELP_TEXT + "\n" + OPERATOR_HELP_TEXT).splitlines():
        if re.match(r"  \S", line):  # a command line (a continuation is indented further)
            column = re.split(r"\s{2,}", line.strip())[0]
            commands += [form.split()[0] for form in column.split(", ")]
    assert len(commands) >= 20, commands  # the parse found the commands
    return commands


def test_every_command_of_help_is_in_the_readmes_command_tables():
    rows = table_rows(section("Commands"))
    missing = [c for c in help_commands() if not re.search(rf"`{re.escape(c)}(?=[ `])", rows)]
    assert not missing, f"commands of /help missing from the README's command tables: {missing}"
