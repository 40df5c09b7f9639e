"""``--pid-file``: the serving process's pid, for ``kill -USR2 $(cat FILE)`` and systemd."""

from __future__ import annotations

import contextlib
import logging
import os


def write_pid_file(path: str) -> None:
    """This process's pid in ``path``, replaced atomically (a reader sees the old pid or
    the new one, never a half-written file). A failure is logged: the server serves on."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{os.getpid()}\n")
        os.replace(temporary, path)
    except OSError as exc:
        logging.getLogger("chatroom.server").error("--pid-file %s: %s", path, exc.strerror)
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def remove_pid_file(path: str) -> None:
    """On a clean stop: the file goes, if it still names this process."""
    with contextlib.suppress(OSError, ValueError):
        with open(path, encoding="ascii") as file:
            if int(file.read().strip()) != os.getpid():
                return
        os.unlink(path)
