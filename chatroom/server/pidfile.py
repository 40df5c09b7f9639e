"""Who serves: ``--pid-file`` (for ``kill -USR2 $(cat FILE)``), and systemd's notify socket.

Under systemd an upgrade changes the service's main process. With ``Type=notify`` and
``NotifyAccess=all`` the server says ``READY=1`` and ``MAINPID=`` once it serves, and an
upgrade's new process says ``MAINPID=`` with its own pid before it tells the old one it
has taken over (adapter/takeover.py), so systemd never sees the main process exit; an old
process whose handover failed says ``MAINPID=`` again with its own (adapter/upgrade.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket


def notify(*fields: str) -> None:
    """Send systemd ``fields`` (``READY=1``, ``MAINPID=PID``) on ``$NOTIFY_SOCKET``; nothing
    without one (not under systemd, or not ``Type=notify``)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, kind) as sock:
        sock.sendto("\n".join(fields).encode(), address)


def serving(path: str | None) -> None:
    """This process serves now: its pid in ``path`` (--pid-file), and systemd told."""
    if path is not None:
        write_pid_file(path)
    notify("READY=1", f"MAINPID={os.getpid()}")


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
