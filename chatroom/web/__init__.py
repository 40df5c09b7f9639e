"""``chatroom-web``: the real chatroom-client in a browser, one process per visitor."""
