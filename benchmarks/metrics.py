"""What a client saw of one utterance, and the latency figures derived from it. No I/O.

Every peer (our server, the naive server, RealtimeTTS) is reduced to the same :class:`Trace`,
so every figure is computed by the same code:

* **FTTS** (first token to speech): first audio received − first token sent.
* **token-to-sound** per segment: the segment's first audio − the moment its closing token was
  sent (the token whose arrival completed the segment; for the last segment, completed by the
  flush, the moment the flush was sent).
* **text wait**: the first segment's closing token − the first token: how long the segmenter
  waited for text. FTTS = text wait + token-to-sound of the first segment.
* **server overhead**: token-to-sound of the first segment − the engine's own first-chunk time
  for that segment's text, measured in-process with nothing else running
  (:mod:`benchmarks.engine_probe`). What the serving layer adds over the model: WebSocket,
  queues, the audio chain, framing, scheduling.
* **transport**: FTTS − the server's own first-text-to-first-audio (its ``flushed`` stats):
  the socket, the sender task and the client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchmarks.playback import simulate_playback


@dataclass(frozen=True)
class SegmentMark:
    """One segment as the client saw it: when it was announced and when it first sounded."""

    text: str
    #: 1-based index of the closing token within the utterance; None: closed by the flush.
    token: int | None
    announced: float | None = None
    first_audio: float | None = None


@dataclass
class Trace:
    """One utterance through one peer, in ``time.perf_counter`` seconds."""

    token_sent: list[float]
    flush_sent: float | None
    audio: list[tuple[float, int]]  # (arrival, samples)
    sample_rate: int
    segments: list[SegmentMark] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # the server's own, if it reports any
    done: float | None = None


def segments_from_messages(messages: list[tuple[float, str, Any]]) -> list[SegmentMark]:
    """Ordered WebSocket messages → segments with their first audio.

    ``messages``: ``(time, "segment", event)`` and ``(time, "audio", samples)`` in arrival order.
    A server announces each segment before its audio, in order, so a segment's first audio is
    the first audio message after its announcement and before the next one. A segment that
    produced no audio (only markup, say) has ``first_audio`` None.
    """
    marks: list[SegmentMark] = []
    current: dict[str, Any] | None = None
    for when, kind, payload in messages:
        if kind == "segment":
            if current is not None:
                marks.append(SegmentMark(**current))
            token = payload.get("token")
            current = {"text": payload.get("text", ""), "token": token, "announced": when, "first_audio": None}
        elif kind == "audio" and current is not None and current["first_audio"] is None:
            current["first_audio"] = when
    if current is not None:
        marks.append(SegmentMark(**current))
    return marks


def segments_from_blocks(
    sentences: list[tuple[float, str, int]],
    puts: list[tuple[float, int, int]],
    chunks: list[tuple[float, int]],
    end_of_text: float | None,
) -> list[SegmentMark]:
    """An in-process library's trace (RealtimeTTS) → segments with their first audio.

    ``sentences``: (time it left the splitter, text, tokens consumed by then), in order.
    ``puts``: (time, bytes, sentence number 1…) per block the engine queued, in order.
    ``chunks``: (time, bytes) per audio chunk handed to the application, in order: the same
    bytes as the puts, re-cut. Sentence k's first audio is the chunk holding its first byte.
    A sentence that left the splitter after the text ended was closed by the end of text
    (token None), as a flush closes a server's last segment.
    """
    first_byte: dict[int, int] = {}
    offset = 0
    for _, size, number in puts:
        if size > 0 and number not in first_byte:
            first_byte[number] = offset
        offset += size
    chunk_ends: list[tuple[float, int]] = []
    total = 0
    for when, size in chunks:
        total += size
        chunk_ends.append((when, total))
    marks = []
    for number, (left_at, text, consumed) in enumerate(sentences, start=1):
        token = None if end_of_text is not None and left_at >= end_of_text else consumed
        first_audio = None
        if number in first_byte:
            target = first_byte[number]
            first_audio = next((when for when, end in chunk_ends if end > target), None)
        marks.append(SegmentMark(text=text, token=token, announced=left_at, first_audio=first_audio))
    return marks


def closed_at(trace: Trace, mark: SegmentMark) -> float | None:
    """When the text that completed ``mark`` was sent: its closing token, or the flush."""
    if mark.token is None:
        return trace.flush_sent
    if not 1 <= mark.token <= len(trace.token_sent):
        raise ValueError(f"segment closed by token {mark.token}, but {len(trace.token_sent)} were sent")
    return trace.token_sent[mark.token - 1]


def token_to_sound(trace: Trace) -> list[float | None]:
    """Per segment: first audio − closing token (or flush) sent, in seconds; None if silent."""
    out: list[float | None] = []
    for mark in trace.segments:
        start = closed_at(trace, mark)
        out.append(None if start is None or mark.first_audio is None else mark.first_audio - start)
    return out


@dataclass
class Figures:
    """The per-utterance numbers every summary is built from (seconds unless named _ms)."""

    tokens: int
    ftts: float
    text_wait: float | None
    first_segment_t2s: float | None
    first_segment_text: str | None
    t2s: list[float]
    t2s_flush: float | None
    audio_seconds: float
    underruns: int
    underrun_ms: float
    stalls: list[tuple[float, float]]
    underruns_buffered: int
    playback_end: float | None
    wall: float | None
    server_ftts: float | None


#: The jitter buffer of the second underrun figure: a listener that starts playing 100 ms late.
BUFFERED_S = 0.1


def figures(trace: Trace, *, prebuffer_s: float = 0.0) -> Figures:
    """FTTS, text wait, token-to-sound and underruns of one utterance.

    ``stalls``: each underrun as (audio position in s, length in ms). ``underruns_buffered``:
    the underruns of a listener with a ``BUFFERED_S`` jitter buffer (on top of ``prebuffer_s``).
    """
    nan = float("nan")
    first_token = trace.token_sent[0] if trace.token_sent else None
    ftts = trace.audio[0][0] - first_token if trace.audio and first_token is not None else nan
    t2s_all = token_to_sound(trace)
    sounding = [(m, v) for m, v in zip(trace.segments, t2s_all, strict=True) if v is not None]
    first_mark, first_t2s = sounding[0] if sounding else (None, None)
    text_wait = None
    if first_mark is not None and first_token is not None:
        start = closed_at(trace, first_mark)
        text_wait = None if start is None else start - first_token
    report = simulate_playback(trace.audio, trace.sample_rate, prebuffer_s=prebuffer_s)
    buffered = simulate_playback(trace.audio, trace.sample_rate, prebuffer_s=prebuffer_s + BUFFERED_S)
    server_ms = trace.stats.get("first_text_to_audio_ms")
    return Figures(
        tokens=len(trace.token_sent),
        ftts=ftts,
        text_wait=text_wait,
        first_segment_t2s=first_t2s,
        first_segment_text=first_mark.text if first_mark is not None else None,
        t2s=[v for m, v in sounding if m.token is not None],
        t2s_flush=next((v for m, v in sounding if m.token is None), None),
        audio_seconds=report.audio_seconds,
        underruns=report.underruns,
        underrun_ms=report.underrun_ms,
        stalls=list(report.stalls),
        underruns_buffered=buffered.underruns,
        playback_end=report.ends_at,
        wall=(trace.done - first_token) if trace.done is not None and first_token is not None else None,
        server_ftts=server_ms / 1000 if isinstance(server_ms, int | float) else None,
    )


def stage_rtf(stats: list[dict[str, Any]]) -> dict[str, float] | None:
    """Real-time factor per stage over many utterances: stage seconds / output audio seconds.

    From the servers' ``flushed`` stats (tts_ms, voice_ms, resample_ms, audio_seconds). Also
    ``engine_rtf``: the server's own TTS RTF (tts time / audio the engine made, before pause
    trimming), averaged weighted by audio. None when no utterance reported stats.
    """
    rows = [s for s in stats if s and s.get("audio_seconds")]
    if not rows:
        return None
    audio = sum(float(s["audio_seconds"]) for s in rows)
    out = {
        "tts": sum(float(s.get("tts_ms", 0.0)) for s in rows) / 1000 / audio,
        "voice": sum(float(s.get("voice_ms", 0.0)) for s in rows) / 1000 / audio,
        "resample": sum(float(s.get("resample_ms", 0.0)) for s in rows) / 1000 / audio,
    }
    out["total"] = out["tts"] + out["voice"] + out["resample"]
    weighted = [(float(s["tts_rtf"]), float(s["audio_seconds"])) for s in rows if s.get("tts_rtf")]
    if weighted:
        out["engine_rtf"] = sum(r * a for r, a in weighted) / sum(a for _, a in weighted)
    return {k: round(v, 4) for k, v in out.items()}


def finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]
