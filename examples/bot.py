#!/usr/bin/env python3
"""An example chatroom bot that neither loses nor repeats a line, whatever happens to the
server under it (docs/BOTS.md walks through it). Standard library only.

It logs every chat line of the room, once, to a file (``SEQ<TAB>NAME<TAB>TEXT``), and
answers ``!echo TEXT`` with ``echo: TEXT``, once. How:

- ``/bot`` (no history replay when greeted), ``/format json``, then, once welcomed, it
  asks for what it missed by seq: ``/history since LAST EPOCH`` (the first time
  ``/history 0``, which only says how far the room got). Live events that come while
  that answer is on its way wait for it; an event whose seq is not above LAST is one it
  has already (dropped).
- Its replies are requests, ``{"id": ID, "text": LINE}``, each kept until its ack comes;
  after a reconnect every unacked one is sent again with the same id, and the server
  acks a repeat with the first seq instead of saying it twice. An id is derived from the
  line it answers (epoch and seq), so even seeing that line twice would not reply twice.
- A ``history_gap`` notice (messages it asked for are not kept: too old, or lost when the
  server was killed before saving them) is logged; what follows is after the gap.
- A ``reset`` notice (the room's history started over) is logged; what follows is the new
  epoch's.

Usage: python3 examples/bot.py HOST PORT [--name NAME] [--log FILE] [--retry SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import time
from collections import OrderedDict


class Bot:
    def __init__(self, name: str, log_path: str) -> None:
        self.name = name
        self.log_path = log_path
        self.epoch: str | None = None
        self.last: int | None = None  # the last seq handled in ``epoch``
        self.unacked: OrderedDict[str, str] = OrderedDict()  # request id -> line
        self.awaiting = False  # an answer to /history is on its way: live events wait
        self.answer_left = 0  # messages of the current answer still to come
        self.more = False  # the current answer said more: another page was asked for
        self.held: list[dict] = []  # live events that came before the answer
        self.sock: socket.socket | None = None

    # --- the wire

    def send(self, line: str) -> None:
        assert self.sock is not None
        self.sock.sendall(line.encode() + b"\n")

    def request(self, rid: str, line: str) -> None:
        self.unacked[rid] = line
        self.send(json.dumps({"id": rid, "text": line}))

    def run(self, host: str, port: int, retry: float) -> None:
        while True:
            try:
                with socket.create_connection((host, port), timeout=30) as sock:
                    sock.settimeout(None)
                    self.sock = sock
                    self.session(sock.makefile("r", encoding="utf-8", newline="\n"))
            except OSError as exc:
                print(f"bot: {exc}", file=sys.stderr, flush=True)
            self.sock = None
            time.sleep(retry)  # then connect again and resume

    def session(self, lines) -> None:
        self.send("/bot")  # no replay: it asks for what it needs
        self.send(f"/nick {self.name}")
        self.send("/format json")
        for line in lines:  # the text greeting first: skipped up to the format change
            if line.startswith("{") and json.loads(line).get("type") == "format":
                break
        for line in lines:
            self.event(json.loads(line))
        print("bot: connection closed", file=sys.stderr, flush=True)

    # --- what the server says

    def event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "welcome":
            self.welcomed(event)
        elif kind == "notice" and event.get("code") == "history":
            self.answer_left = event.get("count") or 0
            if self.last is None:  # /history 0: where the room is
                self.last = event["seq"]
            self.more = bool(event.get("more"))
            if self.more:  # the next page, from the last of this one
                self.send(f"/history since {event['seq']} {self.epoch}")
            self.answer_done()
        elif kind == "notice" and event.get("code") == "history_gap":
            self.last = max(self.last or 0, event["seq"])  # what follows is after it
            self.log(0, "*", f"messages up to seq {event['seq']} may be missing")
        elif kind == "notice" and event.get("code") == "reset":
            self.epoch, self.last = event.get("epoch"), 0
            self.log(0, "*", f"the room's history was reset (epoch {self.epoch})")
        elif kind == "ack":
            self.unacked.pop(str(event.get("id")), None)
        elif kind == "error" and event.get("code") == "name_taken":
            print("bot: name taken; retrying", file=sys.stderr, flush=True)
            raise OSError("name taken")
        elif kind in ("message", "action", "join", "leave", "rename"):
            self.broadcast(event)

    def welcomed(self, event: dict) -> None:
        epoch = event.get("epoch")
        self.awaiting, self.answer_left, self.more, self.held = True, 0, False, []
        if self.last is None or self.epoch is None:
            self.epoch = epoch
            self.send("/history 0")
        else:  # another epoch is answered with a reset notice
            self.send(f"/history since {self.last} {self.epoch}")
        for rid, line in list(self.unacked.items()):  # acked with the first seq if seen
            self.send(json.dumps({"id": rid, "text": line}))
        print(f"bot: welcomed in epoch {epoch}", file=sys.stderr, flush=True)

    def broadcast(self, event: dict) -> None:
        if event.get("history"):
            if self.answer_left > 0:  # (a bot is replayed nothing it did not ask for)
                self.answer_left -= 1
                self.handle(event)
                self.answer_done()
        elif self.awaiting:
            self.held.append(event)  # it waits for the answer to /history
        else:
            self.handle(event)

    def answer_done(self) -> None:
        """Once the whole answer is in (every page), the live events that waited."""
        if self.awaiting and self.answer_left == 0 and not self.more:
            self.awaiting = False
            held, self.held = self.held, []
            for event in held:
                self.handle(event)
            print("bot: ready", flush=True)

    def handle(self, event: dict) -> None:
        seq = event["seq"]
        if self.last is not None and seq <= self.last:
            return  # it has this one
        self.last = seq
        if event["type"] not in ("message", "action"):
            return
        self.log(seq, event["name"], event["text"])
        if event["type"] == "message" and event["text"].startswith("!echo "):
            self.request(f"echo-{self.epoch}-{seq}", "echo: " + event["text"][6:])

    def log(self, seq: int, name: str, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as file:
            file.write(f"{seq}\t{name}\t{text}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--name", default="echobot")
    parser.add_argument("--log", default="bot.log")
    parser.add_argument("--retry", type=float, default=1.0, help="seconds between connects")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        Bot(args.name, args.log).run(args.host, args.port, args.retry)


if __name__ == "__main__":
    main()
