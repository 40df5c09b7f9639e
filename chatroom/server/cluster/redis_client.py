"""The ledger's two redis-py clients, and every Redis failure as :class:`LedgerUnavailable`.

A ledger (redis_ledger.py) talks to Redis through two clients: one for commands (socket
timeout ``timeout``) and one for the blocking ``XREAD``, which waits longer than any
command may (the ledger bounds it with asyncio). Nothing is retried automatically (a
retried script could append an event twice). Whatever fails — connection refused or lost,
a timeout, an error reply — leaves as :class:`LedgerUnavailable`, its message one line,
the URL's password left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

FAILURES = (RedisError, OSError, TimeoutError)


class LedgerUnavailable(Exception):
    """Redis cannot be reached, or the connection to it was lost; the message is one line."""


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def guard(url: str, what: str) -> Iterator[None]:
    """Turn any Redis or socket failure into :class:`LedgerUnavailable`."""
    try:
        yield
    except FAILURES as exc:
        raise LedgerUnavailable(f"Redis at {redact(url)}: {what} failed: {one_line(exc)}") from exc


def _raw(response: Any, **options: Any) -> Any:
    """XREAD's reply as Redis sent it: the ledger's ``read`` takes it apart itself, at a
    fraction of the cost of redis-py's dict per entry."""
    return response


def clients(url: str, timeout: float) -> tuple[aioredis.Redis, aioredis.Redis]:
    """The client for commands and the one for blocking reads (no socket timeout)."""
    common: dict[str, Any] = {
        "decode_responses": True,
        # What is not UTF-8 (typed into Redis by hand) is read with U+FFFD in its place: a
        # stream entry then is one of the bad ones the reader skips, not a failed read.
        "encoding_errors": "replace",
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": max(1, math.ceil(timeout)),
    }
    commands = aioredis.from_url(url, socket_timeout=timeout, **common)
    blocking = aioredis.from_url(url, socket_timeout=None, **common)
    for client in (commands, blocking):
        client.set_response_callback("XREAD", _raw)
    return commands, blocking


async def reconnect(url: str, commands: aioredis.Redis, blocking: aioredis.Redis) -> None:
    """Drop every pooled connection, then check that Redis answers (PING).

    After an outage (Redis restarted, the network cut) the pools may hold connections that
    are dead without knowing it, and each would fail the first command sent on it: one
    outage, lost twice.
    """
    for client in (commands, blocking):
        with contextlib.suppress(RedisError, OSError):
            await client.connection_pool.disconnect(inuse_connections=False)
    try:
        await commands.ping()
    except FAILURES as exc:
        raise LedgerUnavailable(f"cannot reach Redis at {redact(url)}: {one_line(exc)}") from exc


async def close(*redis_clients: aioredis.Redis) -> None:
    """Close the clients' connection pools. Never raises."""
    for client in redis_clients:
        with contextlib.suppress(Exception):
            await client.aclose()


async def subscribed(
    client: aioredis.Redis,
    url: str,
    channel: str,
    *,
    poll: float,
    close_within: float,
    first: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The JSON object payloads published on ``channel``; ``first``, if given, is yielded
    once subscribed (before any payload). Each wait for a message lasts ``poll`` seconds
    (then waits again); closing the subscription takes at most ``close_within``."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        with guard(url, "subscribe"):
            await pubsub.subscribe(channel)
        if first is not None:
            yield first
        while True:
            with guard(url, "pubsub"):
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll)
            if message is None or message.get("type") != "message":
                continue
            try:
                payload = json.loads(message["data"])
            except ValueError:
                continue
            if isinstance(payload, dict):
                yield payload
    finally:
        # Bounded: this runs when the reader is cancelled too, and closing a pub/sub
        # connection that Redis left hanging must not keep the task from ending.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pubsub.aclose(), close_within)
