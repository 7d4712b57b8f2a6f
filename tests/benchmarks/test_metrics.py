"""benchmarks/metrics.py: token-to-sound matching, per-utterance figures, stage real-time factors."""

from __future__ import annotations

import math

import pytest

from benchmarks.metrics import (
    SegmentMark,
    Trace,
    figures,
    segments_from_blocks,
    segments_from_messages,
    stage_rtf,
    token_to_sound,
)


def _segment(text: str, token: int | None = None) -> dict:
    event = {"type": "segment", "text": text}
    if token is not None:
        event["token"] = token
    return event


def test_each_segment_gets_the_first_audio_after_its_announcement() -> None:
    messages = [
        (0.05, "audio", 960),  # before any segment: not attributed
        (1.0, "segment", _segment("Sure!", 2)),
        (1.2, "audio", 960),
        (1.3, "audio", 960),
        (2.0, "segment", _segment("```code```", 9)),  # nothing sounded
        (2.5, "segment", _segment("Bye.")),
        (2.9, "audio", 960),
    ]
    marks = segments_from_messages(messages)
    assert [(m.text, m.token, m.announced, m.first_audio) for m in marks] == [
        ("Sure!", 2, 1.0, 1.2),
        ("```code```", 9, 2.0, None),
        ("Bye.", None, 2.5, 2.9),
    ]


def test_token_to_sound_starts_at_the_closing_token_or_the_flush() -> None:
    trace = Trace(
        token_sent=[0.0, 0.1, 0.2, 0.3],
        flush_sent=0.4,
        audio=[(0.5, 960)],
        sample_rate=48000,
        segments=[SegmentMark("a b", 2, first_audio=0.35), SegmentMark("c", None, first_audio=0.9), SegmentMark("x", 3)],
    )
    assert token_to_sound(trace) == pytest.approx([0.25, 0.5, None])  # 0.35 − t(token 2); 0.9 − flush


def test_token_index_past_what_was_sent_is_an_error() -> None:
    trace = Trace([0.0], 0.1, [], 48000, [SegmentMark("a", 5, first_audio=1.0)])
    with pytest.raises(ValueError, match="token 5"):
        token_to_sound(trace)


def test_library_blocks_are_attributed_by_byte_offset() -> None:
    # Sentence 1 queued 1000 bytes in two puts, sentence 2 queued 600; the player re-cut them
    # into 512-byte chunks. Sentence 2's first byte (offset 1000) is in the chunk ending at 1024.
    sentences = [(1.0, "One.", 5), (1.5, "Two.", 9), (3.0, "Three.", 12)]
    puts = [(1.2, 400, 1), (1.3, 600, 1), (2.0, 600, 2)]
    chunks = [(1.21, 512), (1.31, 512), (2.01, 512), (2.02, 64)]
    marks = segments_from_blocks(sentences, puts, chunks, end_of_text=2.5)
    assert [(m.token, m.first_audio) for m in marks] == [(5, 1.21), (9, 1.31), (None, None)]


def test_figures_of_one_utterance() -> None:
    # Tokens every 100 ms; segment 1 closed by token 3 (sent at 0.2) sounds at 0.5; segment 2
    # closed by the flush (0.45) sounds at 1.0. Audio: 0.25 s at 0.5, then 0.25 s at 1.0 → one
    # 250 ms underrun.
    trace = Trace(
        token_sent=[0.0, 0.1, 0.2, 0.3, 0.4],
        flush_sent=0.45,
        audio=[(0.5, 12000), (1.0, 12000)],
        sample_rate=48000,
        segments=[SegmentMark("Hi there,", 3, 0.3, 0.5), SegmentMark("friend.", None, 0.6, 1.0)],
        stats={"first_text_to_audio_ms": 480.0},
        done=1.1,
    )
    fig = figures(trace)
    assert fig.ftts == pytest.approx(0.5)
    assert fig.text_wait == pytest.approx(0.2)
    assert fig.first_segment_t2s == pytest.approx(0.3) and fig.first_segment_text == "Hi there,"
    assert fig.t2s == pytest.approx([0.3]) and fig.t2s_flush == pytest.approx(0.55)
    assert (fig.underruns, fig.underrun_ms) == (1, pytest.approx(250.0, abs=0.5))
    assert fig.stalls == [(0.25, pytest.approx(250.0, abs=0.5))] and fig.underruns_buffered == 1
    assert fig.playback_end == pytest.approx(1.25)
    assert fig.server_ftts == pytest.approx(0.48) and fig.wall == pytest.approx(1.1)


def test_figures_without_audio_are_nan_not_a_crash() -> None:
    fig = figures(Trace([0.0, 0.1], 0.2, [], 48000))
    assert math.isnan(fig.ftts) and fig.first_segment_t2s is None and fig.underruns == 0


def test_stage_rtf_is_stage_time_over_audio_out() -> None:
    stats = [
        {"audio_seconds": 2.0, "tts_ms": 200.0, "voice_ms": 100.0, "resample_ms": 10.0, "tts_rtf": 0.09},
        {"audio_seconds": 6.0, "tts_ms": 600.0, "voice_ms": 300.0, "resample_ms": 30.0, "tts_rtf": 0.11},
        {},  # an utterance that reported nothing
    ]
    rtf = stage_rtf(stats)
    assert rtf == {"tts": 0.1, "voice": 0.05, "resample": 0.005, "total": 0.155, "engine_rtf": 0.105}
    assert stage_rtf([{}]) is None
