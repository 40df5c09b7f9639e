"""The chat server: a sans-I/O room and codec, and the asyncio adapter that moves bytes."""
