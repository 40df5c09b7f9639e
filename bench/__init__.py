"""The chatroom benchmark: a real ``chatroom-server`` process under chat-room loads.

Run ``python -m bench`` from the repository root (``--help`` for options, ``--quick`` for
the CI smoke run). See docs/PERFORMANCE.md for the scenarios, the method and the figures.
"""
