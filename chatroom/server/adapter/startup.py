"""What the server reads before it listens, and the clock it hands the room.

The message of the day and the operators are read here and given to the room when it is
made (the room holds them; nothing writes them into it later). A file that cannot be read
is a :class:`StartError`: one line naming the file.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import msgspec

from chatroom.protocol import strip_controls
from chatroom.server.adapter.store import StateError, StateStore
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core.actions import Persist, Restored
from chatroom.server.core.passwords import parse_operators
from chatroom.server.core.room import Room
from chatroom.server.core.rules.persisting import lease_record
from chatroom.server.core.sequencer import LocalSequencer

log = logging.getLogger("chatroom.server")


class StartError(Exception):
    """The server cannot start for a reason the user can fix; the message says which."""


class RoomClock:
    """The room's time: the wall clock's reading at start, counted on from there on the
    monotonic clock. Timers (idle kicks, mutes, bans, throttles) then never jump when the
    system clock is set; timestamps shown to people are the wall clock as of the start,
    plus the time since."""

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()

    def __call__(self) -> float:
        return self._offset + time.monotonic()


def node_name() -> str:
    """A name for this server among the nodes of a shared room: host, pid and a nonce."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def moderation_files(config: ServerConfig) -> tuple[dict[str, tuple[str, str]], str | None]:
    """The operators of ``--ops-file`` and the text of ``--motd-file`` (raises StartError)."""
    motd = None
    if config.motd_file is not None:
        lines = [strip_controls(line).rstrip() for line in _read(config.motd_file, "--motd-file")]
        motd = "\n".join(lines).strip("\n") or None
    operators: dict[str, tuple[str, str]] = {}
    if config.ops_file is not None:
        text = "\n".join(_read(config.ops_file, "--ops-file"))
        try:
            operators = parse_operators(text)
        except ValueError as exc:
            raise StartError(f"--ops-file {config.ops_file}: {exc}") from None
    return operators, motd


def _read(path: str, flag: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StartError(f"{flag} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def make_room(config: ServerConfig) -> tuple[Room, StateStore | None]:
    """The room this server holds, made from what is read before it listens: the ops file,
    the motd and, with --state, what the file kept (its store stays open for the room's
    changes). Raises StartError."""
    rules = RoomRules.from_config(config)
    operators, motd = moderation_files(config)
    if operators:
        log.info("%d operators in %s", len(operators), config.ops_file)
    if config.redis:
        return Room.shared(rules, node_name(), operators=operators, motd=motd), None
    store = restored = None
    if config.state is not None:  # read before anyone can connect
        try:
            store, restored = StateStore.from_config(config)
        except StateError as exc:
            raise StartError(str(exc)) from None
        log.info(
            "state %s: %d messages, %d bans, %d mutes, %d registered names%s",
            config.state,
            len(restored.history) + sum(map(len, restored.histories.values())),
            len(restored.bans),
            len(restored.mutes),
            len(restored.accounts),
            ", a topic" if restored.topic else "",
        )
    # A restarted server numbers from 1 again: a new epoch says so (the ledger makes a
    # shared room's) — unless the state file says where the room was: after a clean stop
    # its last seq, after a crash its seq lease (no seq given was above it): then seqs go
    # on in its epoch. Before listening, the file gets the first lease of this run.
    epoch = restored.epoch if restored is not None and restored.epoch else uuid.uuid4().hex[:16]
    if store is not None and restored is not None:
        if restored.epoch:
            how = "a crash: above its seq lease" if restored.lost else "a clean stop"
            log.info("state %s: the room goes on in epoch %s from seq %d (after %s)",
                     config.state, epoch, restored.seq, how)  # fmt: skip
        restored = _leased(store, restored, epoch, rules.seq_lease, rules.max_clients)
    room = Room(rules, epoch=epoch, restored=restored, operators=operators, motd=motd)
    return room, store


def _leased(
    store: StateStore, restored: Restored, epoch: str, block: int, clients: int
) -> Restored:
    """``restored`` with the first seq lease of this run, which the file holds now."""
    kept = [events[-1].seq for events in (restored.history, *restored.histories.values()) if events]
    last = max([restored.seq, *restored.seqs.values(), *kept])
    lease = last + LocalSequencer(0, block, clients).kept_back + block
    if not store.put_and_wait(Persist("epoch", "room", lease_record(epoch, lease)), 30.0):
        raise StartError(f"--state {store.path}: cannot write it (its seq lease)")
    return msgspec.structs.replace(restored, lease=lease)
