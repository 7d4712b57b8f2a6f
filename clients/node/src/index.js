/**
 * Node client for voice-bridge's `/ws/stream` (on `ws`).
 *
 *   const client = await connect("ws://127.0.0.1:8765/ws/stream");
 *   for (const token of wordPieces("Hello there, friend.")) client.sendToken(token);
 *   const end = client.flush();                 // resolves with the server's `flushed`
 *   for await (const chunk of client.audio()) play(chunk);   // Float32Array, 48 kHz mono
 *   await end;
 *
 * With `format: "opus"` the audio is handed through undecoded: each chunk a Buffer holding one
 * 20 ms Opus packet (`opusFraming: "raw"`) or the next Ogg Opus pages (`"ogg"`, the default:
 * concatenated, the chunks are a playable .ogg stream).
 *
 * Semantics (the same as the Python client, bridge/client.py):
 * - events are always on: the end of an utterance is the server's `flushed` event, never a
 *   timeout guess;
 * - after `cancel()`, audio and events still in flight from before the cancel are dropped until
 *   the server's `cancelled` arrives;
 * - received audio waits in a queue; when it holds more than `highWaterMark` frames the socket
 *   is paused (TCP pushes back to the server, which pauses that session's synthesis), and it is
 *   resumed once the consumer has drained it to `lowWaterMark`.
 *
 * Word timings are opt-in (`connect(url, { words: true })`): a `words` event
 * (`{type: "words", segment, words: [{text, start, end, estimated?}]}`, seconds from the
 * utterance's first sample) comes before the audio it times, emitted and queued in `receive()`.
 * `cancel({ playedSeconds })` resolves with the server's `cancelled`, whose `heard` is the text
 * the listener heard (the words whose start was played) and `heard_seconds` how much audio that was.
 */

import { EventEmitter } from "node:events";
import WebSocket from "ws";

import { concatSamples, decodePcm } from "./pcm.js";

export { SAMPLE_RATE, BYTES_PER_SAMPLE, decodePcm, int16ToFloat32, concatSamples } from "./pcm.js";

export const DEFAULT_URL = "ws://127.0.0.1:8765/ws/stream";

/** The server reported an error, or the connection failed or closed. */
export class BridgeError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "BridgeError";
  }
}

/** Split text the way LLMs stream it: word pieces carrying their leading whitespace. */
export function wordPieces(text) {
  return text.match(/\s*\S+/g) ?? [];
}

const FORMATS = new Set(["f32le", "s16le", "opus"]);
const OPUS_FRAMINGS = new Set(["ogg", "raw"]);

function checkFormat(format) {
  if (!FORMATS.has(format)) {
    throw new TypeError(`format must be "f32le", "s16le" or "opus", not ${JSON.stringify(format)}`);
  }
  return format;
}

function checkFraming(framing) {
  if (!OPUS_FRAMINGS.has(framing)) throw new TypeError(`opusFraming must be "ogg" or "raw", not ${JSON.stringify(framing)}`);
  return framing;
}

/** A promise whose rejection never counts as unhandled (callers may fire and forget). */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class BridgeClient extends EventEmitter {
  #ws;
  #format;
  #queue = [];
  #head = 0;
  #takers = [];
  #discarding = false;
  #pendingFlushes = [];
  #cancelling = [];
  #openText = false;
  #closed = false;
  #closeReason = null;
  #closedPromise;
  #highWaterMark;
  #lowWaterMark;

  /** The server's `ready` event (sample_rate, format, voices, ...). */
  ready = null;
  /** Every error message the server sent, in order. */
  errors = [];
  /** Counters: how often the socket was paused, the most items ever queued. */
  stats = { pauses: 0, maxQueued: 0 };

  /** @internal use connect() */
  constructor(ws, { format, highWaterMark, lowWaterMark }) {
    super();
    this.#ws = ws;
    this.#format = format;
    this.#highWaterMark = highWaterMark;
    this.#lowWaterMark = lowWaterMark;
    const closed = deferred();
    this.#closedPromise = closed.promise;
    ws.on("message", (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on("close", (code, reason) => {
      this.#onClose(new BridgeError(`connection closed (${code}${reason.length ? ` ${reason}` : ""})`));
      closed.resolve();
      this.emit("close", code, reason.toString());
    });
    ws.on("error", (error) => {
      // `close` follows; keep the cause for whoever is waiting.
      this.#closeReason ??= new BridgeError(`connection failed: ${error.message}`, { cause: error });
    });
  }

  /** Format of the audio this client yields: PCM ("f32le", "s16le") or "opus" (Buffers, undecoded). */
  get format() {
    return this.#format;
  }

  /** Items (audio frames and events) received and not yet read. */
  get queued() {
    return this.#queue.length - this.#head;
  }

  /** True while reading from the socket is paused for backpressure. */
  get paused() {
    return this.#ws.isPaused;
  }

  get closed() {
    return this.#closed;
  }

  // ------------------------------------------------------------------ sending
  #send(message) {
    if (this.#closed || this.#ws.readyState !== WebSocket.OPEN) {
      throw this.#closeReason ?? new BridgeError("connection is not open");
    }
    this.#ws.send(JSON.stringify(message));
  }

  /** Append text (one LLM token). `pitchShift` (semitones) is kept for the session. */
  sendToken(text, { pitchShift } = {}) {
    if (typeof text !== "string") throw new TypeError("token must be a string");
    const message = { token: text };
    if (pitchShift !== undefined) message.pitch_shift = pitchShift;
    this.#send(message);
    if (text) this.#openText = true;
  }

  /**
   * Speak everything buffered now (the end of an LLM reply). The promise resolves with the
   * server's `flushed` event once all the utterance's audio has been received (or with a
   * `cancelled` event if `cancel()` came first); it rejects if the connection closes first.
   * Audio must be read meanwhile: a full queue pauses the socket, and `flushed` waits behind it.
   */
  flush() {
    this.#send({ flush: true });
    this.#openText = false;
    const end = deferred();
    this.#pendingFlushes.push(end);
    return end.promise;
  }

  /**
   * Stop now: the server drops buffered text and unsent audio; audio and events already in
   * flight are dropped here. Resolves with the server's `cancelled` event: `heard` (the words
   * whose start was played) and `heard_seconds`. `playedSeconds`: how much of the utterance a
   * buffering player really played; `heard` is then cut there instead of at what was received.
   */
  cancel({ playedSeconds } = {}) {
    const message = { type: "cancel" };
    if (playedSeconds !== undefined) {
      if (!(Number.isFinite(playedSeconds) && playedSeconds >= 0)) throw new RangeError("playedSeconds must be a number >= 0");
      message.played_seconds = playedSeconds;
    }
    this.#send(message);
    this.#discarding = true;
    this.#openText = false;
    this.#queue = [];
    this.#head = 0;
    this.#resumeIfDrained();
    const done = deferred();
    for (const flush of this.#pendingFlushes) this.#cancelling.push(flush);
    this.#pendingFlushes = [];
    this.#cancelling.push(done);
    return done.promise;
  }

  /**
   * Change session options. `voice` and `format` apply from the next utterance; `format` may
   * only change between utterances (no text sent since the last flush, no `flushed` pending),
   * where it is unambiguous which audio uses which format.
   */
  configure({ voice, pitchShift, format, opusFraming } = {}) {
    const message = { type: "config" };
    if (voice !== undefined) message.voice = voice ?? "";
    if (pitchShift !== undefined) message.pitch_shift = pitchShift;
    if (format !== undefined) {
      checkFormat(format);
      if (this.#openText || this.#pendingFlushes.length) {
        throw new BridgeError("format can only change between utterances (after `flushed`)");
      }
      message.format = format;
      if (format === "opus" && opusFraming !== undefined) message.opus_framing = checkFraming(opusFraming);
    }
    this.#send(message);
    if (format !== undefined) this.#format = format;
  }

  // ------------------------------------------------------------------ receiving
  #onMessage(data, isBinary) {
    if (isBinary) {
      if (this.#discarding) return;
      let samples;
      try {
        // Opus is handed through as it came: one raw packet, or Ogg pages, per frame.
        samples = this.#format === "opus" ? Buffer.from(data) : decodePcm(data, this.#format);
      } catch (error) {
        this.#serverError(`undecodable audio frame: ${error.message}`);
        return;
      }
      this.#push({ type: "audio", samples });
      return;
    }
    let event;
    try {
      event = JSON.parse(data.toString());
    } catch {
      return; // not JSON: nothing this client understands
    }
    if (event === null || typeof event !== "object") return;
    const type = event.type ?? ("error" in event ? "error" : "unknown");
    switch (type) {
      case "ready":
        this.ready = event;
        this.emit("ready", event);
        return;
      case "error":
        this.#serverError(String(event.error));
        return;
      case "cancelled": {
        this.#discarding = false;
        const waiting = this.#cancelling;
        this.#cancelling = [];
        for (const waiter of waiting) waiter.resolve(event);
        this.emit("cancelled", event);
        this.#push(event);
        return;
      }
      default:
        if (this.#discarding) return; // from before the cancel
        if (type === "flushed") this.#pendingFlushes.shift()?.resolve(event);
        // Events this client knows are emitted; newer ones only reach receive().
        if (type === "segment" || type === "flushed" || type === "words") this.emit(type, event);
        this.#push(event);
    }
  }

  #serverError(message) {
    this.errors.push(message);
    const event = { type: "error", error: message };
    // Server errors are reports (the session goes on), so they never throw like an unhandled
    // EventEmitter 'error' would: listen to 'error' to see them, or read `client.errors`.
    if (this.listenerCount("error")) this.emit("error", event);
    this.#push(event);
  }

  #push(item) {
    const taker = this.#takers.shift();
    if (taker) {
      taker(item);
      return;
    }
    this.#queue.push(item);
    const queued = this.queued;
    if (queued > this.stats.maxQueued) this.stats.maxQueued = queued;
    if (queued >= this.#highWaterMark && !this.#ws.isPaused) {
      this.#ws.pause();
      this.stats.pauses += 1;
      this.emit("pause");
    }
  }

  #resumeIfDrained() {
    if (this.#ws.isPaused && this.queued <= this.#lowWaterMark) {
      this.#ws.resume();
      this.emit("resume");
    }
  }

  #take() {
    if (this.#head < this.#queue.length) {
      const item = this.#queue[this.#head];
      this.#queue[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#resumeIfDrained();
      return Promise.resolve(item);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  #onClose(reason) {
    if (this.#closed) return;
    this.#closed = true;
    const error = this.#closeReason ?? reason;
    this.#closeReason = error;
    for (const waiter of [...this.#pendingFlushes, ...this.#cancelling]) waiter.reject(error);
    this.#pendingFlushes = [];
    this.#cancelling = [];
    for (const taker of this.#takers.splice(0)) taker(null);
  }

  /**
   * Audio of the current utterance, in order, up to its `flushed` (or `cancelled`) event:
   * Float32Array chunks (Int16Array with format "s16le"), 48 kHz mono.
   */
  async *audio() {
    while (true) {
      const item = await this.#take();
      if (item === null) throw this.#closeReason ?? new BridgeError("connection closed before the utterance ended");
      if (item.type === "audio") yield item.samples;
      else if (item.type === "flushed" || item.type === "cancelled") return;
    }
  }

  /** Every audio chunk (`{type: "audio", samples}`) and event, in order, until the connection closes. */
  async *receive() {
    while (true) {
      const item = await this.#take();
      if (item === null) return;
      yield item;
    }
  }

  [Symbol.asyncIterator]() {
    return this.receive();
  }

  /**
   * Send tokens (paced like an LLM when `tokensPerSecond` is given), flush, and return the
   * whole utterance's audio as one array.
   */
  async speak(tokens, { tokensPerSecond } = {}) {
    const chunks = [];
    const format = this.#format;
    const collecting = (async () => {
      for await (const chunk of this.audio()) chunks.push(chunk);
    })();
    collecting.catch(() => {});
    const interval = tokensPerSecond ? 1000 / tokensPerSecond : 0;
    const started = performance.now();
    let index = 0;
    const list = typeof tokens === "string" ? [tokens] : tokens;
    for await (const token of list) {
      if (interval) {
        const wait = started + index * interval - performance.now();
        if (wait > 0) await sleep(wait);
      }
      this.sendToken(token);
      index += 1;
    }
    const end = this.flush();
    await collecting;
    await end;
    return format === "opus" ? chunks : concatSamples(chunks, format);
  }

  /** Close the connection (queued audio is dropped). */
  async close() {
    if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close(1000);
    }
    // A peer that never answers the close handshake: ws terminates it after its own timeout.
    await this.#closedPromise;
  }
}

/**
 * Connect, turn events on, apply the options and wait for the server's `ready` event.
 * @param {string} [url]
 * @param {object} [options]
 */
export async function connect(url = DEFAULT_URL, options = {}) {
  const {
    apiKey,
    auth = "header",
    voice,
    pitchShift,
    format = "f32le",
    opusFraming = "ogg",
    highWaterMark = 256,
    lowWaterMark = Math.floor(highWaterMark / 4),
    openTimeout = 10000,
    headers = {},
    words = false,
  } = options;
  checkFormat(format);
  checkFraming(opusFraming);
  if (!(highWaterMark >= 1) || !(lowWaterMark >= 0) || lowWaterMark >= highWaterMark) {
    throw new RangeError("need 0 <= lowWaterMark < highWaterMark");
  }
  if (auth !== "header" && auth !== "query") throw new TypeError('auth must be "header" or "query"');
  const target = new URL(url);
  const sendHeaders = { ...headers };
  if (apiKey) {
    if (auth === "query") target.searchParams.set("token", apiKey);
    else sendHeaders.Authorization = `Bearer ${apiKey}`;
  }
  const ws = new WebSocket(target, {
    headers: sendHeaders,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
    handshakeTimeout: openTimeout,
  });
  const client = new BridgeClient(ws, { format, highWaterMark, lowWaterMark });
  const safeUrl = new URL(target);
  if (safeUrl.searchParams.has("token")) safeUrl.searchParams.set("token", "***");

  await new Promise((resolve, reject) => {
    let failure = "connection failed";
    let answered = false; // the server refused over HTTP: its answer says why, keep it
    const onError = (error) => {
      if (!answered) failure = error.message;
    };
    // A refusal (401 without a valid key, 403 for an Origin, 503 when full) carries the
    // server's reason in its body ({"error": ...}); ws alone would only say "401".
    const onRefused = (request, response) => {
      answered = true;
      failure = `HTTP ${response.statusCode}`;
      const parts = [];
      let size = 0;
      response.on("data", (part) => {
        if (size < 2048) parts.push(part);
        size += part.length;
      });
      response.on("end", () => {
        const body = Buffer.concat(parts).toString("utf8").slice(0, 2048).trim();
        let reason = body;
        try {
          reason = JSON.parse(body).error ?? body;
        } catch {
          // not JSON: the text as it came
        }
        if (reason) failure += ` (${reason})`;
        ws.terminate();
      });
      response.on("error", () => ws.terminate());
    };
    const onOpen = () => {
      ws.off("close", onClose);
      ws.off("error", onError);
      ws.off("unexpected-response", onRefused);
      resolve();
    };
    const onClose = () => {
      ws.off("open", onOpen);
      ws.off("error", onError);
      ws.off("unexpected-response", onRefused);
      reject(new BridgeError(`cannot connect to ${safeUrl}: ${failure}`));
    };
    ws.once("open", onOpen);
    ws.once("close", onClose);
    ws.on("error", onError);
    ws.once("unexpected-response", onRefused);
  });

  const config = { type: "config", events: true, format };
  if (format === "opus") config.opus_framing = opusFraming;
  if (voice !== undefined && voice !== null) config.voice = voice;
  if (pitchShift !== undefined) config.pitch_shift = pitchShift;
  if (words) config.words = true;
  ws.send(JSON.stringify(config));

  // The ready event; errors about the options come instead of it.
  await new Promise((resolve, reject) => {
    let timer;
    const done = () => {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("close", onClose);
      client.off("error", onError);
    };
    const onReady = () => {
      done();
      resolve();
    };
    const onError = (event) => {
      done();
      client.close().catch(() => {});
      reject(new BridgeError(event.error));
    };
    const onClose = () => {
      done();
      reject(new BridgeError("connection closed before the server was ready"));
    };
    timer = setTimeout(() => {
      done();
      client.close().catch(() => {});
      reject(new BridgeError(`no ready event from ${safeUrl} within ${openTimeout} ms`));
    }, openTimeout);
    client.on("ready", onReady);
    client.on("close", onClose);
    client.on("error", onError);
  });
  return client;
}
