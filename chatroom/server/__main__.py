import sys

from chatroom.server.cli import main

sys.exit(main())
