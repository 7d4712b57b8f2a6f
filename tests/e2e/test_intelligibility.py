"""Real audio quality: what the server streams is as intelligible as the bare engine, with no
clicks where segments join."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio.resample import resample
from bridge.cli import word_pieces
from bridge.client import BridgeClient
from bridge.pipeline import AudioOut, FlushedOut, SessionOptions, SessionPipeline
from bridge.audio.formats import decode_pcm
from tests.support.audio_checks import find_clicks, word_errors
from tests.conftest import transcribe

pytestmark = pytest.mark.slow

REPLIES = [
    "Sure! Your table for two is booked for Friday at seven thirty. I'll send a confirmation to your email.",
    "The quickest way to the station is to walk north on Main Street for two blocks, then turn left at the bakery.",
    "Chelsea won the match three to one. Their second goal came in the final minutes, and the crowd went wild.",
    "For a simple pasta, boil the water, add salt, and cook the spaghetti for about nine minutes before draining it.",
    "Yes, the museum is open on Sundays. Tickets cost twelve dollars for adults, and children under five get in free.",
    "I checked the forecast for you: it will be sunny in the morning, with some rain in the late afternoon.",
]


async def test_streamed_replies_are_as_intelligible_as_the_bare_engine(server_factory, deterministic_piper, whisper) -> None:
    # Piper samples its prosody (noise scales): two renderings of one text differ by a word or
    # two in Whisper's ears, which on ~120 words is more than the 0.02 being tested. With the
    # noise scales at 0 both sides render the same prosody, and the difference is what the
    # streaming path (segmentation, pause shaping, resampling, framing) does to intelligibility.
    server = await server_factory(deterministic_piper)
    bare_errors = streamed_errors = words = 0
    async with await BridgeClient.connect(server.ws_url) as client:
        for reply in REPLIES:
            streamed = await client.speak(word_pieces(reply))
            bare = deterministic_piper.synthesize(reply)
            e_streamed, n = word_errors(reply, transcribe(whisper, streamed, 48000))
            e_bare, _ = word_errors(reply, transcribe(whisper, bare, deterministic_piper.sample_rate))
            streamed_errors += e_streamed
            bare_errors += e_bare
            words += n
    wer_streamed, wer_bare = streamed_errors / words, bare_errors / words
    print(f"WER bare engine {wer_bare:.3f}, streamed through the server {wer_streamed:.3f} over {words} words")
    assert wer_streamed <= wer_bare + 0.02


async def test_no_clicks_where_segments_join(engines_factory, deterministic_piper) -> None:
    engines = engines_factory(deterministic_piper)
    text = " ".join(REPLIES[:3])
    pipeline = SessionPipeline(engines, SessionOptions(events=True))
    frames = []
    segments = 0
    try:
        for token in word_pieces(text):
            pipeline.feed(token)
        pipeline.flush()
        while True:
            item = await pipeline.next_output()
            if isinstance(item, AudioOut):
                frames.append(decode_pcm(item.data, "f32le"))
            elif isinstance(item, FlushedOut):
                segments = item.segments
                break
    finally:
        await pipeline.close()
    streamed = np.concatenate(frames)
    assert segments >= 4  # the reply really was cut into several segments
    assert find_clicks(streamed, 48000) == []
    # The detector would have seen a click: splice a step into the same audio.
    broken = streamed.copy()
    broken[streamed.size // 2 :] += 0.05
    assert find_clicks(broken, 48000) != []
    # And the engine's own output has none either (the detector is not blind, not trigger-happy).
    assert find_clicks(resample(deterministic_piper.synthesize(text), 22050), 48000) == []
