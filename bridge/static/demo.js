// voice-bridge live demo: stream text as LLM-like tokens to /ws/stream (events on), play the
// 48 kHz float32 frames through an AudioWorklet with a jitter buffer, and show first-token-to-
// speech and the segments as the server cuts them. Stop sends `cancel` and clears the buffer.

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  text: $("text"),
  rate: $("rate"),
  rateValue: $("rate-value"),
  prebuffer: $("prebuffer"),
  voice: $("voice"),
  pitch: $("pitch"),
  speak: $("speak"),
  stop: $("stop"),
  ftts: $("ftts"),
  firstSound: $("first-sound"),
  tokensSent: $("tokens-sent"),
  tokensTotal: $("tokens-total"),
  audioReceived: $("audio-received"),
  framesReceived: $("frames-received"),
  buffered: $("buffered"),
  underruns: $("underruns"),
  tokens: $("tokens"),
  segments: $("segments"),
  segmentsEmpty: $("segments-empty"),
  log: $("log"),
};

const SAMPLE_RATE = 48000;
const pageParams = new URLSearchParams(location.search);

let ws = null;
let ready = null;
let audio = null; // {context, node}
let utterance = null; // the reply being spoken
let discarding = false; // after a cancel, until the server's `cancelled`
let player = { buffered: 0, underruns: 0, playing: false };

/** Word pieces with their leading whitespace, the way LLMs stream text. */
function wordPieces(text) {
  return text.match(/\s*\S+/g) ?? [];
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function log(message) {
  ui.log.textContent = message;
}

function ms(value) {
  return `${Math.round(value)} ms`;
}

function setMetric(element, valueMs) {
  element.textContent = ms(valueMs);
  element.dataset.ms = String(Math.round(valueMs));
}

// ---------------------------------------------------------------- connection
function streamUrl() {
  const url = new URL("ws/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.searchParams.set("events", "1");
  url.searchParams.set("words", "1"); // word timings: each word is highlighted as it plays
  // Browsers cannot set an Authorization header on a WebSocket: the API key goes in the query.
  if (pageParams.get("token")) url.searchParams.set("token", pageParams.get("token"));
  return url;
}

function connect() {
  setStatus("connecting", "connecting…");
  ready = null;
  ws = new WebSocket(streamUrl());
  ws.binaryType = "arraybuffer"; // aligned ArrayBuffers: Float32Array views them directly
  ws.onmessage = (event) => (typeof event.data === "string" ? onEvent(JSON.parse(event.data)) : onAudio(event.data));
  ws.onclose = () => {
    setStatus("error", "disconnected — retrying");
    if (utterance) finishUtterance("disconnected");
    ui.speak.disabled = true;
    setTimeout(connect, 1500);
  };
}

function send(message) {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function onEvent(event) {
  switch (event.type) {
    case "ready": {
      ready = event;
      setStatus("ready", `ready · ${event.tts} · ${event.sample_rate / 1000} kHz`);
      const current = ui.voice.value;
      ui.voice.replaceChildren(new Option("default", ""), ...event.voices.map((v) => new Option(v, v)));
      ui.voice.value = event.voices.includes(current) ? current : "";
      ui.voice.disabled = event.voices.length === 0;
      ui.speak.disabled = false;
      break;
    }
    case "segment":
      if (!discarding && utterance) addSegment(event);
      break;
    case "words":
      if (!discarding && utterance) addWords(event);
      break;
    case "flushed":
      if (!discarding && utterance) {
        audio?.node.port.postMessage({ type: "end" });
        utterance.flushedAt = performance.now();
        finishUtterance(`done · ${event.segments} segment${event.segments === 1 ? "" : "s"}, ${event.audio_seconds.toFixed(2)} s of audio`);
      }
      break;
    case "cancelled":
      discarding = false;
      break;
    case "error":
      log(`server: ${event.error}`);
      break;
  }
}

function onAudio(data) {
  if (discarding || !utterance) return;
  const samples = new Float32Array(data);
  const u = utterance;
  if (u.firstAudio === undefined) {
    u.firstAudio = performance.now();
    setMetric(ui.ftts, u.firstAudio - u.firstToken);
  }
  u.samples += samples.length;
  u.frames += 1;
  if (u.currentSegment) u.currentSegment.samples += samples.length;
  audio?.node.port.postMessage({ type: "push", samples }, [samples.buffer]);
  ui.audioReceived.textContent = `${(u.samples / SAMPLE_RATE).toFixed(2)} s`;
  ui.audioReceived.dataset.seconds = (u.samples / SAMPLE_RATE).toFixed(3);
  ui.framesReceived.textContent = `${u.frames} frames`;
  if (u.currentSegment) u.currentSegment.duration.textContent = `${(u.currentSegment.samples / SAMPLE_RATE).toFixed(2)} s`;
}

// ---------------------------------------------------------------- audio
async function ensureAudio() {
  if (!audio) {
    const context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: "interactive" });
    await context.audioWorklet.addModule(new URL("pcm-player.js", import.meta.url));
    const node = new AudioWorkletNode(context, "pcm-player", {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: { prebufferMs: Number(ui.prebuffer.value) },
    });
    node.connect(context.destination);
    node.port.onmessage = (event) => onPlayer(event.data);
    audio = { context, node };
  }
  if (audio.context.state !== "running") await audio.context.resume();
  return audio;
}

function onPlayer(message) {
  if (message.type === "stats") {
    player = message;
    ui.buffered.textContent = ms((message.buffered / SAMPLE_RATE) * 1000);
    ui.buffered.dataset.samples = String(message.buffered);
    ui.buffered.dataset.played = String(message.played);
    ui.underruns.textContent = `${message.underruns} underrun${message.underruns === 1 ? "" : "s"}`;
    ui.underruns.dataset.count = String(message.underruns);
    ui.stop.disabled = !utterance && message.buffered === 0;
    highlightWords();
  } else if (message.type === "started") {
    document.body.dataset.playback = "playing";
    if (utterance && utterance.firstSound === undefined) {
      utterance.firstSound = performance.now();
      setMetric(ui.firstSound, utterance.firstSound - utterance.firstToken);
    }
  } else if (message.type === "drained") {
    // The whole reply has been played (the page's tests wait for this). The buffer is empty
    // now, whatever the last periodic stats said (under load they can lag behind).
    ui.buffered.dataset.played = String(message.played);
    ui.buffered.dataset.samples = "0";
    ui.buffered.textContent = ms(0);
    player = { ...player, buffered: 0, played: message.played, playing: false };
    document.body.dataset.playback = "drained";
    highlightWords(Infinity);
  }
}

// ---------------------------------------------------------------- word highlighting
// Each word's [start, end) is in seconds of the utterance's audio. The playback position comes
// from the worklet: the samples of this utterance it has played by AudioContext time `time`,
// advanced by how far the context's clock has gone since (only while it is playing), so the
// highlight follows the samples really played, stalls with an underrun and stops with Stop.
function playbackSeconds() {
  if (!player || player.position === undefined) return 0;
  const since = player.playing && audio ? Math.max(0, audio.context.currentTime - player.time) : 0;
  return Math.min(player.position / SAMPLE_RATE + since, (player.position + player.buffered) / SAMPLE_RATE);
}

function addWords(event) {
  const u = utterance;
  const text = u.segmentTexts?.get(event.segment);
  if (!text) return;
  if (!text.dataset.timed) {
    text.dataset.timed = "1";
    text.replaceChildren();
  }
  for (const word of event.words) {
    if (text.childNodes.length) text.append(" ");
    const span = document.createElement("span");
    span.className = "word";
    span.textContent = word.text;
    span.dataset.start = String(word.start);
    span.dataset.end = String(word.end);
    text.append(span);
  }
}

function highlightWords(at = playbackSeconds()) {
  document.body.dataset.position = at === Infinity ? "end" : String(at);
  for (const span of ui.segments.querySelectorAll(".word")) {
    const start = Number(span.dataset.start);
    const end = Number(span.dataset.end);
    span.classList.toggle("word-said", end <= at && !(start <= at && at < end));
    span.classList.toggle("word-now", start <= at && at < end);
  }
}

function highlightLoop() {
  if (document.body.dataset.playback === "playing") highlightWords();
  requestAnimationFrame(highlightLoop);
}
requestAnimationFrame(highlightLoop);

// ---------------------------------------------------------------- speaking
function addSegment(event) {
  const u = utterance;
  ui.segmentsEmpty.hidden = true;
  const item = document.createElement("li");
  const id = document.createElement("span");
  id.className = "seg-id";
  id.textContent = `#${event.id}`;
  const at = document.createElement("span");
  at.className = "seg-at";
  at.textContent = `+${Math.round(performance.now() - u.firstToken)} ms`;
  const text = document.createElement("span");
  text.className = "seg-text";
  text.textContent = event.text;
  const duration = document.createElement("span");
  duration.className = "seg-duration";
  duration.textContent = "0.00 s";
  item.append(id, at, text, duration);
  ui.segments.append(item);
  (u.segmentTexts ??= new Map()).set(event.id, text);
  u.currentSegment = { samples: 0, duration };
}

function resetView(total) {
  for (const element of [ui.ftts, ui.firstSound]) {
    element.textContent = "–";
    delete element.dataset.ms;
  }
  ui.tokensSent.textContent = "0";
  ui.tokensTotal.textContent = `of ${total}`;
  ui.audioReceived.textContent = "0.00 s";
  ui.audioReceived.dataset.seconds = "0";
  ui.framesReceived.textContent = "0 frames";
  ui.tokens.replaceChildren();
  ui.segments.replaceChildren();
  ui.segmentsEmpty.hidden = false;
  log("");
}

async function speak() {
  if (!ready || utterance) return;
  const pieces = wordPieces(ui.text.value);
  if (!pieces.length) {
    log("nothing to say");
    return;
  }
  ui.speak.disabled = true;
  ui.stop.disabled = false;
  try {
    const { node } = await ensureAudio();
    node.port.postMessage({ type: "clear" });
    node.port.postMessage({ type: "config", prebufferMs: Number(ui.prebuffer.value) });
  } catch (error) {
    log(`audio unavailable: ${error.message}`);
  }
  resetView(pieces.length);
  document.body.dataset.playback = "buffering";
  send({ type: "config", voice: ui.voice.value, pitch_shift: Number(ui.pitch.value) || 0 });
  const u = { pieces, sent: 0, samples: 0, frames: 0, firstToken: performance.now(), timer: 0, currentSegment: null };
  utterance = u;
  setStatus("speaking", "speaking…");
  const interval = 1000 / Number(ui.rate.value);
  const tick = () => {
    if (utterance !== u) return;
    // Send every token that is due by now (timers are coarse), then sleep until the next one.
    const due = Math.min(u.pieces.length, Math.floor((performance.now() - u.firstToken) / interval) + 1);
    while (u.sent < due) {
      const piece = u.pieces[u.sent++];
      send({ token: piece });
      const chip = document.createElement("span");
      chip.className = "token";
      chip.textContent = piece;
      ui.tokens.append(chip);
    }
    ui.tokensSent.textContent = String(u.sent);
    if (u.sent < u.pieces.length) {
      u.timer = setTimeout(tick, Math.max(0, u.firstToken + u.sent * interval - performance.now()));
    } else {
      send({ flush: true });
    }
  };
  tick();
}

function finishUtterance(message) {
  const u = utterance;
  if (!u) return;
  clearTimeout(u.timer);
  utterance = null;
  ui.speak.disabled = !ready;
  ui.stop.disabled = player.buffered === 0;
  setStatus("ready", message);
}

function stop() {
  if (utterance) {
    discarding = true;
    send({ type: "cancel" });
    finishUtterance("stopped");
  }
  audio?.node.port.postMessage({ type: "clear" });
  document.body.dataset.playback = "stopped";
  ui.stop.disabled = true;
}

ui.rate.addEventListener("input", () => {
  ui.rateValue.textContent = `${ui.rate.value} tokens/s`;
});
ui.prebuffer.addEventListener("change", () => {
  audio?.node.port.postMessage({ type: "config", prebufferMs: Number(ui.prebuffer.value) });
});
ui.speak.addEventListener("click", speak);
ui.stop.addEventListener("click", stop);
ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) speak();
});

if (pageParams.get("rate")) {
  ui.rate.value = pageParams.get("rate");
  ui.rateValue.textContent = `${ui.rate.value} tokens/s`;
}
connect();
