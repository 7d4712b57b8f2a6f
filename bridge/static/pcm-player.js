// AudioWorklet processor: plays 48 kHz mono float32 chunks posted from the page, through a
// jitter buffer. Playback starts (and restarts after an underrun) once `prebufferMs` of audio is
// queued, or at once when the page says the utterance has ended, so network bursts and gaps
// do not become clicks. Messages in: {type: "push", samples}, {type: "end"}, {type: "clear"},
// {type: "config", prebufferMs}. Out: {type: "started"} at the first sample of an utterance,
// {type: "drained", played} when an ended utterance has played out, and {type: "stats", ...}
// ~20×/s (`underruns` counts since the last clear, `played` since the start; `position`: samples
// of the current utterance played by the end of the render quantum that began at AudioContext
// time `time`, so the page can place the word timings on the real playback clock).

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunks = [];
    this.offset = 0; // read position in chunks[0]
    this.buffered = 0; // samples queued
    this.prebuffer = Math.round(((options.processorOptions?.prebufferMs ?? 80) * sampleRate) / 1000);
    this.playing = false;
    this.ended = false;
    this.started = false;
    this.played = 0;
    this.position = 0; // samples of the current utterance played
    this.positionTime = 0; // AudioContext time at which `position` was reached
    this.underruns = 0;
    this.sinceStats = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    switch (message.type) {
      case "push":
        if (message.samples.length) {
          this.chunks.push(message.samples);
          this.buffered += message.samples.length;
          this.ended = false;
        }
        break;
      case "end":
        if (this.buffered === 0 && !this.playing) {
          if (this.started) this.port.postMessage({ type: "drained", played: this.played });
          this.started = false;
        } else {
          this.ended = true;
        }
        break;
      case "clear":
        this.chunks = [];
        this.offset = 0;
        this.buffered = 0;
        this.playing = false;
        this.ended = false;
        this.started = false;
        this.underruns = 0;
        this.position = 0;
        this.report();
        break;
      case "config":
        this.prebuffer = Math.round((message.prebufferMs * sampleRate) / 1000);
        break;
    }
  }

  report() {
    this.sinceStats = 0;
    this.port.postMessage({
      type: "stats",
      buffered: this.buffered,
      played: this.played,
      position: this.position,
      time: this.positionTime,
      underruns: this.underruns,
      playing: this.playing,
    });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.buffered > 0 && (this.buffered >= this.prebuffer || this.ended)) {
      this.playing = true;
      if (!this.started) {
        this.started = true;
        this.position = 0;
        this.port.postMessage({ type: "started" });
      }
    }
    let written = 0;
    if (this.playing) {
      while (written < out.length && this.chunks.length) {
        const chunk = this.chunks[0];
        const n = Math.min(out.length - written, chunk.length - this.offset);
        out.set(chunk.subarray(this.offset, this.offset + n), written);
        written += n;
        this.offset += n;
        if (this.offset === chunk.length) {
          this.chunks.shift();
          this.offset = 0;
        }
      }
      this.buffered -= written;
      this.played += written;
      this.position += written;
      if (written < out.length) {
        this.playing = false;
        if (this.ended) {
          this.ended = false;
          this.started = false;
          this.port.postMessage({ type: "drained", played: this.played });
        } else {
          this.underruns += 1; // ran dry mid-utterance: refill to the prebuffer before going on
        }
      }
    }
    this.positionTime = currentTime + out.length / sampleRate; // when this quantum has played
    out.fill(0, written);
    for (let channel = 1; channel < outputs[0].length; channel++) outputs[0][channel].set(out);
    this.sinceStats += out.length;
    if (this.sinceStats >= sampleRate / 20) this.report();
    return true;
  }
}

registerProcessor("pcm-player", PcmPlayer);
