// A room's membership from the invitee's side, as Element Web drives it: an invite declined,
// a second invite accepted, then leaving and forgetting the room until no sync mentions it.
//
// usage: node membership.mjs BASE_URL      (prints "ok" and exits 0 on success)
import { check, login, newUser, passwordOf, run, start, step, until } from "./lib.mjs";

await run(async (baseUrl) => {
  step("alice and bob sign up");
  const alice = await newUser(baseUrl, "jsalice");
  const bob = await newUser(baseUrl, "jsbob");
  const bobId = bob.getUserId();
  const membershipAt = (client, userId) => client.getRoom(roomId)?.getMember(userId)?.membership;

  step("alice creates a room and invites bob");
  const { room_id: roomId } = await alice.createRoom({ name: "membership room", preset: "private_chat" });
  await alice.invite(roomId, bobId);
  await until("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
  // Element shows the inviter and the room's name on the invite, from the stripped state.
  const invite = bob.getRoom(roomId);
  check(invite.name === "membership room", `the invite names the room ${JSON.stringify(invite.name)}`);
  const inviter = invite.getMember(bobId)?.events.member?.getSender();
  check(inviter === alice.getUserId(), `the invite says it is from ${inviter}`);

  step("bob declines the invite");
  await bob.leave(roomId);
  await until("the declined invite, seen by bob", () => bob.getRoom(roomId)?.getMyMembership() === "leave");
  await until("the declined invite, seen by alice", () => membershipAt(alice, bobId) === "leave");

  step("alice invites bob again");
  await alice.invite(roomId, bobId);
  await until("bob's second invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
  await until("the second invite, seen by alice", () => membershipAt(alice, bobId) === "invite");

  step("bob accepts and reads what alice says next");
  await bob.joinRoom(roomId);
  await until("bob joined, seen by alice", () => membershipAt(alice, bobId) === "join");
  await until("bob joined, seen by bob", () => bob.getRoom(roomId)?.getMyMembership() === "join");
  const { event_id: hello } = await alice.sendTextMessage(roomId, "welcome, bob");
  const seen = await until("alice's message at bob", () => bob.getRoom(roomId)?.findEventById(hello));
  check(seen.getContent().body === "welcome, bob", `wrong body ${JSON.stringify(seen.getContent())}`);

  step("bob leaves");
  await bob.leave(roomId);
  await until("bob left, seen by alice", () => membershipAt(alice, bobId) === "leave");
  await until("bob left, seen by bob", () => bob.getRoom(roomId)?.getMyMembership() === "leave");
  // Element lists left rooms ("historical") through a sync whose filter includes them, which
  // the SDK only applies to rooms its first sync did not bring: ask from a fresh device.
  const leftRooms = async (label) => {
    const device = await start(baseUrl, await login(baseUrl, bobId, passwordOf(bob), label));
    check(!device.getRoom(roomId), `a left room came down ${label}'s first sync`);
    return (await device.syncLeftRooms()).map((r) => r.roomId);
  };
  check((await leftRooms("bob's second device")).includes(roomId), "the left room is missing from a sync including left rooms");

  step("bob forgets the room");
  // Element forgets with the room deleted from the client's store too.
  await bob.forget(roomId, true);
  check(!bob.getRoom(roomId), "the forgotten room is still in bob's store");
  check(!bob.getRooms().some((r) => r.roomId === roomId), "the forgotten room is still in getRooms()");
  // The server must drop it even from syncs that include left rooms...
  check(!(await leftRooms("bob's third device")).includes(roomId), "the forgotten room still comes down a sync including left rooms");
  // ...and later activity in it must not bring it back: bob's next room comes down a sync after
  // alice's message, so that message would have come first.
  const { event_id: after } = await alice.sendTextMessage(roomId, "still here");
  await until("alice's own message", () => alice.getRoom(roomId)?.findEventById(after));
  const { room_id: next } = await bob.createRoom({ name: "bob's next room" });
  await until("bob's next room", () => bob.getRoom(next));
  check(!bob.getRoom(roomId), "the forgotten room came back to bob's client after more activity in it");

  step("alice still sees bob as left, not forgotten");
  check(membershipAt(alice, bobId) === "leave", `bob is ${membershipAt(alice, bobId)} at alice`);
});
