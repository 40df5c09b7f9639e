from chatroom.client.cli import main

raise SystemExit(main())
