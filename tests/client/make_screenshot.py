"""Make docs/client-screenshot.svg from a real session: a server on 127.0.0.1, two nc-like
users and the client chatting. Run: .venv/bin/python tests/client/make_screenshot.py"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from chat_helpers import NcUser, eventually, log_text, submit

from chatroom.client.app import ChatApp
from chatroom.client.settings import ClientSettings
from chatroom.server.adapter.app import start_server
from chatroom.server.config import ServerConfig

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "client-screenshot.svg"


async def nc_user(port: int, name: str) -> NcUser:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    user = NcUser(reader, writer)
    await user.read_until(f"{user.id} joined")
    await user.say(f"/nick {name}")
    await user.read_until(f"is now {name}")
    return user


async def main(output: Path) -> None:
    server = await start_server(ServerConfig(host="127.0.0.1", port=0, rate=0, idle_timeout=0))
    bob = await nc_user(server.port, "bob")
    await bob.say("morning! the coffee machine is fixed")
    carol = await nc_user(server.port, "carol")
    app = ChatApp(ClientSettings("127.0.0.1", server.port, "ann"))
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: app.chat.roster.own_name == "ann", pilot)
        await bob.say("anyone tried the new client?")
        await submit(pilot, "I'm on it right now: F2 renames, Tab completes names")
        await carol.say("/me waves from nc")
        await carol.say("ann: how do I send a private message?")
        await submit(pilot, "/msg carol select a name in the user list, or type /msg NAME")
        await bob.say("/nick bobby")
        await bob.say("[bold]markup[/bold] shows up as typed, nice")
        await eventually(lambda: "markup" in log_text(app), pilot)
        app.clear_notifications()
        await pilot.pause(0.2)
        app.save_screenshot(filename=output.name, path=str(output.parent))
    for user in (bob, carol):
        await user.close()
    await server.shutdown()
    print(f"wrote {output}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
