"""benchmarks/peers/realtimetts.py: the RealtimeTTS driver's lines as traces."""

from __future__ import annotations

import pytest

from benchmarks.metrics import figures
from benchmarks.tokens import llm_tokens


def test_realtimetts_driver_line_becomes_a_trace() -> None:
    from benchmarks.peers.realtimetts import trace_of

    line = {
        "token_sent": [10.0, 10.1, 10.2],
        "end_of_text": 10.25,
        "sentences": [[10.15, "Hi there.", 2], [10.3, "Bye.", 3]],
        "puts": [[10.4, 4410, 1], [10.6, 2000, 2]],
        "chunks": [[10.41, 4096], [10.42, 314], [10.61, 2000]],
        "done": 10.7,
        "sample_rate": 22050,
        "sample_width": 2,
    }
    trace = trace_of(line)
    assert trace.audio == [(10.41, 2048), (10.42, 157), (10.61, 1000)]  # samples of 16-bit audio
    assert [(m.token, m.first_audio) for m in trace.segments] == [(2, 10.41), (None, 10.61)]
    fig = figures(trace)
    assert fig.ftts == pytest.approx(0.41) and fig.t2s == pytest.approx([0.31]) and fig.t2s_flush == pytest.approx(0.36)


def test_a_one_letter_tail_joins_the_piece_before_it() -> None:
    # 9 letters → "brea" "kfas" "t": the "t" joins "kfas" (it once landed on the wrong piece,
    # turning "breakfast" into "kfastkfas" in every replay).
    assert llm_tokens(" breakfast") == [" brea", "kfast"]
    assert "".join(llm_tokens("AAAAAAAAB")) == "AAAAAAAAB"
