// Type declarations for voice-bridge-client (hand-written; checked by `tsc --noEmit` in the tests).

import { EventEmitter } from "node:events";

/** PCM sample format of the binary frames. */
export type PcmFormat = "f32le" | "s16le";
/** What the binary frames hold: PCM, or Opus (handed through undecoded, as Buffers). */
export type WireFormat = PcmFormat | "opus";
/** With format "opus": Ogg Opus pages (default) or one raw 20 ms Opus packet per chunk. */
export type OpusFraming = "ogg" | "raw";

/** The chunk type of a format: Float32Array for f32le, Int16Array for s16le, Buffer for opus. */
export type SamplesOf<F extends WireFormat> = F extends "opus" ? Buffer : F extends "s16le" ? Int16Array : Float32Array;
/** What speak() returns: the utterance's samples, or its Opus chunks in order. */
export type UtteranceOf<F extends WireFormat> = F extends "opus" ? Buffer[] : SamplesOf<F>;

export type Samples = Float32Array | Int16Array;

/** Output sample rate of the server (Hz). */
export const SAMPLE_RATE: 48000;
export const BYTES_PER_SAMPLE: Readonly<{ f32le: 4; s16le: 2 }>;
export const DEFAULT_URL: string;

export interface ReadyEvent {
  type: "ready";
  session: string;
  version: string;
  sample_rate: number;
  channels: number;
  format: WireFormat;
  opus_framing?: OpusFraming;
  frame_ms: number;
  tts: string;
  voice: string | null;
  voices: string[];
  [field: string]: unknown;
}

export interface SegmentEvent {
  type: "segment";
  id: number;
  /** The segment as written (before normalization). */
  text: string;
  /** Index (1-based) of the token that completed the segment, if one did. */
  token?: number;
  /** Phrases in a script the voice cannot read, and how they were romanized. */
  transliterated?: { text: string; as: string }[];
  /** Phrases in a script the voice cannot read that were left out. */
  skipped?: { text: string }[];
}

export interface FlushedEvent {
  type: "flushed";
  segments: number;
  audio_seconds: number;
}

export interface CancelledEvent {
  type: "cancelled";
  /** The words the listener heard: those whose start was played (or received). */
  heard?: string;
  /** How much of the utterance's audio that was, seconds. */
  heard_seconds?: number;
}

/** One word and when it sounds: seconds from the first sample of the utterance's audio. */
export interface WordTiming {
  text: string;
  start: number;
  end: number;
  /** Present (true) when the engine has no alignment and the times were estimated. */
  estimated?: boolean;
}

/** Sent (with `words: true`) before the audio of segment `segment`. */
export interface WordsEvent {
  type: "words";
  segment: number;
  words: WordTiming[];
}

export interface ErrorEvent {
  type: "error";
  error: string;
}

/** How an utterance ended. */
export type UtteranceEnd = FlushedEvent | CancelledEvent;

export type BridgeEvent = SegmentEvent | WordsEvent | FlushedEvent | CancelledEvent | ErrorEvent;

export interface AudioItem<F extends WireFormat = WireFormat> {
  type: "audio";
  samples: SamplesOf<F>;
}

/** What `receive()` yields: audio and events, in the order the server sent them. */
export type Received<F extends WireFormat = WireFormat> = AudioItem<F> | BridgeEvent;

export interface ConnectOptions<F extends WireFormat = "f32le"> {
  /** Sent as `Authorization: Bearer <apiKey>` (auth "header", the default) or `?token=<apiKey>`. */
  apiKey?: string;
  auth?: "header" | "query";
  /** RVC voice for the session (applies from the next utterance). */
  voice?: string | null;
  /** Semitones, -24…24. */
  pitchShift?: number;
  /** Format of the audio (default "f32le"); "opus" hands Opus through as Buffers. */
  format?: F;
  /** With format "opus": "ogg" (default) or "raw". */
  opusFraming?: OpusFraming;
  /** Pause reading the socket when this many items are queued unread (default 256 ≈ 5 s). */
  highWaterMark?: number;
  /** Resume once the queue is drained to this many (default highWaterMark / 4). */
  lowWaterMark?: number;
  /** Milliseconds to wait for the connection and the server's `ready` (default 10000). */
  openTimeout?: number;
  /** Extra HTTP headers for the WebSocket upgrade request. */
  headers?: Record<string, string>;
  /** Ask for word timing events (`words`); off by default. */
  words?: boolean;
}

export interface ConfigureOptions {
  /** RVC voice; null or "" for none. Applies from the next utterance. */
  voice?: string | null;
  pitchShift?: number;
  /** Only between utterances; a client typed BridgeClient<WireFormat> sees every chunk type. */
  format?: WireFormat;
  opusFraming?: OpusFraming;
}

export interface SpeakOptions {
  /** Pace tokens like an LLM (e.g. 70); all at once when left out. */
  tokensPerSecond?: number;
}

export interface ClientStats {
  /** How many times reading the socket was paused for backpressure. */
  pauses: number;
  /** The most items ever waiting unread. */
  maxQueued: number;
}

/** The server reported an error, or the connection failed or closed. */
export class BridgeError extends Error {
  constructor(message: string, options?: { cause?: unknown });
}

export interface BridgeClientEventMap {
  ready: [event: ReadyEvent];
  segment: [event: SegmentEvent];
  words: [event: WordsEvent];
  flushed: [event: FlushedEvent];
  cancelled: [event: CancelledEvent];
  /** Server error frames (the session goes on). Never thrown, even with no listener. */
  error: [event: ErrorEvent];
  pause: [];
  resume: [];
  close: [code: number, reason: string];
}

/** One session with a voice-bridge server. Create it with `connect()`. */
export class BridgeClient<F extends WireFormat = WireFormat> extends EventEmitter<BridgeClientEventMap> {
  private constructor();
  /** The server's `ready` event. */
  readonly ready: ReadyEvent;
  /** Every error message the server sent, in order. */
  readonly errors: string[];
  readonly stats: ClientStats;
  readonly format: F;
  /** Items received and not yet read. */
  readonly queued: number;
  /** True while reading from the socket is paused (backpressure). */
  readonly paused: boolean;
  readonly closed: boolean;

  /** Append text (one LLM token). */
  sendToken(text: string, options?: { pitchShift?: number }): void;
  /**
   * Speak everything buffered. Resolves with `flushed` once the utterance's audio has all been
   * received (or with `cancelled`); rejects with BridgeError if the connection closes first.
   */
  flush(): Promise<UtteranceEnd>;
  /**
   * Stop now; resolves with the server's `cancelled` (what was heard). Audio in flight is
   * dropped. `playedSeconds`: how much the player really played (cuts `heard` there).
   */
  cancel(options?: { playedSeconds?: number }): Promise<CancelledEvent>;
  configure(options: ConfigureOptions): void;
  /** Audio of the current utterance until its `flushed` / `cancelled`. */
  audio(): AsyncGenerator<SamplesOf<F>, void, undefined>;
  /** Audio and events in order until the connection closes. */
  receive(): AsyncGenerator<Received<F>, void, undefined>;
  [Symbol.asyncIterator](): AsyncGenerator<Received<F>, void, undefined>;
  /** Send tokens, flush, and return the whole utterance's audio. */
  speak(tokens: string | Iterable<string> | AsyncIterable<string>, options?: SpeakOptions): Promise<UtteranceOf<F>>;
  close(): Promise<void>;
}

/** Connect, turn events on, apply the options, and wait for the server's `ready`. */
export function connect<F extends WireFormat = "f32le">(url?: string, options?: ConnectOptions<F>): Promise<BridgeClient<F>>;

/** Decode one binary frame; correct for any byteOffset (copies into an aligned buffer). */
export function decodePcm(data: ArrayBuffer | ArrayBufferView, format?: "f32le"): Float32Array;
export function decodePcm(data: ArrayBuffer | ArrayBufferView, format: "s16le"): Int16Array;
export function decodePcm(data: ArrayBuffer | ArrayBufferView, format: PcmFormat): Samples;

export function int16ToFloat32(samples: Int16Array): Float32Array;
export function concatSamples<T extends Samples>(chunks: T[], format?: PcmFormat): T;

/** Split text into LLM-like word pieces, each with its leading whitespace. */
export function wordPieces(text: string): string[];
