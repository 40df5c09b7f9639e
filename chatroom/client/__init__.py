"""chatroom-client: a Textual front end for a chatroom server.

The plain modules (``connection``, ``roster``, ``timeline``, ``own_requests``,
``input_history``, ``completion``, ``outgoing``, ``render``) know nothing about Textual and
are tested directly; the app, screens and widgets wire them to the terminal.
"""
