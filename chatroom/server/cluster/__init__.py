"""The shared room's part: the link that carries one node's room to Redis and back
(:mod:`~chatroom.server.cluster.link`) and the Redis side
(:mod:`~chatroom.server.cluster.redis_ledger`, its Lua scripts in ``lua/``). Imported only
with ``--redis``."""
