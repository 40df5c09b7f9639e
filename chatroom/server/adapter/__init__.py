"""The network adapter: moves bytes between sockets and the core, runs timers, carries out
the room's actions, keeps the state file. It holds no rules."""
