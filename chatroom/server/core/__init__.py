"""The server's I/O-free core: the room's state and rules, the line codec, admission and the
outbox. Plain objects that take events and return actions: no sockets, no asyncio, no clock
(tests/test_architecture.py checks every module of this folder)."""
