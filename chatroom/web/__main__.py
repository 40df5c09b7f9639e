from chatroom.web.cli import main

raise SystemExit(main())
