"""chatroom: a terminal chat room — a TCP server anyone can join with nc, and a Textual client."""

__version__ = "0.1.0"
