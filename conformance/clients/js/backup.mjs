// Element Web's "Secure Backup" with its Rust crypto: secret storage under a recovery key
// (account data), a server-side key backup (room_keys), and a device added later that, given the
// recovery key, cross-signs itself from secret storage and reads messages sent before it
// existed, from the backup.
//
// usage: node backup.mjs BASE_URL      (prints "ok" and exits 0 on success)
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/index.js";

import { check, login, newUser, passwordOf, run, sharedRoom, start, step, until } from "./lib.mjs";

const MEGOLM = "m.megolm.v1.aes-sha2";

// What Element does when it needs a secret: ask the user for the recovery key, here `getKey()`.
const recoveryKeyCallbacks = (getKey) => ({
  getSecretStorageKey: async ({ keys }) => {
    const keyId = Object.keys(keys)[0];
    const key = getKey();
    return keyId && key ? [keyId, key] : null;
  },
});

await run(async (baseUrl) => {
  step("alice and bob sign up with the Rust crypto");
  let recoveryKey;
  const alice = await newUser(baseUrl, "jsalice", { crypto: true, cryptoCallbacks: recoveryKeyCallbacks(() => recoveryKey?.privateKey) });
  const bob = await newUser(baseUrl, "jsbob", { crypto: true });
  const crypto = alice.getCrypto();

  step("alice sets up cross-signing, secret storage and key backup");
  // Element's set-up: cross-signing first, then secret storage with a new recovery key, which
  // also creates the key backup and stores the secrets (cross-signing keys, backup key) in it.
  await crypto.bootstrapCrossSigning({});
  await crypto.bootstrapSecretStorage({
    setupNewSecretStorage: true,
    setupNewKeyBackup: true,
    createSecretStorageKey: async () => (recoveryKey = await crypto.createRecoveryKeyFromPassphrase()),
  });
  check(recoveryKey?.encodedPrivateKey, "no recovery key was made");
  await until("alice's secret storage ready", () => crypto.isSecretStorageReady());
  const version = await until("alice's key backup active", () => crypto.getActiveSessionBackupVersion());
  const info = await crypto.getKeyBackupInfo();
  check(info?.version === version, `the server's current backup is ${info?.version}, alice backs up to ${version}`);

  step("bob writes in an encrypted room, alice reads it");
  const roomId = await sharedRoom(alice, [bob], {
    name: "backed-up room",
    preset: "private_chat",
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
  });
  await until("bob knows alice's device", async () =>
    (await bob.getCrypto().getUserDeviceInfo([alice.getUserId()])).get(alice.getUserId())?.has(alice.getDeviceId()),
  );
  const { event_id: oldId } = await bob.sendTextMessage(roomId, "sent before alice's laptop");
  const decrypted = (client, eventId, body) =>
    until(`"${body}" decrypted at ${client.getUserId()}/${client.getDeviceId()}`, () => {
      const ev = client.getRoom(roomId)?.findEventById(eventId);
      return ev && !ev.isBeingDecrypted() && !ev.isDecryptionFailure() && ev.getClearContent()?.body === body && ev;
    });
  await decrypted(alice, oldId, "sent before alice's laptop");

  step("alice's device backs the room key up");
  // The backup's key count, as the server reports it with the backup's version.
  await until("the room key in alice's backup", async () => {
    const current = await alice.http.authedRequest("GET", "/room_keys/version");
    return current.count > 0 && current.version === version;
  });
  const keys = await alice.http.authedRequest("GET", "/room_keys/keys", { version });
  check(keys.rooms?.[roomId], `the backup holds no session for the room: ${JSON.stringify(keys)}`);

  step("alice logs in on a laptop and enters her recovery key");
  // Typed in as Element shows it, and decoded as Element does.
  const typed = decodeRecoveryKey(recoveryKey.encodedPrivateKey);
  const laptop = await start(baseUrl, await login(baseUrl, alice.getUserId(), passwordOf(alice), "alice's laptop"), {
    crypto: true,
    cryptoCallbacks: recoveryKeyCallbacks(() => typed),
  });
  const laptopCrypto = laptop.getCrypto();
  const old = await until("the old message at the laptop", () => laptop.getRoom(roomId)?.findEventById(oldId));
  check(old.getWireType() === "m.room.encrypted", `the old message is a ${old.getWireType()}`);

  step("the laptop cross-signs itself with the keys from secret storage");
  // Element's "verify with recovery key": it first makes sure the device has fetched the
  // account's public cross-signing keys (the private ones from secret storage must match them),
  // then the private keys come out of secret storage and sign the new device.
  check(await laptopCrypto.userHasCrossSigningKeys(alice.getUserId(), true), "the laptop finds no cross-signing keys");
  await until("alice's identity known to the laptop", async () => (await laptopCrypto.getCrossSigningStatus()).publicKeysOnDevice);
  await laptopCrypto.bootstrapCrossSigning({});
  await until("the laptop cross-signed, seen by itself", async () =>
    (await laptopCrypto.getDeviceVerificationStatus(alice.getUserId(), laptop.getDeviceId()))?.crossSigningVerified,
  );
  await until("the laptop signed by alice, seen by bob", async () =>
    (await bob.getCrypto().getDeviceVerificationStatus(alice.getUserId(), laptop.getDeviceId()))?.signedByOwner,
  );

  step("the laptop restores the key backup and reads the old message");
  await laptopCrypto.loadSessionBackupPrivateKeyFromSecretStorage();
  const found = await laptopCrypto.checkKeyBackupAndEnable();
  check(found?.backupInfo?.version === version, `the laptop found backup ${found?.backupInfo?.version}, not ${version}`);
  const restored = await laptopCrypto.restoreKeyBackup();
  check(restored.imported > 0, `restoring imported ${restored.imported} of ${restored.total} keys`);
  await decrypted(laptop, oldId, "sent before alice's laptop");

  step("new messages reach both of alice's devices");
  const { event_id: newId } = await bob.sendTextMessage(roomId, "hello, both of you");
  await decrypted(alice, newId, "hello, both of you");
  await decrypted(laptop, newId, "hello, both of you");
});
