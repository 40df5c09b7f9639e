"""The room's reports (what it decided) as log lines: one place that words the log.

A flood of one kind (refusals of one cause, quiet connects and disconnects while the room
churns) is one line per interval (:class:`~chatroom.server.adapter.lograte.OncePerInterval`).
"""

from __future__ import annotations

import logging

from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.core.actions import Admitted, Left, Moderated, Renamed, RoomAction, TurnedAway

log = logging.getLogger("chatroom.server")


def log_report(
    report: RoomAction, peer: str, detail: str | None, log_once: OncePerInterval
) -> None:
    """Log ``report`` about the connection from ``peer`` (a leave's with ``detail``)."""
    match report:
        case Admitted(quiet=True):
            log_once.log(
                "quiet connects (the room is churning)",
                logging.INFO,
                "connect %s (%d online), not announced yet: the room is churning",
                peer,
                report.online,
            )
        case Admitted(waiting=True):
            log.info("connect %s (%d online), waiting for the password", peer, report.online)
        case Admitted():
            named = f" as {report.name}" if report.name != peer else ""
            log.info("connect %s%s (%d online)", peer, named, report.online)
        case TurnedAway():  # a flood of them is one line per interval and cause
            cause = f"refused ({report.cause})"
            log_once.log(cause, logging.WARNING, "refused %s: %s", peer, report.reason)
        case Renamed():
            log.info("rename %s: %s -> %s", peer, report.old, report.new)
        case Moderated(flood=kind) if kind:  # a flood of them is one line per interval
            log_once.log(kind, logging.WARNING, "moderation %s: %s", peer, report.text)
        case Moderated():
            log.warning("moderation %s: %s", peer, report.text)
        case Left(quiet=True):
            log_once.log(
                "unannounced disconnects (the room is churning)",
                logging.INFO,
                "disconnect %s: %s, before it was announced",
                peer,
                report.reason,
            )
        case Left():
            log.info(
                "disconnect %s (%s): %s%s",
                peer,
                report.name,
                report.reason,
                f" ({detail})" if detail else "",
            )
