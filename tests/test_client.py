"""bridge.client against the real server: speaking, cancelling, errors."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.cli import word_pieces
from bridge.client import AudioChunk, BridgeClient, BridgeError, Event, Words
from tests.support.engines_util import wait_until


async def test_speak_streams_tokens_and_returns_the_utterance(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        assert client.ready["sample_rate"] == 48000
        audio = await client.speak(word_pieces("Hello from the Python client."), tokens_per_second=200)
        again = await client.speak("A second utterance.")
    assert audio.dtype == np.float32 and audio.size / 48000 > 1.0
    assert again.size / 48000 > 0.5
    assert client.errors == []


async def test_audio_iterator_ends_at_flushed(server) -> None:
    async with await BridgeClient.connect(server.ws_url, format="s16le") as client:
        await client.send_token("Counting: one, two, three.")
        await client.flush()
        chunks = [chunk async for chunk in client.audio()]
    assert chunks and all(c.dtype == np.float32 for c in chunks)
    assert np.max(np.abs(np.concatenate(chunks))) > 0.1


async def test_cancel_drops_audio_in_flight(server) -> None:
    text = "This is a long answer that goes on and on about many things. " * 6
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token(text)
        await client.flush()
        async for item in client.receive():
            if isinstance(item, AudioChunk):
                break
        await client.cancel()
        # Until `cancelled`, nothing stale is handed out; then the next utterance is clean.
        async for item in client.receive():
            assert not isinstance(item, AudioChunk)
            if isinstance(item, Event) and item.type == "cancelled":
                break
        audio = await client.speak("After the cancel.")
    assert audio.size / 48000 > 0.5


async def test_server_errors_are_collected(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token("ok", pitch_shift=None)
        await client._ws.send("garbage")  # noqa: SLF001 - a raw bad frame
        audio = await client.speak(" fine.")
    assert any("invalid JSON" in e for e in client.errors)
    assert audio.size > 0


async def test_unknown_voice_fails_connect_clearly(server) -> None:
    with pytest.raises(BridgeError, match="unknown voice"):
        await BridgeClient.connect(server.ws_url, voice="nobody")


async def test_connect_to_nothing_is_a_clear_error() -> None:
    with pytest.raises(BridgeError, match="cannot connect"):
        await BridgeClient.connect("ws://127.0.0.1:9/ws/stream", open_timeout=2)


# ----------------------------------------------------------------------------- cancel
LONG = "This is a long answer that goes on and on about many different things. " * 6


def _queued(client: BridgeClient) -> list:
    return [entry[1] for entry in list(client._queue._queue) if entry is not None]  # noqa: SLF001


async def test_cancel_never_hands_out_a_frame_held_by_the_blocked_reader(server) -> None:
    async with await BridgeClient.connect(server.ws_url, queue_frames=2) as client:
        await client.send_token(LONG)
        await client.flush()
        await wait_until(client._queue.full, "the queue is full")  # noqa: SLF001
        # The reader now holds a third frame, waiting for room in the queue.
        await wait_until(lambda: len(client._queue._putters) > 0, "the reader waits for room")  # noqa: SLF001
        await client.cancel()
        async for item in client.receive():
            assert not isinstance(item, AudioChunk), "stale audio after cancel"
            if isinstance(item, Event) and item.type == "cancelled":
                break
        audio = await client.speak("Fresh start.")
    assert audio.size > 0


async def test_a_second_cancel_keeps_the_first_cancelled_event(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token(LONG)
        await client.flush()
        await client.cancel()
        await wait_until(lambda: any(isinstance(i, Event) and i.type == "cancelled" for i in _queued(client)), "cancelled is queued")
        await client.cancel()
        cancelled = 0
        async for item in client.receive():
            assert not isinstance(item, AudioChunk)
            if isinstance(item, Event) and item.type == "cancelled":
                cancelled += 1
                if cancelled == 2:
                    break
    assert cancelled == 2


# ----------------------------------------------------------------------------- word timings
REPLY = "The keeper counted ships until the fog rolled in. Then he climbed the stairs and lit the lamp."


async def send_reply(client: BridgeClient, text: str = REPLY) -> None:
    """Stream ``text`` as an LLM would, then flush."""
    for piece in word_pieces(text):
        await client.send_token(piece)
    await client.flush()


async def test_words_are_opt_in_and_come_before_their_audio(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url, words=True) as client:
        await send_reply(client)
        received = 0
        items: list[Words] = []
        async for item in client.receive():
            if isinstance(item, AudioChunk):
                received += item.samples.size
            elif isinstance(item, Words):
                assert received / 48000 <= item.words[0].start  # before the audio it times
                items.append(item)
            elif item.type == "flushed":
                break
        words = [w for item in items for w in item.words]
        assert client.words == words
        again = await client.speak_timed(word_pieces("It cost $3.14 a night."))
    assert [w.text for w in words] == REPLY.split()
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(0 <= w.start <= w.end <= received / 48000 for w in words)
    assert not any(w.estimated for w in words)
    assert [w.text for w in again.words] == "It cost $3.14 a night.".split()
    assert again.words[-1].end <= again.audio.size / 48000


async def test_a_client_that_does_not_ask_gets_no_words(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url) as client:
        await send_reply(client)
        async for item in client.receive():
            assert not isinstance(item, Words)
            if isinstance(item, Event) and item.type == "flushed":
                break
        spoken = await client.speak_timed("Still nothing new.")
    assert spoken.words == [] and client.words == [] and spoken.audio.size > 0


async def test_interrupt_with_the_played_position_returns_the_words_heard(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url, words=True) as client:
        await send_reply(client)
        received = 0
        async for item in client.receive():
            if isinstance(item, AudioChunk):
                received += item.samples.size
                if received >= 2 * 48000:
                    break
        words = list(client.words)
        heard = await client.interrupt(played_seconds=1.2)
    assert heard.seconds == pytest.approx(1.2, abs=0.001)
    assert heard.text == " ".join(w.text for w in words if w.start < 1.2)
    assert 0 < len(heard.text.split()) < len(REPLY.split()) and REPLY.startswith(heard.text)
    assert client.heard == heard


async def test_cancel_reports_what_was_received_even_without_word_events(steady) -> None:
    async with await BridgeClient.connect(steady.ws_url) as client:
        await client.send_token(REPLY)
        await client.flush()
        async for item in client.receive():
            if isinstance(item, AudioChunk):
                break
        heard = await client.interrupt()
        audio = await client.speak("Next.")
    assert heard.seconds > 0 and REPLY.startswith(heard.text)
    assert audio.size > 0
