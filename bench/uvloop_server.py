"""``python -m bench.uvloop_server ARGS``: chatroom-server on uvloop, for comparison.

The server itself runs on whatever loop ``asyncio.run`` creates; installing the uvloop policy
first swaps that loop without touching the server's code.
"""

import sys

import uvloop

from chatroom.server.cli import main

if __name__ == "__main__":
    uvloop.install()
    sys.exit(main())
