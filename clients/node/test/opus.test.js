// Opus on the WebSocket, handed through undecoded, against a real voice-bridge: raw 20 ms
// packets and Ogg Opus pages (decoded here by FFmpeg through the bridge's own Python, PyAV).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { connect, wordPieces } from "voice-bridge-client";

import { bridgePython, REPO_ROOT, startBridge } from "./helpers/bridge.js";

const REPLY = "The train leaves at ten past nine from platform four.";
let bridge;

before(async () => {
  bridge = await startBridge();
});

after(async () => {
  await bridge?.stop();
});

/** Seconds and sample rate of an Ogg file, as FFmpeg decodes it. */
async function oggSeconds(file) {
  const script = [
    "import sys, json",
    "from tests.support.audio_decode import decode_audio",
    "audio, rate = decode_audio(open(sys.argv[1], 'rb').read(), 'ogg')",
    "print(json.dumps({'seconds': audio.size / rate, 'rate': rate, 'peak': float(abs(audio).max())}))",
  ].join("\n");
  const { stdout } = await promisify(execFile)(bridgePython(), ["-c", script, file], {
    cwd: REPO_ROOT,
    env: { ...process.env, PYTHONPATH: REPO_ROOT },
    timeout: 60000,
  });
  return JSON.parse(stdout);
}

test("raw Opus: one small Buffer per 20 ms, handed through", async () => {
  const pcm = await connect(bridge.url, { format: "s16le" });
  const reference = await pcm.speak(wordPieces(REPLY));
  await pcm.close();
  const client = await connect(bridge.url, { format: "opus", opusFraming: "raw" });
  assert.equal(client.ready.format, "opus");
  assert.equal(client.ready.opus_framing, "raw");
  const packets = await client.speak(wordPieces(REPLY));
  await client.close();
  assert.ok(packets.every((p) => Buffer.isBuffer(p) && p.length > 0 && p.length < 400));
  const seconds = (packets.length * 960) / 48000;
  // Piper is not deterministic here (noise), so the two utterances differ a little in length.
  assert.ok(Math.abs(seconds - reference.length / 48000) < 0.6, `${seconds} s vs ${reference.length / 48000} s`);
  const bytes = packets.reduce((n, p) => n + p.length, 0);
  assert.ok(bytes < reference.length * 2 / 5, `${bytes} bytes of Opus vs ${reference.length * 2} of s16le`);
});

test("Ogg Opus: the chunks concatenated are a playable stream; format switches between utterances", async () => {
  const client = await connect(bridge.url, { format: "f32le" });
  const floats = await client.speak("First in floats.");
  client.configure({ format: "opus" });
  const pages = await client.speak(wordPieces(REPLY));
  await client.close();
  assert.ok(floats instanceof Float32Array && floats.length > 24000);
  const ogg = Buffer.concat(pages);
  assert.equal(ogg.subarray(0, 4).toString("latin1"), "OggS");
  const dir = await mkdtemp(path.join(os.tmpdir(), "vb-opus-"));
  try {
    const file = path.join(dir, "reply.ogg");
    await writeFile(file, ogg);
    const decoded = await oggSeconds(file);
    assert.equal(decoded.rate, 48000);
    assert.ok(decoded.seconds > 2 && decoded.seconds < 8, `${decoded.seconds} s`);
    assert.ok(decoded.peak > 0.1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("opusFraming is checked before anything is sent", async () => {
  await assert.rejects(connect(bridge.url, { format: "opus", opusFraming: "webm" }), TypeError);
  await assert.rejects(connect(bridge.url, { format: "mp3" }), TypeError);
});
