"""The server's graceful stop: stop accepting, tell everyone, flush, close (SIGINT, SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from chatroom.server.core.inputs import ShuttingDown, StateFlushDue

log = logging.getLogger("chatroom.server")


async def shut_down(server: Any, all_closed: asyncio.Event) -> None:  # app.py's ChatServer
    """Stop accepting, tell everyone, flush, and close; drop stragglers after the grace."""
    for listener in filter(None, (server.listener, server.door)):
        listener.close()
    server.checks.close()
    if server.ops is not None:
        server.ops.close()
    if server.loop_lag is not None:
        server.loop_lag.stop()
    server.handle(ShuttingDown())
    server.flush()
    if server.cluster is not None:
        try:  # other nodes' users see this node's users leave
            await asyncio.wait_for(server.cluster.stop(), server.config.shutdown_grace / 2)
        except TimeoutError:
            log.warning("shutdown: Redis did not answer; other nodes will reap our users")
    try:
        await asyncio.wait_for(all_closed.wait(), server.config.shutdown_grace)
    except TimeoutError:
        log.warning("shutdown: dropping %d connections that did not drain", len(server.connections))
        for conn in list(server.connections.values()):
            conn.abort()
        await asyncio.sleep(0)
    if server.store is not None:  # the last of the chat is committed
        server.handle(StateFlushDue())
        await asyncio.to_thread(server.store.close)
