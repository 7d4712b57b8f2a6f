"""The OpenAI-compatible streaming client against a fake server on loopback, and its SSE parser."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bots.discord.errors import LLMFailed, LLMTimeout, LLMUnavailable
from bots.discord.llm import ChatClient, ChatHistory, SSEParser, StreamStats
from bots.discord.testing import FakeChatServer, Script, word_tokens
from tests.discord.conftest import discord_settings

MESSAGES = [{"role": "user", "content": "hi"}]


# ----------------------------------------------------------------------------- SSE parser
STREAM = (
    "\ufeff: comment line\r\n"
    "data: {\"a\": \"café ☕\"}\r\n\r\n"
    "event: note\n"
    "data: line one\n"
    "data:line two\n\n"
    "data: cr only\r\r"
    "id: 7\nretry: 100\ndata: [DONE]\n\n"
).encode()
EXPECTED = [
    ('{"a": "café ☕"}', "message"),
    ("line one\nline two", "note"),
    ("cr only", "message"),
    ("[DONE]", "message"),
]


def _parse(pieces: list[bytes]) -> list[tuple[str, str]]:
    parser = SSEParser()
    events = [e for piece in pieces for e in parser.feed(piece)] + parser.close()
    return [(e.data, e.event) for e in events]


def test_sse_whole_stream() -> None:
    assert _parse([STREAM]) == EXPECTED


def test_sse_split_at_every_byte_boundary() -> None:
    for cut in range(1, len(STREAM)):
        assert _parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_sse_one_byte_at_a_time() -> None:
    assert _parse([bytes([b]) for b in STREAM]) == EXPECTED


def test_sse_event_without_blank_line_at_eof_is_not_dispatched() -> None:
    assert _parse([b"data: complete\n\ndata: partial"]) == [("complete", "message")]


# ----------------------------------------------------------------------------- client
@pytest.fixture
async def chat(fake_llm: FakeChatServer):
    clients: list[ChatClient] = []

    def make(**overrides) -> ChatClient:
        client = ChatClient(discord_settings(**{"llm_url": fake_llm.url, **overrides}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def collect(client: ChatClient, stats: StreamStats | None = None) -> list[str]:
    return [piece async for piece in client.stream(MESSAGES, stats)]


async def test_streams_tokens_in_order_and_sends_a_proper_request(chat, fake_llm) -> None:
    text = "Sure! Here's a quick answer, with a naïve café ☕ in it."
    fake_llm.script = Script(tokens=word_tokens(text), rate=200, keepalive_comments=True)
    client = chat(llm_model="llama3.2", llm_api_key="sk-test", llm_temperature=0.5, llm_extra={"top_p": 0.9})
    stats = StreamStats()
    pieces = await collect(client, stats)
    assert "".join(pieces) == text and len(pieces) == len(word_tokens(text))
    body = fake_llm.requests[-1].body
    assert body["stream"] is True and body["model"] == "llama3.2" and body["messages"] == MESSAGES
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9 and body["max_tokens"] == 300
    assert fake_llm.requests[-1].headers["Authorization"] == "Bearer sk-test"
    assert stats.first_token is not None and stats.finish_reason == "stop" and stats.tokens == len(pieces)


async def test_events_split_across_reads_mid_line_and_mid_character(chat, fake_llm) -> None:
    text = "Naïve café ☕ — déjà vu, über cool."
    fake_llm.script = Script(tokens=word_tokens(text), rate=0, split_bytes=True)
    assert "".join(await collect(chat())) == text


async def test_full_chat_completions_url_is_accepted(chat, fake_llm) -> None:
    client = chat(llm_url=fake_llm.url + "/chat/completions")
    assert "".join(await collect(client)) == "Hello there."


async def test_done_ends_the_stream_even_without_finish_reason(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["a", "b"], rate=0, send_finish=False)
    assert await collect(chat()) == ["a", "b"]


async def test_finish_reason_then_eof_without_done_is_accepted(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["a", "b"], rate=0, send_done=False)
    assert await collect(chat()) == ["a", "b"]


async def test_cut_off_stream_is_an_error(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["a", "b"], rate=0, send_done=False, send_finish=False)
    with pytest.raises(LLMFailed, match="without"):
        await collect(chat())


async def test_error_inside_the_stream(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["one", " two", " three"], rate=0, error_after=2)
    got: list[str] = []
    with pytest.raises(LLMFailed) as info:
        async for piece in chat().stream(MESSAGES):
            got.append(piece)
    assert got == ["one", " two"]  # what came before the error was already handed out
    assert "the model crashed" in info.value.user_message


@pytest.mark.parametrize(
    ("status", "body", "kind", "fragment"),
    [
        (500, {"error": {"message": "CUDA out of memory"}}, LLMUnavailable, "CUDA out of memory"),
        (401, {"error": {"message": "bad key"}}, LLMFailed, "API key"),
        (404, {"error": "model 'x' not found"}, LLMFailed, "model 'x' not found"),
        (429, {"error": {"message": "slow down"}}, LLMFailed, "busy"),
        (400, {"error": {"message": "context too long"}}, LLMFailed, "context too long"),
    ],
)
async def test_http_errors_become_clear_messages(chat, fake_llm, status, body, kind, fragment) -> None:
    fake_llm.script = Script(status=status, error_body=body)
    with pytest.raises(kind) as info:
        await collect(chat())
    assert fragment in info.value.user_message
    assert str(status) in str(info.value)


async def test_connection_refused_is_unavailable(chat) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(LLMUnavailable, match="cannot connect"):
        await collect(chat(llm_url=f"http://127.0.0.1:{port}/v1"))


async def test_first_token_timeout(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["late"], first_delay=5.0)
    with pytest.raises(LLMTimeout, match="first token"):
        await asyncio.wait_for(collect(chat(llm_first_token_timeout=0.3)), 5)


async def test_silence_between_tokens_times_out(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["a", "b", "c"], rate=0, stall_after=2, stall_seconds=5.0)
    got: list[str] = []
    with pytest.raises(LLMTimeout, match="next token"):
        async for piece in chat(llm_read_timeout=0.3).stream(MESSAGES):
            got.append(piece)
    assert got == ["a", "b"]


async def test_server_ignoring_stream_true_still_works(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=["All", " at", " once."], stream=False)
    assert await collect(chat()) == ["All at once."]


async def test_closing_the_generator_closes_the_request(chat, fake_llm) -> None:
    fake_llm.script = Script(tokens=[f" w{i}" for i in range(200)], rate=100)
    stream = chat().stream(MESSAGES)
    assert await stream.__anext__() == " w0"
    await stream.aclose()
    for _ in range(100):
        if fake_llm.requests[-1].disconnected:
            break
        await asyncio.sleep(0.02)
    assert fake_llm.requests[-1].disconnected and not fake_llm.requests[-1].finished


def test_history_is_bounded_per_channel_and_in_channels() -> None:
    history = ChatHistory(max_turns=2, max_channels=2)
    for i in range(3):
        history.record(1, f"q{i}", f"a{i}")
    assert history.turns(1) == [("q1", "a1"), ("q2", "a2")]
    messages = history.messages(1, "You are Joe.", "q3")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == "You are Joe." and messages[-1]["content"] == "q3"
    history.record(2, "x", "y")
    history.record(3, "x", "y")  # a third channel pushes out the least recent one
    assert history.turns(1) == [] and history.turns(3) == [("x", "y")]
    history.record(2, "empty reply", "  ")
    assert history.turns(2) == [("x", "y")]
    assert ChatHistory(max_turns=0).messages(1, "", "hi") == [{"role": "user", "content": "hi"}]
