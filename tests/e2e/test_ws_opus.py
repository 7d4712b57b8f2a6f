"""Opus on the WebSocket: raw 20 ms packets and Ogg Opus pages, against the PCM path (same
deterministic voice), through the Python client and a bare websockets client."""

from __future__ import annotations

import json

import jiwer
import numpy as np
import pytest
import websockets

from bridge.client import BridgeClient
from tests.support.audio_decode import aligned_snr_db, decode_audio
from tests.conftest import transcribe

TEXT = "Welcome back. The package will arrive on Tuesday between nine and eleven in the morning."
WORDS = "welcome back the package will arrive on tuesday between nine and eleven in the morning"


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


async def utterance_frames(ws: websockets.ClientConnection, text: str) -> list[bytes]:
    """Binary frames of one utterance, up to its ``flushed`` event (events must be on)."""
    await ws.send(json.dumps({"token": text, "flush": True}))
    frames: list[bytes] = []
    while True:
        message = await ws.recv()
        if isinstance(message, bytes):
            frames.append(message)
        elif json.loads(message).get("type") == "flushed":
            return frames


async def test_raw_opus_decodes_to_the_pcm_paths_speech(steady, whisper) -> None:
    async with await BridgeClient.connect(steady.ws_url) as client:
        pcm = await client.speak(TEXT)
    async with await BridgeClient.connect(steady.ws_url, format="opus") as client:
        assert client.ready["format"] == "opus" and client.ready["opus_framing"] == "raw"
        packets: list[bytes] = []
        decoded: list[np.ndarray] = []
        await client.send_token(TEXT)
        await client.flush()
        async for item in client.receive():
            if hasattr(item, "packet"):
                packets.append(item.packet)
                decoded.append(item.samples)
            elif item.type == "flushed":
                break
    opus = np.concatenate(decoded)
    assert all(len(p) < 400 for p in packets) and len(packets) == int(np.ceil(pcm.size / 960))
    assert abs(opus.size - pcm.size) < 960  # every 20 ms packet decodes to 20 ms
    snr = aligned_snr_db(pcm, opus)
    assert snr > 15.0, snr  # a perceptual codec: close to the waveform (≈ 28 dB at 64 kbit/s), not equal
    wer_pcm = jiwer.wer(WORDS, _words(transcribe(whisper, pcm, 48000)))
    wer_opus = jiwer.wer(WORDS, _words(transcribe(whisper, opus, 48000)))
    assert wer_opus <= wer_pcm + 0.02, (wer_pcm, wer_opus)
    # Bandwidth: raw packets vs 48 kHz float32 (1.5 Mbit/s).
    assert sum(map(len, packets)) < pcm.size * 4 / 12


async def test_ogg_opus_is_one_stream_across_utterances(steady) -> None:
    async with websockets.connect(steady.ws_url + "?events=1&format=opus") as ws:
        ready = json.loads(await ws.recv())
        assert ready["format"] == "opus" and ready["opus_framing"] == "ogg"
        first = await utterance_frames(ws, "Hello there, how are you?")
        second = await utterance_frames(ws, TEXT)
    async with websockets.connect(steady.ws_url + "?events=1&format=s16le") as ws:
        json.loads(await ws.recv())
        pcm_first = b"".join(await utterance_frames(ws, "Hello there, how are you?"))
        pcm_second = b"".join(await utterance_frames(ws, TEXT))
    assert first[0].startswith(b"OggS") and all(f.startswith(b"OggS") for f in first + second)
    audio, rate = decode_audio(b"".join(first + second), "ogg")
    expected = (len(pcm_first) + len(pcm_second)) / 2 / 48000
    # Each utterance: its last frame padded to 20 ms, then 20 ms of silence that closes its pages.
    assert rate == 48000 and expected < audio.size / rate < expected + 0.1
    # The first utterance's pages were all out by its `flushed`: it decodes alone, whole.
    alone, _ = decode_audio(b"".join(first), "ogg")
    assert abs(alone.size / 48000 - len(pcm_first) / 2 / 48000) < 0.05


async def test_format_changes_apply_from_the_next_utterance(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url, format="s16le") as client:
        pcm = await client.speak("One two three.")
        await client.configure(format="opus")
        opus = await client.speak("One two three.")
        await client.configure(format="f32le")
        back = await client.speak("One two three.")
    assert abs(opus.size - pcm.size) < 960 and abs(back.size - pcm.size) < 2
    assert aligned_snr_db(pcm, opus) > 15.0 and np.allclose(back, pcm, atol=1e-4)


async def test_cancel_leaves_the_opus_stream_decodable(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url, format="opus") as client:
        await client.send_token(TEXT + " " + TEXT)
        await client.flush()
        async for item in client.receive():
            if hasattr(item, "packet"):
                break  # audio is flowing
        await client.cancel()
        async for item in client.receive():
            if not hasattr(item, "packet") and item.type == "cancelled":
                break
        after = await client.speak("Still clear after the cancel.")
        errors = list(client.errors)
    assert not errors and after.size > 48000 and np.max(np.abs(after)) > 0.1


@pytest.mark.parametrize(
    "config",
    [{"format": "mp3"}, {"format": "opus", "opus_framing": "webm"}, {"opus_framing": 3}],
)
async def test_bad_format_options_get_an_error_frame_and_the_session_goes_on(steady, config: dict) -> None:
    async with websockets.connect(steady.ws_url + "?events=1&format=opus&opus_framing=raw") as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "config", **config}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and ("format" in error["error"] or "opus_framing" in error["error"])
        frames = await utterance_frames(ws, "Still raw Opus.")
    assert frames and all(len(f) < 400 for f in frames)


async def test_a_format_chosen_mid_utterance_applies_from_the_next(steady) -> None:
    async with websockets.connect(steady.ws_url + "?events=1") as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"token": TEXT, "flush": True}))
        frames: list[bytes] = []
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                if not frames:  # audio is flowing: switch now
                    await ws.send(json.dumps({"type": "config", "format": "opus", "opus_framing": "raw"}))
                frames.append(message)
            elif json.loads(message).get("type") == "flushed":
                break
        after = await utterance_frames(ws, "And now in Opus.")
    # The whole first utterance stayed float32 PCM (20 ms = 3 840 bytes; the last frame shorter).
    assert all(len(f) == 3840 for f in frames[:-1]) and len(frames) > 100
    assert after and all(len(f) < 400 for f in after)
