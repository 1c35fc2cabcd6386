// End-to-end encryption with Element Web's crypto stack, the Rust crypto (matrix-sdk-crypto
// compiled to WASM) inside matrix-js-sdk: two people in a Megolm room write and read each other;
// cross-signing is bootstrapped and seen by the other side; a second device of one of them
// arrives later and reads and writes what is sent after; cross-signing is reset through
// interactive auth with the account password, and the other side notices the new identity.
//
// usage: node e2ee.mjs BASE_URL      (prints "ok" and exits 0 on success)
import { AuthType, check, interactiveAuth, login, newUser, passwordOf, run, sharedRoom, start, step, until } from "./lib.mjs";

const MEGOLM = "m.megolm.v1.aes-sha2";

await run(async (baseUrl) => {
  step("alice and bob sign up with the Rust crypto");
  const alice = await newUser(baseUrl, "jsalice", { crypto: true });
  const bob = await newUser(baseUrl, "jsbob", { crypto: true });
  for (const c of [alice, bob]) check(c.getCrypto()?.getVersion().startsWith("Rust SDK"), `crypto is ${c.getCrypto()?.getVersion()}`);

  step("alice creates an encrypted room, bob joins");
  const roomId = await sharedRoom(alice, [bob], {
    name: "secret room",
    preset: "private_chat",
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
  });
  for (const c of [alice, bob]) {
    await until(`encryption on at ${c.getUserId()}`, () => c.getCrypto().isEncryptionEnabledInRoom(roomId));
  }

  // The sender shares its room key with the devices it knows of when it sends; wait until it
  // knows them all (published keys/upload, fetched by keys/query), rather than racing that.
  const knowsDevice = (client, userId, deviceId) =>
    until(`${deviceId} of ${userId} in ${client.getUserId()}'s device list`, async () => {
      const devices = await client.getCrypto().getUserDeviceInfo([userId]);
      return devices.get(userId)?.has(deviceId);
    });
  await knowsDevice(alice, bob.getUserId(), bob.getDeviceId());
  await knowsDevice(bob, alice.getUserId(), alice.getDeviceId());

  // Sends `body` from `sender` and waits until every one of `readers` has decrypted it.
  const exchange = async (sender, body, readers) => {
    const { event_id: eventId } = await sender.sendTextMessage(roomId, body);
    for (const reader of readers) {
      const who = `${reader.getUserId()}/${reader.getDeviceId()}`;
      const ev = await until(`"${body}" at ${who}`, () => reader.getRoom(roomId)?.findEventById(eventId));
      check(ev.getWireType() === "m.room.encrypted", `"${body}" went out as ${ev.getWireType()}`);
      check(ev.getWireContent().algorithm === MEGOLM, `"${body}" encrypted with ${ev.getWireContent().algorithm}`);
      await until(`"${body}" decrypted at ${who}`, () => {
        // Failures are retried as room keys arrive; only a success ends the wait.
        return !ev.isBeingDecrypted() && !ev.isDecryptionFailure() && ev.getClearContent()?.body === body;
      });
      check(ev.getType() === "m.room.message", `"${body}" decrypted to a ${ev.getType()}`);
    }
  };

  step("alice writes, bob decrypts");
  await exchange(alice, "hello bob, privately", [bob]);

  step("bob writes, alice decrypts");
  await exchange(bob, "hello alice, privately", [alice]);

  // Bootstraps (or with `reset`, replaces) the client's cross-signing keys the way Element's
  // dialog does: the upload goes without auth first and, if the server asks for the password
  // stage, the account password follows. Returns the stages the server asked for.
  const bootstrapCrossSigning = async (client, reset = false) => {
    let stages = [];
    await client.getCrypto().bootstrapCrossSigning({
      setupNewCrossSigning: reset,
      authUploadDeviceSigningKeys: async (makeRequest) => {
        ({ stages } = await interactiveAuth({ client, doRequest: makeRequest, password: passwordOf(client) }));
      },
    });
    check(stages.every((s) => s === AuthType.Password), `cross-signing UIA went through stages ${stages}`);
    // Readiness is judged on the crypto's stored copy of the account's own identity, which may
    // lag the upload by a keys/query, so it is waited for.
    await until(`${client.getUserId()}'s cross-signing ready`, async () => {
      const st = await client.getCrypto().getCrossSigningStatus();
      const ready = st.publicKeysOnDevice && Object.values(st.privateKeysCachedLocally).every(Boolean);
      return ready && client.getCrypto().isCrossSigningReady();
    });
    return stages;
  };
  const signedByAlice = (viewer) =>
    until(`alice's device signed by her, seen by ${viewer.getUserId()}/${viewer.getDeviceId()}`, async () => {
      const v = await viewer.getCrypto().getDeviceVerificationStatus(alice.getUserId(), alice.getDeviceId());
      return v?.signedByOwner;
    });

  step("alice bootstraps cross-signing");
  // A first upload of keys may go without UIA (the spec lets servers waive it then); any stage
  // asked for is answered with the password.
  await bootstrapCrossSigning(alice);
  const firstMaster = await alice.getCrypto().getCrossSigningKeyId();

  step("bob sees alice's device signed by her self-signing key");
  // The keys and the signature on alice's device reach bob through keys/query, after the
  // server flags alice in his device_lists.changed.
  await signedByAlice(bob);

  step("bob logs in on a second device with the Rust crypto");
  const bob2 = await start(baseUrl, await login(baseUrl, bob.getUserId(), passwordOf(bob), "bob's laptop"), { crypto: true });
  await until("encryption on at bob's second device", () => bob2.getCrypto().isEncryptionEnabledInRoom(roomId));
  // The others learn of the new device from device_lists.changed in their syncs.
  await knowsDevice(alice, bob.getUserId(), bob2.getDeviceId());
  await knowsDevice(bob, bob.getUserId(), bob2.getDeviceId());
  await knowsDevice(bob2, alice.getUserId(), alice.getDeviceId());
  await signedByAlice(bob2);

  step("alice writes, both of bob's devices decrypt");
  await exchange(alice, "hello to both of you", [bob, bob2]);

  step("bob's first device writes, his second device and alice decrypt");
  await exchange(bob, "from my phone", [bob2, alice]);

  step("bob's second device writes, alice and his first device decrypt");
  await exchange(bob2, "from my laptop", [alice, bob]);

  step("alice resets cross-signing, which needs her password");
  // Done well after the first bootstrap: the Rust crypto drops the private keys it just made
  // if a keys/query it sent for its own user (on an earlier device_lists change) answers with
  // the old keys while the reset waits for its password, a client-side race.
  const stages = await bootstrapCrossSigning(alice, true);
  check(stages.includes(AuthType.Password), "replacing the cross-signing keys went without the password stage");
  const newMaster = await alice.getCrypto().getCrossSigningKeyId();
  check(newMaster && newMaster !== firstMaster, "the reset kept the old master key");

  step("bob's Rust crypto notices alice's identity changed");
  // Element warns about a reset identity; the crypto pinned the first one bob saw.
  await until("alice's new identity flagged at bob", async () =>
    (await bob.getCrypto().getUserVerificationStatus(alice.getUserId())).needsUserApproval,
  );

  step("messages still flow after the reset");
  await exchange(alice, "signed and sealed", [bob, bob2]);
  await exchange(bob2, "received", [alice, bob]);
});
