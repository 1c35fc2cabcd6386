// What every scenario shares: signing up and logging in the way Element Web does, starting a
// client with Element's sync options (and, on request, its Rust crypto), polling with a
// deadline, and running a scenario so that a failure names the step it happened in.
import * as sdk from "matrix-js-sdk";

// A scenario fails in the step it is stuck in, not at the end of a global budget.
const STEP_TIMEOUT_MS = 20_000;
// No single request may hang a scenario; the sync long-poll sets its own, longer, limit.
const REQUEST_TIMEOUT_MS = 30_000;

// The SDK's loggers (each child logger sets its own level) and the Rust crypto's tracing layer
// all write through `console`, which is silenced unless JS_SDK_DEBUG=1; the scenario's own
// output goes to stdout directly.
if (!process.env.JS_SDK_DEBUG) {
  for (const method of ["log", "info", "debug", "warn", "error", "trace"]) console[method] = () => {};
}
const say = (line) => process.stdout.write(`${line}\n`);

/**
 * JS_SDK_TRACE=1 writes every request a started client makes, with the bodies (cut short), to
 * stderr: what the server was asked and said, for reporting a failure.
 */
function tracingFetch(who) {
  if (!process.env.JS_SDK_TRACE) return undefined;
  const cut = (text) => (text && text.length > 1500 ? `${text.slice(0, 1500)}...` : text ?? "");
  return async (url, init = {}) => {
    const { pathname, search } = new URL(url);
    const res = await fetch(url, init);
    const body = await res.clone().text();
    process.stderr.write(`[${who}] ${init.method ?? "GET"} ${pathname}${search} ${cut(init.body)}\n  -> ${res.status} ${cut(body)}\n`);
    return res;
  };
}

export const { AuthType, MatrixError, NotificationCountType } = sdk;

let current = "start";

/** Names the step that follows, on stdout, so that a failure shows how far the scenario got. */
export function step(name) {
  current = name;
  say(`- ${name}`);
}

/** Reports, on stdout, something worth knowing that does not fail the scenario. */
export function note(text) {
  say(`  note: ${text}`);
}

/** Polls `check` until it returns something truthy (which it returns), failing after a deadline. */
export async function until(what, check, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const found = await check();
      if (found) return found;
    } catch (e) {
      // A check may throw while the state it reads is still arriving; keep the error in case
      // it never does.
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fails with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** An unused localpart: every run registers fresh accounts on a long-lived server. */
function uniqueName(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
}

/**
 * Repeats `request` while the server answers 429, after waiting as long as it asks: Synapse
 * limits `/register/available` to about one call a second per address, which scenarios running
 * side by side exceed.
 */
async function patiently(request, timeoutMs = REQUEST_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await request();
    } catch (e) {
      if (!(e instanceof MatrixError) || e.httpStatus !== 429 || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, e.data?.retry_after_ms ?? 1000));
    }
  }
}

function anonymous(baseUrl) {
  return sdk.createClient({ baseUrl, localTimeoutMs: REQUEST_TIMEOUT_MS, fetchFn: tracingFetch("anonymous") });
}

/**
 * Signs up as Element Web does: checks the name is free, opens with a body holding nothing but
 * the device's display name to learn the flows (a 401 with `flows` and `session`), then lets the
 * SDK's InteractiveAuth pick the flow and complete its stages; on an open server that is the
 * single `m.login.dummy` stage, which InteractiveAuth submits by itself with the session.
 */
export async function register(baseUrl, localpart, password) {
  const anon = anonymous(baseUrl);
  check(await patiently(() => anon.isUsernameAvailable(localpart)), `${localpart} reported as taken`);
  const deviceName = `${localpart}'s first device`;

  const authData = await anon.registerRequest({ initial_device_display_name: deviceName }).then(
    (res) => {
      throw new Error(`POST /register without auth succeeded (${JSON.stringify(res)}); a 401 with the flows was due`);
    },
    (e) => {
      if (e instanceof MatrixError && e.httpStatus === 401 && e.data?.flows) return e.data;
      throw new Error(`POST /register without auth: expected 401 with flows, got ${e.httpStatus} ${JSON.stringify(e.data ?? e.message)}`);
    },
  );

  const { result: res } = await interactiveAuth({
    client: anon,
    authData,
    doRequest: (auth) =>
      anon.registerRequest({
        username: localpart,
        password,
        initial_device_display_name: deviceName,
        ...(auth ? { auth } : {}),
      }),
  });
  check(res.access_token && res.device_id && res.user_id, `registration response lacks credentials: ${JSON.stringify(res)}`);
  return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id, password };
}

/**
 * Drives the SDK's InteractiveAuth as Element's auth components do, with no one at the keyboard:
 * InteractiveAuth completes `m.login.dummy` by itself, the password stage gets `password` (once:
 * a second ask means it was refused), and any other stage fails. Without `authData` the first
 * request goes without auth, to learn whether auth is needed at all. Resolves to the request's
 * result and the stages the server asked the UI for.
 */
export async function interactiveAuth({ client, authData, doRequest, password }) {
  const stages = [];
  let fail;
  const failed = new Promise((_, reject) => (fail = reject));
  const ia = new sdk.InteractiveAuth({
    matrixClient: client,
    authData,
    sessionId: authData?.session,
    doRequest,
    stateUpdated: (stage, status) => {
      const answered = stages.includes(stage);
      stages.push(stage);
      if (stage === AuthType.Password && password && !answered) {
        ia.submitAuthDict({
          type: AuthType.Password,
          identifier: { type: "m.id.user", user: client.getUserId() },
          password,
        }).catch(fail);
      } else {
        fail(new Error(`cannot complete UIA stage ${stage} (${JSON.stringify(status)}), flows ${JSON.stringify(ia.getChosenFlow())}`));
      }
    },
    requestEmailToken: () => Promise.reject(new Error("UIA asked for an email")),
  });
  const result = await Promise.race([ia.attemptAuth(), failed]);
  return { result, stages };
}

/** Logs in a further device with the password, as Element's login form does. */
export async function login(baseUrl, userId, password, deviceName) {
  const anon = anonymous(baseUrl);
  const { flows } = await anon.loginFlows();
  check(flows.some((f) => f.type === "m.login.password"), `no password login among ${JSON.stringify(flows)}`);
  const res = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: userId },
    password,
    initial_device_display_name: deviceName,
  });
  return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id, password };
}

const started = [];
// The account password of each started client, for the UIA of later requests (cross-signing).
const passwords = new WeakMap();

/** The password `client`'s account was created or logged in with. */
export function passwordOf(client) {
  return passwords.get(client);
}

/**
 * Starts a client with the options Element Web starts its client with (lazy-loaded members,
 * threads, detached pending events), optionally with the Rust crypto in memory (and the
 * callbacks through which it asks the user, such as for the recovery key), and waits for the
 * first sync.
 */
export async function start(baseUrl, creds, { crypto = false, cryptoCallbacks } = {}) {
  const client = sdk.createClient({
    baseUrl,
    userId: creds.userId,
    accessToken: creds.accessToken,
    deviceId: creds.deviceId,
    localTimeoutMs: REQUEST_TIMEOUT_MS,
    fetchFn: tracingFetch(`${creds.userId}/${creds.deviceId}`),
    cryptoCallbacks,
  });
  passwords.set(client, creds.password);
  // Node has no IndexedDB; the in-memory store lives as long as the process, like the test.
  if (crypto) await client.initRustCrypto({ useIndexedDB: false });
  started.push(client);
  await client.startClient({
    initialSyncLimit: 20,
    lazyLoadMembers: true,
    threadSupport: true,
    pendingEventOrdering: sdk.PendingEventOrdering.Detached,
  });
  await until(`${creds.userId}'s first sync`, () => client.isInitialSyncComplete());
  return client;
}

/** A new account, signed up and started. */
export async function newUser(baseUrl, prefix, opts) {
  const localpart = uniqueName(prefix);
  const creds = await register(baseUrl, localpart, `pw-${localpart}`);
  return start(baseUrl, creds, opts);
}

/** Creates a room with `members` invited and waits until they have all joined, seen by everyone. */
export async function sharedRoom(owner, members, createOpts = {}) {
  const { room_id: roomId } = await owner.createRoom({ ...createOpts, invite: members.map((m) => m.getUserId()) });
  for (const m of members) {
    await until(`${m.getUserId()}'s invite`, () => m.getRoom(roomId)?.getMyMembership() === "invite");
    await m.joinRoom(roomId);
  }
  for (const viewer of [owner, ...members]) {
    for (const m of members) {
      await until(`${m.getUserId()} joined, seen by ${viewer.getUserId()}`, () =>
        viewer.getRoom(roomId)?.getMember(m.getUserId())?.membership === "join",
      );
    }
  }
  return roomId;
}

/**
 * Runs a scenario: prints "ok" and exits 0 on success; on failure prints the step and the error
 * and exits 1. Every client started meanwhile is stopped either way.
 */
export async function run(scenario) {
  const baseUrl = process.argv[2];
  if (!baseUrl) {
    say(`usage: node ${process.argv[1]} BASE_URL`);
    process.exit(2);
  }
  let code = 0;
  try {
    await scenario(baseUrl);
    say("ok");
  } catch (e) {
    say(`FAILED in step "${current}": ${e.stack ?? e}`);
    if (e instanceof MatrixError) say(`server answered ${e.httpStatus}: ${JSON.stringify(e.data)}`);
    code = 1;
  } finally {
    for (const client of started) client.stopClient();
  }
  // The SDK keeps timers (and the crypto its WASM) alive after stopClient.
  process.exit(code);
}
