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
                extra=_fields("connect", peer, report.name, online=report.online, detail="quiet"),
            )
        case Admitted(waiting=True):
            fields = _fields("connect", peer, report.name, online=report.online, detail="password")
            log.info(
                "connect %s (%d online), waiting for the password",
                peer,
                report.online,
                extra=fields,
            )
        case Admitted():
            named = f" as {report.name}" if report.name != peer else ""
            fields = _fields("connect", peer, report.name, online=report.online)
            log.info("connect %s%s (%d online)", peer, named, report.online, extra=fields)
        case TurnedAway():  # a flood of them is one line per interval and cause
            cause = f"refused ({report.cause})"
            fields = _fields("refused", peer, cause=report.cause.name.lower(), reason=report.reason)
            log_once.log(
                cause, logging.WARNING, "refused %s: %s", peer, report.reason, extra=fields
            )
        case Renamed():
            fields = _fields("rename", peer, report.new, old=report.old, new=report.new)
            log.info("rename %s: %s -> %s", peer, report.old, report.new, extra=fields)
        case Moderated(flood=kind) if kind:  # a flood of them is one line per interval
            fields = _fields("moderation", peer, text=report.text)
            log_once.log(
                kind, logging.WARNING, "moderation %s: %s", peer, report.text, extra=fields
            )
        case Moderated():
            fields = _fields("moderation", peer, text=report.text)
            log.warning("moderation %s: %s", peer, report.text, extra=fields)
        case Left(quiet=True):
            fields = _fields("disconnect", peer, report.name, reason=str(report.reason))
            log_once.log(
                "unannounced disconnects (the room is churning)",
                logging.INFO,
                "disconnect %s: %s, before it was announced",
                peer,
                report.reason,
                extra={**fields, "detail": "unannounced"},
            )
        case Left():
            fields = _fields(
                "disconnect", peer, report.name, reason=str(report.reason), detail=detail
            )
            log.info(
                "disconnect %s (%s): %s%s",
                peer,
                report.name,
                report.reason,
                f" ({detail})" if detail else "",
                extra=fields,
            )


def _fields(event: str, address: str, name: str | None = None, **more: object) -> dict:
    """The named fields of a log line (--log-format json): what happened, to whom."""
    return {"event": event, "address": address, "user": name, **more}
