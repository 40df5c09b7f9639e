"""``--log DIR``: each conversation written to a plain text file, as weechat does. No Textual.

One file per conversation in DIR: ``HOST_PORT.room.log`` for the room (the default room,
``main``), ``HOST_PORT.room.KEY.log`` for another room (``room.dev``) and
``HOST_PORT.private.NAME.log`` for a private conversation (NAME as the server compares
names: case and look-alikes folded), every character outside ``[A-Za-z0-9._-]`` written
as ``%XX``: no ``/``, and a name is never the whole file name, so none reaches outside
DIR. Each line is
``YYYY-MM-DD HH:MM:SS`` (local time, or the client's time zone), a tab, and the line as
the log shows it without its time. Files are appended to, line-buffered (a crash loses
nothing written), and at most :data:`MAX_OPEN` are open at once.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TextIO

from chatroom.client.log_buffer import Conversation, RoomRef
from chatroom.client.render import LogLine
from chatroom.protocol import name_key
from chatroom.protocol.room_names import DEFAULT_ROOM

MAX_OPEN = 16  # files kept open; the least recently written is closed past that
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def file_part(text: str) -> str:
    """``text`` made safe for a file name: only ``[A-Za-z0-9._-]`` kept, the rest %XX."""
    return "".join(ch if ch in SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text)


class ConversationLogs:
    def __init__(self, directory: Path, server: str, tz: tzinfo | None = None) -> None:
        self.directory = directory
        self.server = file_part(server)
        self.tz = tz
        self._open: OrderedDict[str, TextIO] = OrderedDict()
        self.failed: str | None = None  # why the last write failed (said once)

    def path(self, conversation: Conversation) -> Path:
        if conversation is None or conversation == RoomRef(DEFAULT_ROOM):
            return self.directory / f"{self.server}.room.log"
        if isinstance(conversation, RoomRef):
            return self.directory / f"{self.server}.room.{file_part(conversation.key)}.log"
        return self.directory / f"{self.server}.private.{file_part(name_key(conversation))}.log"

    def write(self, conversation: Conversation, line: LogLine) -> str | None:
        """Append ``line``; a reason (once) if it could not be written."""
        text = line.text.plain[line.hang :] if line.hang else line.text.plain
        when = datetime.fromtimestamp(line.ts or 0, self.tz).strftime("%Y-%m-%d %H:%M:%S")
        try:
            file = self._file(self.path(conversation))
            file.write(f"{when}\t{text}\n")
        except OSError as exc:
            first = self.failed is None
            self.failed = f"--log {self.directory}: {exc.strerror or exc}"
            return self.failed if first else None
        return None

    def _file(self, path: Path) -> TextIO:
        key = str(path)
        file = self._open.get(key)
        if file is not None:
            self._open.move_to_end(key)
            return file
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("a", encoding="utf-8", buffering=1)
        self._open[key] = file
        while len(self._open) > MAX_OPEN:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return file

    def close(self) -> None:
        for file in self._open.values():
            file.close()
        self._open.clear()
