// Compiled by `tsc --noEmit` (test/types.test.js): the declarations must describe this usage,
// and the lines marked @ts-expect-error must stay errors.
import {
  BridgeClient,
  BridgeError,
  connect,
  decodePcm,
  type FlushedEvent,
  type PcmFormat,
  type SegmentEvent,
  type UtteranceEnd,
  wordPieces,
} from "voice-bridge-client";

export async function float32(): Promise<number> {
  const client = await connect("ws://127.0.0.1:8765/ws/stream", { apiKey: "k", voice: "miku", pitchShift: 2 });
  client.on("segment", (event: SegmentEvent) => console.log(event.id, event.text));
  client.on("flushed", (event: FlushedEvent) => console.log(event.audio_seconds));
  client.on("error", (event) => console.log(event.error.toUpperCase()));
  for (const token of wordPieces("Hello there.")) client.sendToken(token);
  client.sendToken(" More", { pitchShift: -3 });
  const end: Promise<UtteranceEnd> = client.flush();
  let total = 0;
  for await (const chunk of client.audio()) {
    const samples: Float32Array = chunk;
    total += samples.length;
    // @ts-expect-error f32le audio is not Int16Array
    const wrong: Int16Array = chunk;
    void wrong;
  }
  const result = await end;
  if (result.type === "flushed") total += result.segments;
  await client.cancel();
  const all: Float32Array = await client.speak(["Hi", " there."], { tokensPerSecond: 70 });
  total += all.length;
  // @ts-expect-error format is f32le, s16le or opus
  client.configure({ format: "mp3" });
  await client.close();
  return total;
}

export async function int16(): Promise<void> {
  const client = await connect("ws://127.0.0.1:8765/ws/stream", { format: "s16le", auth: "query", apiKey: "k" });
  for await (const chunk of client.audio()) {
    const samples: Int16Array = chunk;
    void samples;
  }
  for await (const item of client) {
    if (item.type === "audio") {
      const samples: Int16Array = item.samples;
      void samples;
    } else if (item.type === "segment") {
      const text: string = item.text;
      void text;
    }
  }
  const either: BridgeClient<PcmFormat> = client;
  either.configure({ format: "f32le" });
  const queued: number = either.queued + either.stats.pauses;
  void queued;
}

export function decoding(buffer: Buffer): number {
  const f: Float32Array = decodePcm(buffer);
  const s: Int16Array = decodePcm(buffer, "s16le");
  const error = new BridgeError("x");
  // @ts-expect-error sendToken takes a string
  void ((c: BridgeClient) => c.sendToken(42));
  // @ts-expect-error the constructor is private: use connect()
  void new BridgeClient();
  return f.length + s.length + error.message.length;
}

export async function opus(): Promise<number> {
  const client = await connect("ws://127.0.0.1:8765/ws/stream", { format: "opus", opusFraming: "raw" });
  let bytes = 0;
  for await (const chunk of client.audio()) {
    const packet: Buffer = chunk;
    bytes += packet.length;
  }
  const packets: Buffer[] = await client.speak("Hello.");
  // @ts-expect-error opusFraming is ogg or raw
  await connect("ws://127.0.0.1:8765/ws/stream", { format: "opus", opusFraming: "webm" });
  client.configure({ format: "opus", opusFraming: "ogg" });
  return bytes + packets.length;
}
