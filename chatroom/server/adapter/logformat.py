"""``--log-format json``: one JSON object a line, for log shippers.

Each line has ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` (the text line
as the text format writes it) and the named fields the line was logged with
(``event``, ``address``, ``name``, ``reason``, ``cause``, ...: see docs/OPERATIONS.md).
A line logged without them has ``"event":"log"``. Chat text is never logged, in either
format.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# The named fields a log call may carry (logging's ``extra``), in the order they are
# written, and the name each is written under (a LogRecord has a ``name`` of its own: the
# user's name travels as ``user``).
FIELDS = {
    "event": "event", "address": "address", "user": "name", "old": "old", "new": "new",
    "reason": "reason", "cause": "cause", "detail": "detail", "online": "online",
    "kind": "kind", "more": "more", "text": "text",
}  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": "log",
            "message": record.getMessage(),
        }
        for attribute, key in FIELDS.items():
            value = record.__dict__.get(attribute)
            if value is not None:
                line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, form: str) -> None:
    """Log on stderr at ``level`` in ``form`` (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    if form == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
