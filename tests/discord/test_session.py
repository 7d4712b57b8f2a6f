"""GuildSession: the commands' logic and what users are told, without a Discord connection.

Real bridge server on loopback, fake LLM, recording voice client (discord.py's real player).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from bridge.engines import Engines
from bridge.server import STATE, create_app
from bots.discord.errors import (
    BadRequest,
    BridgeLost,
    BridgeUnavailable,
    LLMTimeout,
    LLMUnavailable,
    NotInVoice,
    QueueFull,
)
from bots.discord.link import backoff_delays
from bots.discord.session import parse_pitch, split_token
from bots.discord.testing import Script, word_tokens
from tests.conftest import make_settings
from tests.discord.conftest import Replies, say, speak

TRIP = (
    "On Monday you fly to Lisbon, and the flight leaves at eight in the morning. "
    "On Tuesday you take the train to Porto, which takes about three hours."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve_on(port: int, engines: Engines) -> web.AppRunner:
    runner = web.AppRunner(create_app(engines.settings, engines), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        assert time.perf_counter() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def remote(server, session) -> Any:
    return server.app[STATE].sessions[session.link.session_id]


# ----------------------------------------------------------------------------- refusals
async def test_requests_need_voice_and_text(server, session_factory) -> None:
    session, _ = await session_factory(server.ws_url, voice=False)
    with pytest.raises(NotInVoice) as info:
        await session.submit(say("hello"))
    assert "/join" in info.value.user_message
    session.attach_voice(_)
    with pytest.raises(BadRequest) as info:
        await session.submit(speak("   "))
    assert "/speak" in info.value.user_message
    assert await session.stop() == "Nothing is playing."


# ----------------------------------------------------------------------------- policies
async def test_queue_policy_plays_requests_in_order_and_refuses_beyond_the_queue(
    server, session_factory, fake_llm
) -> None:
    session, vc = await session_factory(server.ws_url, queue_size=2)
    fake_llm.script = Script(tokens=word_tokens("One moment, let me think."), rate=8)
    first = replies_a = Replies()
    note, done_a = await session.submit(speak("first?", first))
    assert note is None
    note, done_b = await session.submit(say("Second."))
    assert note == "Queued — I'll say it right after this one."
    note, done_c = await session.submit(say("Third."))
    assert note == "Queued — 2 ahead of you."
    with pytest.raises(QueueFull) as info:
        await session.submit(say("Fourth."))
    assert "/stop" in info.value.user_message
    reports = await asyncio.wait_for(asyncio.gather(done_a, done_b, done_c), 60)
    assert [r.outcome for r in reports] == ["done", "done", "done"]
    assert reports[0].ended <= reports[1].started and reports[1].ended <= reports[2].started
    assert replies_a.messages == ["One moment, let me think."]
    assert len(vc.plays) == 3  # one player run per utterance, one after the other


async def test_stop_interrupts_and_clears_the_queue(server, session_factory, fake_llm) -> None:
    session, vc = await session_factory(server.ws_url, queue_size=3)
    fake_llm.script = Script(tokens=word_tokens(TRIP), rate=20)
    replies = Replies()
    _, done_a = await session.submit(speak("trip?", replies))
    _, done_b = await session.submit(say("Second."))
    _, done_c = await session.submit(say("Third."))
    await wait_until(lambda: fake_llm.requests and fake_llm.requests[-1].first_token_sent)
    assert await session.stop() == "Stopped. Cleared 2 queued requests."
    a, b, c = await asyncio.wait_for(asyncio.gather(done_a, done_b, done_c), 10)
    assert (a.outcome, b.outcome, c.outcome) == ("interrupted", "dropped", "dropped")
    await wait_until(lambda: fake_llm.requests[-1].disconnected)  # the generation was stopped
    await wait_until(lambda: replies.messages)
    assert replies.messages[-1].endswith("*(interrupted)*")
    assert TRIP.startswith(replies.messages[-1].removesuffix("*(interrupted)*").removesuffix(" — "))
    assert not session.busy and await session.stop() == "Nothing is playing."


async def test_guilds_are_independent(server, session_factory) -> None:
    one, vc_one = await session_factory(server.ws_url)
    two, vc_two = await session_factory(server.ws_url)
    assert (await one.set_pitch("+3")).startswith("Pitch set to +3 semitones.")  # kept until connected
    await one.link.connect()
    await two.link.connect()
    assert (await two.set_pitch(-2)).startswith("Pitch set to -2 semitones.")  # sent at once
    assert one.link.session_id != two.link.session_id
    await wait_until(lambda: remote(server, one).options.pitch_shift == 3.0)
    await wait_until(lambda: remote(server, two).options.pitch_shift == -2.0)
    _, done_one = await one.submit(say(TRIP))
    _, done_two = await two.submit(say("The other guild keeps talking."))
    await wait_until(lambda: vc_one.plays)
    assert await one.stop() == "Stopped."
    report_one, report_two = await asyncio.wait_for(asyncio.gather(done_one, done_two), 60)
    assert report_one.outcome == "interrupted" and report_two.outcome == "done"
    assert two.pitch == -2.0 and one.pitch == 3.0


# ----------------------------------------------------------------------------- voice and pitch
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("+3", 3.0),
        ("-2.5", -2.5),
        ("4st", 4.0),
        (" 12 semitones ", 12.0),
        (0, 0.0),
        ("-0", 0.0),
        (24, 24.0),
    ],
)
def test_pitch_accepts_semitones(value, expected) -> None:
    assert parse_pitch(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("abc", "number of semitones"), ("", "number of semitones"), ("30", "between -24 and +24"),
     ("-24.5", "between -24 and +24"), ("nan", "between"), ("inf", "between"), (float("nan"), "between")],
)
def test_pitch_refuses_with_a_sentence(value, fragment) -> None:
    with pytest.raises(BadRequest) as info:
        parse_pitch(value)
    assert fragment in info.value.user_message


async def test_pitch_without_converted_voices_says_it_has_no_effect(server, session_factory) -> None:
    session, _ = await session_factory(server.ws_url)
    await session.link.connect()
    assert "none installed" in await session.set_pitch("2")


class FakeVoices:
    """A voice converter that only lists voices (enough for the server's validation)."""

    def voices(self) -> list[str]:
        return ["alice", "Bob"]

    def info(self) -> dict:
        return {"voices": self.voices()}


@pytest.fixture
async def voices_server(piper_engine):
    engines = Engines(settings=make_settings(), tts=piper_engine, voice=FakeVoices())  # type: ignore[arg-type]
    engines.loaded = True
    port = free_port()
    runner = await serve_on(port, engines)
    app = runner.app
    yield f"ws://127.0.0.1:{port}/ws/stream", app
    await runner.cleanup()
    engines.executor.shutdown(wait=True)


async def test_voice_is_chosen_from_the_servers_list(voices_server, session_factory) -> None:
    url, app = voices_server
    session, _ = await session_factory(url)
    assert await session.list_voices() == "Current voice: the server's default. Available: `alice`, `Bob`."
    assert await session.set_voice("ALICE") == "Voice set to **alice**."
    options = lambda: app[STATE].sessions[session.link.session_id].options  # noqa: E731
    await wait_until(lambda: options().voice == "alice")
    with pytest.raises(BadRequest) as info:
        await session.set_voice("zed")
    assert info.value.user_message == "I don't know the voice `zed`. Available: `alice`, `Bob`."
    assert session.voice_name == "alice"
    assert await session.set_voice("default") == "Back to the default voice."
    await wait_until(lambda: options().voice is None)
    # A reconnect keeps the guild's choice.
    await session.set_voice("bob")
    await session.link.close()
    await session.link.connect()
    assert app[STATE].sessions[session.link.session_id].options.voice == "Bob"


async def test_voice_on_a_server_without_voices(server, session_factory) -> None:
    session, _ = await session_factory(server.ws_url)
    with pytest.raises(BadRequest) as info:
        await session.set_voice("alice")
    assert "no other voices" in info.value.user_message
    assert "no other voices installed" in await session.list_voices()


# ----------------------------------------------------------------------------- failures users see
async def test_bridge_down_is_reported_after_retries(session_factory, caplog) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws/stream"
    session, vc = await session_factory(url, bridge_retries=2, bridge_backoff=0.05)
    replies = Replies()
    _, done = await session.submit(say("Anyone there?", replies))
    report = await asyncio.wait_for(done, 30)
    assert report.outcome == "failed"
    assert replies.messages == [BridgeUnavailable.user_message]
    # One attempt and two retries (the waits between them: test_backoff_doubles_up_to_the_cap).
    failed = [r for r in caplog.records if r.getMessage() == "bridge connect failed"]
    assert len(failed) == 3
    assert not vc.plays
    with pytest.raises(BridgeUnavailable):
        await session.set_voice("x")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert backoff_delays(0.5, 4.0, 5) == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delays(1.0, 8.0, 0) == []


async def test_reconnects_with_backoff_when_the_bridge_comes_back(engines_factory, session_factory, caplog) -> None:
    port = free_port()
    # Retries for up to ~30 s: however long the server below takes to start on a loaded machine.
    session, vc = await session_factory(
        f"ws://127.0.0.1:{port}/ws/stream", bridge_retries=30, bridge_backoff=0.2, bridge_backoff_max=1.0
    )
    engines = engines_factory(shutdown_timeout_seconds=0.2)  # no graceful drain: drop the line
    _, done = await session.submit(say("I'm back."))
    # The first attempt fails (nothing listens yet); the server comes up during the backoff.
    await wait_until(lambda: any(r.getMessage() == "bridge connect failed" for r in caplog.records))
    runner = await serve_on(port, engines)
    try:
        report = await asyncio.wait_for(done, 60)
        assert report.outcome == "done" and session.link.connections == 1
        assert vc.plays
        # The connection drops mid-utterance: the user is told; the next request reconnects.
        replies = Replies()
        _, done = await session.submit(say(TRIP, replies))
        await wait_until(lambda: len(vc.plays) == 2)
        await runner.cleanup()
        report = await asyncio.wait_for(done, 10)
        assert report.outcome == "failed" and replies.messages == [BridgeLost.user_message]
        runner = await serve_on(port, engines)
        _, done = await session.submit(say("Reconnected."))
        report = await asyncio.wait_for(done, 60)
        assert report.outcome == "done" and session.link.connections == 2
    finally:
        await runner.cleanup()


async def test_silent_bridge_is_reported_as_stalled(session_factory) -> None:
    async def mute(request: web.Request) -> web.WebSocketResponse:  # answers `ready`, then nothing
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and json.loads(msg.data).get("type") == "config":
                await ws.send_str(json.dumps({"type": "ready", "session": "mute", "voices": []}))
        return ws

    app = web.Application()
    app.router.add_get("/ws/stream", mute)
    port = free_port()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        session, vc = await session_factory(f"ws://127.0.0.1:{port}/ws/stream", bridge_stall_timeout=0.5)
        replies = Replies()
        _, done = await session.submit(say("Hello?", replies))
        report = await asyncio.wait_for(done, 10)
        assert report.outcome == "failed" and "stopped responding" in replies.messages[0]
        assert not vc.plays
    finally:
        await runner.cleanup()


async def test_llm_down_is_reported(server, session_factory) -> None:
    session, vc = await session_factory(server.ws_url, llm_url=f"http://127.0.0.1:{free_port()}/v1")
    replies = Replies()
    _, done = await session.submit(speak("hi", replies))
    report = await asyncio.wait_for(done, 20)
    assert report.outcome == "failed" and replies.messages == [LLMUnavailable.user_message]
    assert not vc.plays


async def test_llm_timeout_is_reported(server, session_factory, fake_llm) -> None:
    fake_llm.script = Script(tokens=["late"], first_delay=5.0)
    session, vc = await session_factory(server.ws_url, llm_first_token_timeout=0.3)
    replies = Replies()
    _, done = await session.submit(speak("hi", replies))
    report = await asyncio.wait_for(done, 20)
    assert report.outcome == "failed" and replies.messages == [LLMTimeout.user_message]


async def test_llm_failing_mid_reply_speaks_what_came_and_says_why(server, session_factory, fake_llm) -> None:
    fake_llm.script = Script(tokens=word_tokens("Well, the answer is simple. And then"), rate=100, error_after=6)
    session, vc = await session_factory(server.ws_url)
    replies = Replies()
    _, done = await session.submit(speak("hi", replies))
    report = await asyncio.wait_for(done, 30)
    assert report.outcome == "failed"
    assert replies.messages == ["Well, the answer is simple. And\n\n*(My language model failed: the model crashed)*"]
    assert report.source is not None and report.source.audio_frames > 10  # the part that came was spoken


async def test_voice_lost_while_playing_is_reported(server, session_factory) -> None:
    session, vc = await session_factory(server.ws_url)
    vc.timeout = 0.2
    replies = Replies()
    _, done = await session.submit(say(TRIP, replies))
    await wait_until(lambda: vc.plays)
    await wait_until(lambda: sum(p.pcm is not None for p in vc.snapshot()) >= 10)  # playing
    vc.disconnect_now()
    report = await asyncio.wait_for(done, 10)
    assert report.outcome == "failed" and replies.messages == ["I lost the voice connection while speaking."]
    await wait_until(lambda: not remote(server, session).pipeline.busy)  # the bridge was told to stop
    with pytest.raises(NotInVoice):
        await session.submit(say("again"))


# ----------------------------------------------------------------------------- history
async def test_history_carries_the_conversation_per_channel(server, session_factory, fake_llm) -> None:
    session, _ = await session_factory(server.ws_url, persona="You are Joe.")
    _, done = await session.submit(speak("first?", channel_id=7))
    await asyncio.wait_for(done, 30)
    _, done = await session.submit(speak("second?", channel_id=7))
    await asyncio.wait_for(done, 30)
    _, done = await session.submit(speak("elsewhere?", channel_id=8))
    await asyncio.wait_for(done, 30)
    second, elsewhere = fake_llm.requests[1].body["messages"], fake_llm.requests[2].body["messages"]
    assert second == [
        {"role": "system", "content": "You are Joe."},
        {"role": "user", "content": "ann: first?"},
        {"role": "assistant", "content": "Hello there."},
        {"role": "user", "content": "ann: second?"},
    ]
    assert elsewhere == [{"role": "system", "content": "You are Joe."}, {"role": "user", "content": "ann: elsewhere?"}]


async def test_an_idle_guild_gives_its_bridge_session_back(server, session_factory) -> None:
    session, vc = await session_factory(server.ws_url, bridge_idle_seconds=0.3)
    _, done = await session.submit(say("Hi."))
    await asyncio.wait_for(done, 30)
    sessions = server.app[STATE].sessions
    remote_id = session.link.session_id
    assert remote_id in sessions
    await wait_until(lambda: not session.link.connected and remote_id not in sessions, timeout=5)
    _, done = await session.submit(say("Back again."))  # reconnects on demand
    assert (await asyncio.wait_for(done, 30)).outcome == "done"
    await session.detach_voice()  # leaving voice gives it back at once
    assert not session.link.connected


def test_long_text_is_sent_in_tokens_the_server_accepts() -> None:
    text = ("word " * 1000) + "x" * 2500
    pieces = split_token(text)
    assert "".join(pieces) == text and all(len(p) <= 1000 for p in pieces)
    assert pieces[0].endswith(" ") and split_token("short") == ["short"] and split_token("") == []


async def test_an_interrupted_reply_keeps_only_what_was_heard(server, session_factory, fake_llm) -> None:
    session, _ = await session_factory(server.ws_url)
    fake_llm.script = Script(tokens=word_tokens(TRIP), rate=200)  # all of it posted before the cut
    replies = Replies()
    _, done = await session.submit(speak("trip?", replies, channel_id=5))
    await wait_until(lambda: replies.messages == [TRIP])  # the full reply, posted as it streamed
    # Let the player play about 1.5 s of it, then the user stops it.
    await wait_until(lambda: session._current_source is not None and session._current_source.stats.audio_frames >= 75)
    await session.stop()
    report = await asyncio.wait_for(done, 30)
    assert report.outcome == "interrupted" and report.heard
    heard_words, all_words = report.heard.split(), TRIP.split()
    assert 0 < len(heard_words) < len(all_words) // 2 and all_words[: len(heard_words)] == heard_words
    await wait_until(lambda: replies.replaced == [0])  # the posted reply now says what was spoken
    assert replies.messages == [f"{report.heard} — *(interrupted)*"]
    assert session.history.turns(5) == [("ann: trip?", report.heard)]
    fake_llm.script = Script(tokens=word_tokens("Sure."), rate=200)
    _, done = await session.submit(speak("and then?", channel_id=5))
    await asyncio.wait_for(done, 30)
    assert fake_llm.requests[-1].body["messages"][-2] == {"role": "assistant", "content": report.heard}
