// Two people chat through a homeserver with matrix-js-sdk, the SDK inside Element Web: the
// client's own sync loop, room list, invites, timeline, typing and read receipts.
//
// usage: node chat.mjs BASE_URL      (prints "ok" and exits 0 on success)
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel("error");
const baseUrl = process.argv[2];
const deadline = Date.now() + 30_000;

async function until(what, check) {
  for (;;) {
    const found = await check();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function register(name) {
  const anon = sdk.createClient({ baseUrl });
  const res = await anon.register(name, `pw-${name}`, null, { type: "m.login.dummy" });
  const client = sdk.createClient({ baseUrl, accessToken: res.access_token, userId: res.user_id, deviceId: res.device_id });
  await client.startClient({ initialSyncLimit: 10 });
  await until(`${name}'s first sync`, () => client.isInitialSyncComplete());
  return client;
}

const suffix = Math.floor(Math.random() * 1e9);
const alice = await register(`jsalice${suffix}`);
const bob = await register(`jsbob${suffix}`);
try {
  const { room_id: roomId } = await alice.createRoom({ name: "js room", invite: [bob.getUserId()] });
  await until("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
  await bob.joinRoom(roomId);
  await until("bob joined at alice", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

  await alice.sendTyping(roomId, true, 10_000);
  await until("alice typing at bob", () => bob.getRoom(roomId)?.getMember(alice.getUserId())?.typing);
  const { event_id: eventId } = await alice.sendTextMessage(roomId, "hello from js");
  const seen = await until("the message at bob", () =>
    bob.getRoom(roomId)?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId),
  );
  if (seen.getContent().body !== "hello from js") throw new Error("wrong body");
  if (bob.getRoom(roomId).name !== "js room") throw new Error(`room name ${bob.getRoom(roomId).name}`);

  await bob.sendReadReceipt(seen);
  await until("bob's receipt at alice", () =>
    alice.getRoom(roomId)?.getUsersReadUpTo(alice.getRoom(roomId).findEventById(eventId))?.includes(bob.getUserId()),
  );
  console.log("ok");
} finally {
  alice.stopClient();
  bob.stopClient();
}
process.exit(0);
