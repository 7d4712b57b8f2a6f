// The client against a real voice-bridge (python -m bridge serve) on a free port: one server
// for the whole file. Nothing here depends on where the server cuts segments.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { BridgeError, connect, wordPieces } from "voice-bridge-client";

import { startBridge } from "./helpers/bridge.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPLY = "Sure! Your table for two is booked at 7:45 tonight. Dr. Patel will meet you at the door.";
const LONG_REPLY = [
  "Here is the plan for your trip.",
  "On Monday you fly to Lisbon, and the flight leaves at 8:15 in the morning.",
  "On Tuesday you take the train to Porto, which takes about three hours.",
  "On Wednesday there is a guided tour of the old town and the river.",
].join(" ");
const RATE = 48000;

let bridge;

before(async () => {
  bridge = await startBridge();
});

after(async () => {
  await bridge?.stop();
});

const words = (text) => text.split(/\s+/).filter(Boolean);
const peak = (chunks) => chunks.reduce((m, c) => c.reduce((n, v) => Math.max(n, Math.abs(v)), m), 0);

test("streams an utterance: segment events, Float32Array audio, and a flushed promise", async () => {
  const client = await connect(bridge.url, { apiKey: "test-key" });
  assert.equal(client.ready.sample_rate, RATE);
  assert.equal(client.ready.format, "f32le");
  const events = [];
  client.on("segment", (event) => events.push(event));
  client.on("flushed", (event) => events.push(event));
  const started = performance.now();
  for (const token of wordPieces(REPLY)) client.sendToken(token);
  const end = client.flush();
  const chunks = [];
  let firstAudioMs;
  for await (const chunk of client.audio()) {
    firstAudioMs ??= performance.now() - started;
    assert.ok(chunk instanceof Float32Array);
    chunks.push(chunk);
  }
  const flushed = await end;
  assert.equal(flushed.type, "flushed");
  const samples = chunks.reduce((n, c) => n + c.length, 0);
  assert.ok(Math.abs(samples / RATE - flushed.audio_seconds) < 0.01, `${samples / RATE} vs ${flushed.audio_seconds}`);
  assert.ok(samples / RATE > 3 && samples / RATE < 12, `${samples / RATE} s`);
  assert.ok(peak(chunks) > 0.1 && peak(chunks) <= 1);
  const segments = events.filter((e) => e.type === "segment");
  assert.ok(segments.length >= 1 && segments.length === flushed.segments);
  assert.deepEqual(words(segments.map((s) => s.text).join(" ")), words(REPLY));
  assert.equal(events.at(-1).type, "flushed");
  assert.deepEqual(client.errors, []);
  console.log(`# first audio after ${firstAudioMs.toFixed(0)} ms (all tokens at once)`);
  await client.close();
});

test("s16le gives Int16Array chunks; format switches between utterances", async () => {
  const client = await connect(bridge.url, { format: "s16le" });
  assert.equal(client.ready.format, "s16le");
  const pcm16 = await client.speak(wordPieces("Sixteen bits, please."), { tokensPerSecond: 70 });
  assert.ok(pcm16 instanceof Int16Array);
  assert.ok(pcm16.length / RATE > 0.5);
  assert.ok(pcm16.reduce((m, v) => Math.max(m, Math.abs(v)), 0) > 3000);
  client.configure({ format: "f32le" });
  const pcm32 = await client.speak("And now floats.");
  assert.ok(pcm32 instanceof Float32Array);
  assert.ok(pcm32.length / RATE > 0.5 && peak([pcm32]) > 0.1 && peak([pcm32]) <= 1);
  await client.close();
});

test("cancel mid-utterance stops the audio at once and the session goes on", async () => {
  const client = await connect(bridge.url);
  const segments = [];
  client.on("segment", (event) => segments.push(event.text));
  for (const token of wordPieces(LONG_REPLY)) client.sendToken(token);
  const end = client.flush();
  let before = 0;
  for await (const chunk of client.audio()) {
    before += chunk.length;
    if (before >= RATE / 10) break; // 100 ms in: the user interrupts
  }
  const cancelled = await client.cancel();
  assert.equal(cancelled.type, "cancelled");
  assert.deepEqual(await end, cancelled);
  assert.ok(LONG_REPLY.startsWith(cancelled.heard), cancelled.heard);
  assert.equal(client.queued, 1); // the `cancelled` event itself
  let leftover = 0;
  for await (const chunk of client.audio()) leftover += chunk.length;
  assert.equal(leftover, 0, "no audio of the cancelled reply after cancel()");
  segments.length = 0;
  client.sendToken("New");
  client.sendToken(" topic.");
  const next = client.flush();
  let samples = 0;
  for await (const chunk of client.audio()) samples += chunk.length;
  assert.equal((await next).type, "flushed");
  assert.ok(samples / RATE > 0.3);
  assert.deepEqual(words(segments.join(" ")), ["New", "topic."]);
  await client.close();
});

test("word timings are opt-in, come before their audio, and cancel says what was heard", async () => {
  const plain = await connect(bridge.url);
  const seen = [];
  plain.on("words", (event) => seen.push(event));
  for (const token of wordPieces("Nothing new here.")) plain.sendToken(token);
  const plainEnd = plain.flush();
  for await (const item of plain.receive()) {
    assert.notEqual(item.type, "words");
    if (item.type === "flushed") break;
  }
  await plainEnd;
  await plain.close();
  assert.equal(seen.length, 0, "a client that does not ask gets no word events");

  const client = await connect(bridge.url, { words: true });
  const emitted = [];
  client.on("words", (event) => emitted.push(event));
  for (const token of wordPieces(LONG_REPLY)) client.sendToken(token);
  const end = client.flush();
  const timed = [];
  let received = 0;
  for await (const item of client.receive()) {
    if (item.type === "audio") {
      received += item.samples.length;
      if (received >= 2 * RATE) break;
    } else if (item.type === "words") {
      assert.ok(received / RATE <= item.words[0].start + 1e-3, "words come before the audio they time");
      timed.push(...item.words);
    }
  }
  assert.deepEqual(emitted.flatMap((e) => e.words).slice(0, timed.length), timed);
  const starts = timed.map((w) => w.start);
  assert.deepEqual(starts, [...starts].sort((a, b) => a - b));
  assert.deepEqual(timed.map((w) => w.text), words(LONG_REPLY).slice(0, timed.length));
  const cancelled = await client.cancel({ playedSeconds: 1.2 });
  assert.equal((await end).type, "cancelled");
  assert.equal(cancelled.heard_seconds, 1.2);
  assert.equal(cancelled.heard, timed.filter((w) => w.start < 1.2).map((w) => w.text).join(" "));
  assert.ok(cancelled.heard.length > 0 && LONG_REPLY.startsWith(cancelled.heard));
  assert.throws(() => client.cancel({ playedSeconds: -1 }), RangeError);
  await client.close();
});

test("server errors arrive as events and the session goes on; a bad voice rejects connect", async () => {
  await assert.rejects(connect(bridge.url, { voice: "nobody" }), (error) => error instanceof BridgeError && /unknown voice/.test(error.message));
  const client = await connect(bridge.url);
  const seen = new Promise((resolve) => client.once("error", resolve));
  client.configure({ voice: "nobody" });
  assert.match((await seen).error, /unknown voice/);
  client.sendToken("x", { pitchShift: 99 });
  const audio = await client.speak("Still here.");
  assert.ok(audio.length / RATE > 0.3);
  assert.equal(client.errors.length, 2);
  assert.match(client.errors[1], /pitch_shift/);
  await client.close();
});

test("backpressure: a consumer that lags pauses the socket, then gets every frame", async () => {
  const client = await connect(bridge.url, { highWaterMark: 16, lowWaterMark: 4 });
  const pauses = [];
  client.on("pause", () => pauses.push(client.queued));
  for (const token of wordPieces(LONG_REPLY)) client.sendToken(token);
  const end = client.flush();
  const deadline = Date.now() + 30000;
  while (!client.paused && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(client.paused, true, "the socket is paused while nobody reads");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const stalled = client.queued;
  assert.ok(stalled >= 16 && stalled < 16 + 70, `queued ${stalled}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(client.queued, stalled, "nothing is read while paused");
  let samples = 0;
  for await (const chunk of client.audio()) samples += chunk.length;
  const flushed = await end;
  assert.ok(Math.abs(samples / RATE - flushed.audio_seconds) < 0.01);
  assert.ok(client.stats.pauses >= 2, `paused ${client.stats.pauses} times`);
  assert.ok(client.stats.maxQueued < 16 + 70);
  assert.equal(pauses[0], 16);
  assert.equal(client.paused, false);
  await client.close();
});

test("the README's snippets run as written", async () => {
  const readme = await readFile(path.join(HERE, "..", "README.md"), "utf8");
  const snippets = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(snippets.length, 2);
  const tmp = path.join(HERE, ".tmp");
  await mkdir(tmp, { recursive: true });
  const outputs = [];
  try {
    for (const [index, snippet] of snippets.entries()) {
      assert.ok(snippet.includes("ws://127.0.0.1:8765/ws/stream"));
      const file = path.join(tmp, `readme-${index}.mjs`);
      // Inside the package, "voice-bridge-client" resolves to it (self-reference via "exports").
      await writeFile(file, snippet.replaceAll("ws://127.0.0.1:8765/ws/stream", bridge.url));
      const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 60000 });
      outputs.push(stdout);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  assert.match(outputs[0], /^segment \d+: \S/m);
  const seconds = Number(/received ([\d.]+) s of audio in (\d+) segment/.exec(outputs[0])?.[1]);
  assert.ok(seconds > 2, outputs[0]);
  assert.match(outputs[1], /^first audio: Int16Array of \d+ samples$/m);
  assert.match(outputs[1], /^the reply ended with: cancelled$/m);
  assert.ok(Number(/next reply: ([\d.]+) s/.exec(outputs[1])?.[1]) > 0.2, outputs[1]);
});
