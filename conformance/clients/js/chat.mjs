// Two people chat through a homeserver with matrix-js-sdk, the SDK inside Element Web: sign-up
// through interactive auth, the client's own sync loop, room list, invites, timeline, typing,
// read receipts, the unread counts those receipts clear, and a picture uploaded and downloaded.
//
// usage: node chat.mjs BASE_URL      (prints "ok" and exits 0 on success)
import { NotificationCountType, check, login, newUser, passwordOf, run, start, step, until } from "./lib.mjs";

await run(async (baseUrl) => {
  step("alice and bob sign up");
  const alice = await newUser(baseUrl, "jsalice");
  const bob = await newUser(baseUrl, "jsbob");

  step("alice creates a named room and invites bob");
  const { room_id: roomId } = await alice.createRoom({ name: "js room", invite: [bob.getUserId()] });
  await until("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");

  step("bob joins");
  await bob.joinRoom(roomId);
  await until("bob joined, seen by alice", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");
  await until("the room's name at bob", () => bob.getRoom(roomId)?.name === "js room");

  step("alice types, bob sees it");
  await alice.sendTyping(roomId, true, 10_000);
  await until("alice typing at bob", () => bob.getRoom(roomId)?.getMember(alice.getUserId())?.typing);

  step("alice sends a message, bob receives it");
  const { event_id: eventId } = await alice.sendTextMessage(roomId, "hello from js");
  const seen = await until("the message at bob", () =>
    bob.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId),
  );
  check(seen.getContent().body === "hello from js", `wrong body ${JSON.stringify(seen.getContent())}`);

  step("bob's read receipt reaches alice");
  await bob.sendReadReceipt(seen);
  await until("bob's receipt at alice", () => {
    const room = alice.getRoom(roomId);
    return room?.getUsersReadUpTo(room.findEventById(eventId))?.includes(bob.getUserId());
  });

  // In an unencrypted room the SDK takes the room's counts from the server's
  // `unread_notifications`, so these steps check the server's push-rule counting.
  step("three more messages count as three unread at bob");
  const total = () => bob.getRoom(roomId)?.getUnreadNotificationCount(NotificationCountType.Total);
  let last;
  for (const body of ["one", "two", "three"]) last = (await alice.sendTextMessage(roomId, body)).event_id;
  await until(`bob's unread count to be 3 (it is ${total()})`, () => total() === 3);

  step("bob's receipt on the last one clears his unread count");
  const lastAtBob = await until("the last message at bob", () => bob.getRoom(roomId)?.findEventById(last));
  await bob.sendReadReceipt(lastAtBob);
  await until(`bob's unread count to be 0 (it is ${total()})`, () => total() === 0);

  step("a new device of bob starts with nothing unread");
  const bob2 = await start(baseUrl, await login(baseUrl, bob.getUserId(), passwordOf(bob), "bob's second device"));
  const fresh = bob2.getRoom(roomId);
  check(fresh, "the room is missing from the new device's first sync");
  const count = fresh.getUnreadNotificationCount(NotificationCountType.Total);
  check(count === 0, `the new device's first sync counts ${count} unread`);

  step("alice sends a picture, bob downloads it as Element Web does (authenticated media)");
  const picture = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "binary"), Buffer.alloc(200_000, 7)]);
  const { content_uri: mxc } = await alice.uploadContent(picture, { type: "image/png", name: "cat.png" });
  const { event_id: imageId } = await alice.sendMessage(roomId, {
    msgtype: "m.image", body: "cat.png", url: mxc, info: { mimetype: "image/png", size: picture.length },
  });
  const image = await until("the picture at bob", () => bob.getRoom(roomId)?.findEventById(imageId));
  const url = bob.mxcUrlToHttp(image.getContent().url, undefined, undefined, undefined, false, true, true);
  const got = await fetch(url, { headers: { Authorization: `Bearer ${bob.getAccessToken()}` } });
  check(got.ok, `downloading ${url}: ${got.status}`);
  const bytes = Buffer.from(await got.arrayBuffer());
  check(bytes.equals(picture), `the download differs: ${bytes.length} bytes, ${picture.length} uploaded`);
  check(got.headers.get("content-type") === "image/png", `content-type ${got.headers.get("content-type")}`);
});
