"""Two people chat through a homeserver with matrix-nio, a real client library that checks
every response against its JSON schemas.

usage: python nio_chat.py BASE_URL     (prints "ok" and exits 0 on success)
"""
import asyncio
import random
import sys
import time

from nio import (AsyncClient, JoinResponse, RegisterResponse, RoomCreateResponse,
                 RoomMessageText, RoomSendResponse, SyncResponse)


async def until(what, deadline, step):
    """Calls the coroutine factory `step` until it returns a true value or the deadline passes."""
    while True:
        found = await step()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")


async def main(url):
    suffix = random.randrange(10**9)
    alice = AsyncClient(url, f"nioalice{suffix}")
    bob = AsyncClient(url, f"niobob{suffix}")
    try:
        for client in (alice, bob):
            resp = await client.register(client.user, "pw-" + client.user, "nio")
            assert isinstance(resp, RegisterResponse), resp
        deadline = time.monotonic() + 30

        created = await alice.room_create(name="nio room", topic="from matrix-nio", invite=[bob.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id

        async def bob_invited():
            resp = await bob.sync(timeout=2000)
            assert isinstance(resp, SyncResponse), resp
            return room_id in bob.invited_rooms
        await until("bob's invite", deadline, bob_invited)
        joined = await bob.join(room_id)
        assert isinstance(joined, JoinResponse), joined

        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        assert isinstance(sent, RoomSendResponse), sent

        async def bob_got_message():
            resp = await bob.sync(timeout=2000)
            assert isinstance(resp, SyncResponse), resp
            room = resp.rooms.join.get(room_id)
            return room and any(isinstance(e, RoomMessageText) and e.body == "hello from nio" for e in room.timeline.events)
        await until("the message at bob", deadline, bob_got_message)
        assert bob.rooms[room_id].name == "nio room", bob.rooms[room_id].name

        await bob.set_displayname("Bob Nio")
        await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"})

        seen = {"reply": False}

        async def alice_sees_bob():
            resp = await alice.sync(timeout=2000)
            assert isinstance(resp, SyncResponse), resp
            got = resp.rooms.join.get(room_id)
            if got and any(isinstance(e, RoomMessageText) and e.body == "hi alice" for e in got.timeline.events):
                seen["reply"] = True
            room = alice.rooms.get(room_id)
            user = room and room.users.get(bob.user_id)
            return user and user.display_name == "Bob Nio" and seen["reply"]
        await until("bob's name and reply at alice", deadline, alice_sees_bob)
        print("ok")
    finally:
        await alice.close()
        await bob.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
