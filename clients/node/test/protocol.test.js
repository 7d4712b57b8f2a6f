// The client against a scripted in-process server (ws's WebSocketServer): what goes on the wire,
// auth, event handling, and backpressure, deterministically. The real bridge is in bridge.test.js.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, test } from "node:test";

import { WebSocketServer } from "ws";

import { BridgeError, connect } from "voice-bridge-client";

const READY = { type: "ready", session: "s1", version: "test", sample_rate: 48000, channels: 1, format: "f32le", frame_ms: 20, tts: "fake", voice: null, voices: [] };

let wss;
let url;
/** The current test's handler: (socket, request) => void. */
let onSession = () => {};

before(async () => {
  wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await once(wss, "listening");
  url = `ws://127.0.0.1:${wss.address().port}/ws/stream`;
  wss.on("connection", (socket, request) => onSession(socket, request));
});

after(() => {
  for (const socket of wss.clients) socket.terminate();
  return new Promise((resolve) => wss.close(resolve));
});

/** A fake bridge session: records text frames, answers config with ready. */
function fakeSession(script = {}) {
  const session = { messages: [], request: null, socket: null };
  session.opened = new Promise((resolve) => {
    onSession = (socket, request) => {
      session.socket = socket;
      session.request = request;
      socket.on("message", (data, isBinary) => {
        if (isBinary) return;
        const message = JSON.parse(data.toString());
        session.messages.push(message);
        if (message.type === "config" && message.events) {
          if (script.onConfig) script.onConfig(socket, message);
          else socket.send(JSON.stringify({ ...READY, format: message.format }));
        } else {
          script.onMessage?.(socket, message);
        }
      });
      resolve();
    };
  });
  return session;
}

function frame(values) {
  return Buffer.from(new Float32Array(values).buffer);
}

test("the API key goes in an Authorization header by default", async () => {
  const session = fakeSession();
  const client = await connect(url, { apiKey: "sekrit" });
  assert.equal(session.request.headers.authorization, "Bearer sekrit");
  assert.equal(new URL(session.request.url, "http://x").searchParams.get("token"), null);
  await client.close();
});

test("auth: 'query' sends the key as ?token= (for clients that cannot set headers)", async () => {
  const session = fakeSession();
  const client = await connect(`${url}?x=1`, { apiKey: "k e/y", auth: "query" });
  const query = new URL(session.request.url, "http://x").searchParams;
  assert.equal(query.get("token"), "k e/y");
  assert.equal(query.get("x"), "1");
  assert.equal(session.request.headers.authorization, undefined);
  await client.close();
});

test("connect sends one config turning events on, with voice, pitch and format", async () => {
  const session = fakeSession();
  const client = await connect(url, { voice: "miku", pitchShift: 3, format: "s16le" });
  assert.deepEqual(session.messages, [{ type: "config", events: true, format: "s16le", voice: "miku", pitch_shift: 3 }]);
  assert.equal(client.ready.format, "s16le");
  assert.equal(client.format, "s16le");
  await client.close();
});

test("tokens, flush, cancel and configure are the protocol's frames", async () => {
  const session = fakeSession({
    onMessage(socket, message) {
      if (message.flush) socket.send(JSON.stringify({ type: "flushed", segments: 0, audio_seconds: 0 }));
      if (message.type === "cancel") socket.send(JSON.stringify({ type: "cancelled" }));
    },
  });
  const client = await connect(url);
  client.sendToken("Hel");
  client.sendToken("lo", { pitchShift: -2 });
  const end = await client.flush();
  assert.deepEqual(end, { type: "flushed", segments: 0, audio_seconds: 0 });
  client.configure({ voice: null, pitchShift: 1.5, format: "s16le" });
  assert.equal(client.format, "s16le");
  await client.cancel();
  assert.deepEqual(session.messages.slice(1), [
    { token: "Hel" },
    { token: "lo", pitch_shift: -2 },
    { flush: true },
    { type: "config", voice: "", pitch_shift: 1.5, format: "s16le" },
    { type: "cancel" },
  ]);
  await client.close();
});

test("format cannot change in the middle of an utterance", async () => {
  fakeSession();
  const client = await connect(url);
  client.sendToken("Hello");
  assert.throws(() => client.configure({ format: "s16le" }), BridgeError);
  client.flush(); // never answered: the promise rejects when the connection closes
  assert.throws(() => client.configure({ format: "s16le" }), BridgeError);
  assert.equal(client.format, "f32le");
  await client.close();
});

test("a config error before ready rejects connect", async () => {
  fakeSession({
    onConfig(socket) {
      socket.send(JSON.stringify({ type: "error", error: "unknown voice 'nobody'" }));
    },
  });
  await assert.rejects(connect(url, { voice: "nobody" }), (error) => error instanceof BridgeError && /unknown voice/.test(error.message));
});

test("nothing listening: connect rejects with BridgeError", async () => {
  await assert.rejects(connect("ws://127.0.0.1:9/ws/stream", { openTimeout: 2000 }), BridgeError);
});

test("server errors are events, never thrown, and the session goes on", async () => {
  fakeSession({
    onMessage(socket, message) {
      if (message.token === "bad") socket.send(JSON.stringify({ type: "error", error: "nope" }));
      if (message.flush) {
        socket.send(frame([0.5]));
        socket.send(JSON.stringify({ type: "flushed", segments: 1, audio_seconds: 0 }));
      }
    },
  });
  const client = await connect(url);
  client.sendToken("bad"); // no 'error' listener: must not throw
  await new Promise((resolve) => setTimeout(resolve, 50));
  const seen = [];
  client.on("error", (event) => seen.push(event.error));
  client.sendToken("bad");
  client.sendToken("good");
  const end = client.flush();
  const items = [];
  for await (const chunk of client.audio()) items.push(...chunk);
  assert.deepEqual(items, [0.5]);
  assert.equal((await end).type, "flushed");
  assert.deepEqual(client.errors, ["nope", "nope"]);
  assert.deepEqual(seen, ["nope"]);
  await client.close();
});

test("frames arriving at odd offsets in ws's buffers decode exactly", async () => {
  // Frames of 1..40 samples after 1..3-byte text frames: payloads land at every alignment.
  const sent = [];
  fakeSession({
    onMessage(socket, message) {
      if (!message.flush) return;
      for (let n = 1; n <= 40; n++) {
        socket.send(JSON.stringify({ type: "segment", id: n, text: "x".repeat(n % 3) }));
        const values = Array.from({ length: n }, (_, i) => Math.fround(Math.sin(n * 100 + i)));
        sent.push(...values);
        socket.send(frame(values));
      }
      socket.send(JSON.stringify({ type: "flushed", segments: 40, audio_seconds: 0 }));
    },
  });
  const client = await connect(url);
  const segments = [];
  client.on("segment", (event) => segments.push(event.id));
  client.flush();
  const received = [];
  for await (const chunk of client.audio()) {
    assert.ok(chunk instanceof Float32Array);
    received.push(...chunk);
  }
  assert.deepEqual(received, sent);
  assert.equal(segments.length, 40);
  await client.close();
});

test("backpressure: the socket pauses above the high-water mark and resumes below the low one", async () => {
  const total = 600;
  fakeSession({
    onMessage(socket, message) {
      if (!message.flush) return;
      for (let i = 0; i < total; i++) socket.send(frame(new Array(960).fill(i / total)));
      socket.send(JSON.stringify({ type: "flushed", segments: 1, audio_seconds: (total * 960) / 48000 }));
    },
  });
  const client = await connect(url, { highWaterMark: 20, lowWaterMark: 5 });
  const pauses = [];
  client.on("pause", () => pauses.push(client.queued));
  client.on("resume", () => assert.ok(client.queued <= 5));
  const end = client.flush();
  // Nobody reads: the queue fills to the high-water mark, then reading stops.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(client.paused, true);
  const stalled = client.queued;
  assert.ok(stalled >= 20, `queued ${stalled}`);
  // ws may still deliver what it had already read from the socket (one TCP read's worth).
  assert.ok(stalled < 20 + 70, `queued ${stalled}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(client.queued, stalled, "nothing more is read while paused");
  // A slow consumer gets every frame, in order.
  let count = 0;
  for await (const chunk of client.audio()) {
    assert.equal(chunk[0], Math.fround(count / total));
    count += 1;
    if (count % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(count, total);
  assert.equal((await end).type, "flushed");
  assert.ok(client.stats.pauses >= 2, `paused ${client.stats.pauses} times`);
  assert.ok(client.stats.maxQueued < 20 + 70);
  assert.equal(client.paused, false);
  assert.equal(pauses[0], 20);
  await client.close();
});

test("cancel drops audio in flight until `cancelled`, and ends audio() and pending flushes", async () => {
  let flushes = 0;
  fakeSession({
    onMessage(socket, message) {
      if (message.flush && ++flushes === 1) {
        socket.send(JSON.stringify({ type: "segment", id: 1, text: "old" }));
        socket.send(frame([0.1]));
      }
      if (message.type === "cancel") {
        // Already on the wire before the server saw the cancel:
        socket.send(frame([0.2]));
        socket.send(JSON.stringify({ type: "segment", id: 2, text: "stale" }));
        socket.send(JSON.stringify({ type: "flushed", segments: 2, audio_seconds: 1 }));
        socket.send(JSON.stringify({ type: "cancelled" }));
      }
      if (message.flush && flushes === 2) {
        socket.send(JSON.stringify({ type: "segment", id: 3, text: "new" }));
        socket.send(frame([0.3]));
        socket.send(JSON.stringify({ type: "flushed", segments: 1, audio_seconds: 0 }));
      }
    },
  });
  const client = await connect(url);
  const segments = [];
  client.on("segment", (event) => segments.push(event.text));
  client.sendToken("old");
  const end = client.flush();
  const first = [];
  const iterator = client.audio();
  first.push(...(await iterator.next()).value);
  const cancelled = client.cancel();
  const rest = [];
  for await (const chunk of iterator) rest.push(...chunk);
  await cancelled;
  assert.deepEqual(await end, { type: "cancelled" });
  assert.deepEqual(first, [Math.fround(0.1)]);
  assert.deepEqual(rest, []);
  client.sendToken("new");
  const end2 = client.flush();
  const next = [];
  for await (const chunk of client.audio()) next.push(...chunk);
  assert.deepEqual(next, [Math.fround(0.3)]);
  assert.equal((await end2).type, "flushed");
  assert.deepEqual(segments, ["old", "new"]);
  await client.close();
});

test("a connection that closes rejects pending flushes and ends the audio iterator", async () => {
  fakeSession({
    onMessage(socket, message) {
      if (message.flush) socket.close(1011, "boom");
    },
  });
  const client = await connect(url);
  client.sendToken("x");
  const end = client.flush();
  await assert.rejects(end, (error) => error instanceof BridgeError && /1011/.test(error.message));
  await assert.rejects(async () => {
    for await (const chunk of client.audio()) void chunk;
  }, BridgeError);
  assert.throws(() => client.sendToken("y"), BridgeError);
  assert.equal(client.closed, true);
  await client.close();
});
