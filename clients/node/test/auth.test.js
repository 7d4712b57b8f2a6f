// The client against a real voice-bridge that requires API keys (VOICE_BRIDGE_API_KEYS): the
// right key gets audio whichever way it is sent (Authorization header, or `?token=` with
// auth: "query"), and a wrong or missing key is refused before the WebSocket opens, with an
// error that says so and does not repeat the key. One server for the whole file.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { BridgeError, connect } from "voice-bridge-client";

import { startBridge } from "./helpers/bridge.js";

const KEYS = ["first-key-3f9a", "second-key-71c2"];
const WRONG = "not-a-key-b40e";
const RATE = 48000;

let bridge;

before(async () => {
  bridge = await startBridge({ env: { VOICE_BRIDGE_API_KEYS: KEYS.join(",") } });
});

after(async () => {
  await bridge?.stop();
});

/** Speak a short reply on a connected client; the seconds of audio it got back. */
async function secondsSpoken(client) {
  const pcm = await client.speak("Hello there.");
  return pcm.length / RATE;
}

/**
 * connect() must reject with a BridgeError naming the URL, the server's HTTP 401 and its reason
 * ("cannot connect to ws://…/ws/stream: HTTP 401 (a valid API key is required …)"), without the key.
 */
async function assertRefused(options, key) {
  await assert.rejects(connect(bridge.url, options), (error) => {
    assert.ok(error instanceof BridgeError, `not a BridgeError: ${error}`);
    assert.match(error.message, /cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws\/stream/);
    assert.match(error.message, /HTTP 401 \(.*API key/, error.message);
    if (key) assert.ok(!error.message.includes(key), `the key leaks into the error: ${error.message}`);
    return true;
  });
}

test("the bridge really requires a key: /ws/stream answers 401 without one, not with one", async () => {
  // Guards the tests below against a bridge that ignored VOICE_BRIDGE_API_KEYS (then every
  // connection would succeed) or refused everyone (then the refusals would prove nothing).
  const refused = await fetch(`${bridge.httpUrl}/ws/stream`);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get("www-authenticate") ?? "", /^Bearer/);
  assert.match((await refused.json()).error, /API key/);
  const admitted = await fetch(`${bridge.httpUrl}/ws/stream`, { headers: { Authorization: `Bearer ${KEYS[0]}` } });
  await admitted.arrayBuffer();
  assert.notEqual(admitted.status, 401); // past the key check (then refused as not a WebSocket)
  // Public routes stay open.
  assert.equal((await fetch(`${bridge.httpUrl}/health`)).status, 200);
});

test("the right key in the Authorization header gets audio", async () => {
  const client = await connect(bridge.url, { apiKey: KEYS[0] });
  assert.equal(client.ready.sample_rate, RATE);
  const seconds = await secondsSpoken(client);
  assert.ok(seconds > 0.3 && seconds < 5, `${seconds} s`);
  assert.deepEqual(client.errors, []);
  await client.close();
});

test('the right key as ?token= (auth: "query") gets audio; any configured key works', async () => {
  const client = await connect(bridge.url, { apiKey: KEYS[1], auth: "query" });
  const seconds = await secondsSpoken(client);
  assert.ok(seconds > 0.3 && seconds < 5, `${seconds} s`);
  await client.close();
});

test("a wrong key is refused, in the header or in the query, and the error hides it", async () => {
  await assertRefused({ apiKey: WRONG }, WRONG);
  await assertRefused({ apiKey: WRONG, auth: "query" }, WRONG);
  await assert.rejects(connect(bridge.url, { apiKey: WRONG, auth: "query" }), /\/ws\/stream\?token=\*\*\*: /);
  // A key that is only a prefix of a real one is wrong too.
  await assertRefused({ apiKey: KEYS[0].slice(0, -1) }, KEYS[0].slice(0, -1));
});

test("no key at all is refused", async () => {
  await assertRefused({});
  await assertRefused({ auth: "query" });
});

test("a refusal leaves the bridge serving: the right key still connects afterwards", async () => {
  await assertRefused({ apiKey: WRONG });
  const client = await connect(bridge.url, { apiKey: KEYS[0], auth: "query" });
  assert.ok((await secondsSpoken(client)) > 0.3);
  await client.close();
});
