"""Socket activation: serving on listening sockets systemd (or ``systemd-socket-activate``)
passed, instead of binding.

The protocol is sd_listen_fds(3)'s: ``LISTEN_PID`` is this process, ``LISTEN_FDS`` the
number of descriptors from 3 on, ``LISTEN_FDNAMES`` their names, colon-separated (a
``.socket`` unit's ``FileDescriptorName=``). Ours: a socket named ``tls`` serves TLS
(``--tls-cert`` and ``--tls-key`` say with what), any other plaintext. ``--host``,
``--port`` and ``--tls-port`` are then not used: the units say where to listen.

The variables are removed once read (as ``sd_listen_fds(1)`` does), so nothing this process
starts takes the sockets for its own.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping
from dataclasses import replace

from chatroom.server.adapter.listener import TLS_NAME
from chatroom.server.config import ServerConfig

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(Exception):
    """The sockets passed cannot be served as they are; the message says what to change."""


def inherited_sockets(environ: MutableMapping[str, str]) -> tuple[tuple[int, str], ...]:
    """The listening sockets passed to this process, ``(descriptor, name)`` each (name ""
    when unnamed); () when none were. Removes the variables from ``environ``. Raises
    :class:`ActivationError` for a descriptor that is not a listening TCP socket."""
    pid, count, names = (environ.pop(name, None) for name in _VARIABLES)
    if pid is None or count is None or pid.strip() != str(os.getpid()):
        return ()  # not for us (sd_listen_fds: a parent's, passed on by mistake)
    try:
        fds = range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))
    except ValueError:
        raise ActivationError(f"LISTEN_FDS={count!r} is not a number") from None
    labels = names.split(":") if names else []
    found = []
    for index, fd in enumerate(fds):
        _check(fd)
        os.set_inheritable(fd, False)  # FD_CLOEXEC, as sd_listen_fds sets it
        found.append((fd, labels[index] if index < len(labels) else ""))
    return tuple(found)


def _check(fd: int) -> None:
    """``fd`` is a listening TCP socket, or ActivationError says what to change."""
    why = None
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        why = exc.strerror or str(exc)
    else:
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                why = "not listening"
            elif sock.family not in (socket.AF_INET, socket.AF_INET6):
                why = "not IPv4 or IPv6"
            elif sock.type != socket.SOCK_STREAM:
                why = "not a stream"
        except OSError as exc:
            why = exc.strerror or str(exc)
        finally:
            sock.detach()  # the descriptor stays open: it is the listener's
    if why is not None:
        raise ActivationError(
            f"descriptor {fd} (LISTEN_FDS) is not a listening TCP socket ({why}): use "
            "ListenStream= with a port (and Accept=no) in the .socket unit"
        )


def _port(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    try:
        return sock.getsockname()[1]
    finally:
        sock.detach()


def activated(config: ServerConfig, inherited: tuple[tuple[int, str], ...]) -> ServerConfig:
    """``config`` serving on ``inherited`` (its ports are theirs, for the start-up line and
    the flags' checks); raises :class:`ActivationError` for flags that cannot go with them."""
    plain = [fd for fd, name in inherited if name != TLS_NAME]
    tls = [fd for fd, name in inherited if name == TLS_NAME]
    if config.workers > 1:
        raise ActivationError(
            "--workers cannot share sockets passed by systemd: run one process per "
            ".socket unit (or drop the .socket unit and use --workers)"
        )
    if tls and not config.tls_cert:
        raise ActivationError(
            f"systemd passed a socket named {TLS_NAME} (FileDescriptorName={TLS_NAME}): "
            "give --tls-cert FILE (and --tls-key FILE) to serve TLS on it"
        )
    if config.tls_cert and not tls:
        raise ActivationError(
            f"--tls-cert: systemd passed no socket named {TLS_NAME} to serve TLS on (give "
            f"the TLS port's .socket unit FileDescriptorName={TLS_NAME})"
        )
    return replace(
        config,
        inherited=inherited,
        port=_port(plain[0]) if plain else None,
        tls_port=_port(tls[0]) if tls else None,
    )
