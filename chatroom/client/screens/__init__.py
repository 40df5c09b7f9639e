"""The client's screens: the chat room and the rename dialog."""
