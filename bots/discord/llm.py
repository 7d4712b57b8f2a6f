"""A streaming client for OpenAI-compatible ``/v1/chat/completions`` (llama.cpp, Ollama, vLLM,
OpenAI), and the per-channel chat history it is given.

Tokens are yielded the moment their SSE event is complete, so the bridge can start speaking
the first words while the model is still writing. The stream is parsed as real
``text/event-stream`` (:class:`SSEParser`): network reads cut events, lines and even UTF-8
characters anywhere, and servers differ in line endings and keep-alive comments.

Every failure becomes one of the errors in :mod:`bots.discord.errors` with a sentence for the
channel; the technical detail goes to the log.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bots.discord.errors import LLMFailed, LLMTimeout, LLMUnavailable
from bots.discord.settings import DiscordSettings, default_of

log = logging.getLogger(__name__)

Message = dict[str, str]

#: Cap on an error body read back from the server (it goes into a log line and one sentence).
_ERROR_BODY_LIMIT = 4096


# ----------------------------------------------------------------------------- SSE
@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"


_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEParser:
    """Incremental ``text/event-stream`` parser: bytes in (any split), complete events out.

    Follows the WHATWG rules that matter here: lines end in CRLF, LF or CR; ``:`` lines are
    comments (keep-alives); ``data:`` lines of one event are joined with ``\\n``; a blank line
    dispatches; one space after the colon is dropped; a leading BOM is ignored.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buffer += text
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        """End of stream: a last line without its line end still counts (no dispatch without a blank line)."""
        self._buffer += self._decoder.decode(b"", final=True)
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        position = 0
        buffer = self._buffer
        for match in _LINE_END.finditer(buffer):
            # A CR at the very end may be the first half of a CRLF: wait for the next read.
            if match.group() == "\r" and match.end() == len(buffer) and not final:
                break
            self._line(buffer[position : match.start()], events)
            position = match.end()
        rest = buffer[position:]
        if final and rest:
            self._line(rest, events)
            rest = ""
        self._buffer = rest
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent("\n".join(self._data), self._event or "message"))
            self._data = []
            self._event = ""
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # id and retry mean nothing for a one-shot completion stream.


# ----------------------------------------------------------------------------- history
class ChatHistory:
    """Recent exchanges per channel, bounded in turns and in channels (least recent dropped).

    Bounded both ways so that a long-running bot in many channels has flat memory.
    """

    def __init__(self, max_turns: int, max_channels: int = default_of("history_channels")) -> None:
        self.max_turns = max_turns
        self.max_channels = max_channels
        self._channels: OrderedDict[int, deque[tuple[str, str]]] = OrderedDict()

    def messages(self, channel_id: int, persona: str, prompt: str) -> list[Message]:
        """The request's messages: the persona, this channel's history, then the new prompt."""
        messages: list[Message] = [{"role": "system", "content": persona}] if persona else []
        for user, assistant in self._channels.get(channel_id, ()):
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        messages.append({"role": "user", "content": prompt})
        return messages

    def record(self, channel_id: int, prompt: str, reply: str) -> None:
        if self.max_turns == 0 or not reply.strip():
            return
        turns = self._channels.get(channel_id)
        if turns is None:
            turns = self._channels[channel_id] = deque(maxlen=self.max_turns)
        self._channels.move_to_end(channel_id)
        turns.append((prompt, reply))
        while len(self._channels) > self.max_channels:
            self._channels.popitem(last=False)

    def turns(self, channel_id: int) -> list[tuple[str, str]]:
        return list(self._channels.get(channel_id, ()))

    def clear(self, channel_id: int | None = None) -> None:
        if channel_id is None:
            self._channels.clear()
        else:
            self._channels.pop(channel_id, None)


# ----------------------------------------------------------------------------- client
@dataclass
class StreamStats:
    """Timestamps (``time.perf_counter``) of one completion, for logs and the benchmark."""

    started: float = 0.0
    first_token: float | None = None
    finished: float | None = None
    tokens: int = 0
    finish_reason: str | None = None


@dataclass
class ChatClient:
    """Streams chat completions over one shared aiohttp session (created on first use)."""

    settings: DiscordSettings
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.settings.llm_connect_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def request_body(self, messages: list[Message]) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {"model": s.llm_model, "messages": messages, "stream": True}
        if s.llm_temperature is not None:
            body["temperature"] = s.llm_temperature
        if s.llm_max_tokens is not None:
            body["max_tokens"] = s.llm_max_tokens
        body.update(s.llm_extra)
        body["stream"] = True
        return body

    async def stream(self, messages: list[Message], stats: StreamStats | None = None) -> AsyncIterator[str]:
        """Yield the reply's text pieces as they arrive.

        Raises :class:`LLMUnavailable` (cannot connect), :class:`LLMTimeout` (no first token
        within ``llm_first_token_timeout``, or a silence longer than ``llm_read_timeout``) or
        :class:`LLMFailed` (an HTTP error, an error inside the stream, a cut-off stream).
        Closing the generator early closes the HTTP response, which stops the generation on
        llama.cpp, Ollama and vLLM.
        """
        s = self.settings
        stats = stats if stats is not None else StreamStats()
        stats.started = time.perf_counter()
        url = s.chat_completions_url
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if s.llm_api_key is not None:
            headers["Authorization"] = f"Bearer {s.llm_api_key.get_secret_value()}"
        http = await self._http()
        try:
            async with asyncio.timeout(s.llm_first_token_timeout):
                response = await http.post(url, data=json.dumps(self.request_body(messages)), headers=headers)
        except TimeoutError:
            raise LLMTimeout(f"no response from {url} within {s.llm_first_token_timeout:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise LLMUnavailable(f"cannot connect to {url}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise LLMUnavailable(f"request to {url} failed: {exc}") from None
        try:
            if response.status != 200:
                raise await _http_error(response, url)
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                # The server ignored stream: true (or a proxy buffered it): take the whole reply.
                async for piece in _whole_reply(response, stats, s.llm_first_token_timeout):
                    yield piece
                return
            async for piece in self._events(response, stats):
                yield piece
        finally:
            response.close()  # early exit included: closing the connection stops the generation

    async def _events(self, response: aiohttp.ClientResponse, stats: StreamStats) -> AsyncIterator[str]:
        s = self.settings
        parser = SSEParser()
        done = False
        while not done:
            limit = s.llm_first_token_timeout if stats.first_token is None else s.llm_read_timeout
            try:
                async with asyncio.timeout(limit):
                    chunk = await response.content.readany()
            except TimeoutError:
                what = "first token" if stats.first_token is None else "next token"
                raise LLMTimeout(f"no {what} within {limit:g}s") from None
            except aiohttp.ClientError as exc:
                raise LLMFailed(f"stream broke: {exc}", "My language model's reply was cut off.") from None
            events = parser.feed(chunk) if chunk else parser.close()
            for event in events:
                data = event.data.strip()
                if data == "[DONE]":
                    done = True
                    break
                piece = _delta(data, event.event, stats)
                if piece:
                    if stats.first_token is None:
                        stats.first_token = time.perf_counter()
                    stats.tokens += 1
                    yield piece
            if not chunk and not done:
                if stats.finish_reason is not None:
                    break  # a server that ends without [DONE] after a finish_reason
                raise LLMFailed("stream ended without [DONE]", "My language model's reply was cut off.")
        stats.finished = time.perf_counter()
        log.debug("llm stream done", extra={"tokens": stats.tokens, "finish_reason": stats.finish_reason})


def _delta(data: str, event: str, stats: StreamStats) -> str:
    """The text of one streamed chunk ('' if none); raises on an error chunk."""
    try:
        obj = json.loads(data)
    except json.JSONDecodeError:
        log.warning("llm sent a non-JSON event", extra={"data": data[:120]})
        return ""
    if not isinstance(obj, dict):
        return ""
    if event == "error" or "error" in obj:
        raise LLMFailed(f"error in stream: {_error_text(obj)}", f"My language model failed: {_error_text(obj)}")
    choices = obj.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    if choice.get("finish_reason"):
        stats.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is None:
        content = choice.get("text")  # legacy completions-style chunks
    return content if isinstance(content, str) else ""


def _error_text(obj: Any) -> str:
    error = obj.get("error", obj) if isinstance(obj, dict) else obj
    if isinstance(error, dict):
        error = error.get("message") or error.get("type") or json.dumps(error)[:200]
    return str(error)[:300]


async def _http_error(response: aiohttp.ClientResponse, url: str) -> LLMFailed | LLMUnavailable:
    raw = b""
    try:
        async with asyncio.timeout(5):
            while len(raw) < _ERROR_BODY_LIMIT and (piece := await response.content.read(_ERROR_BODY_LIMIT - len(raw))):
                raw += piece
    except (aiohttp.ClientError, TimeoutError):
        pass
    body = raw.decode("utf-8", "replace")
    try:
        detail = _error_text(json.loads(body))
    except (json.JSONDecodeError, AttributeError):
        detail = body.strip()[:300] or response.reason or ""
    status = response.status
    technical = f"{url} answered {status}: {detail}"
    if status in (401, 403):
        return LLMFailed(technical, "My language model rejected my API key (check VOICE_BRIDGE_DISCORD_LLM_API_KEY).")
    if status == 404:
        return LLMFailed(technical, f"My language model wasn't found: {detail or 'check the URL and model name'}.")
    if status == 429:
        return LLMFailed(technical, "My language model is rate-limited or busy right now. Try again in a moment.")
    if status >= 500:
        return LLMUnavailable(technical, f"My language model had a server error: {detail or status}.")
    return LLMFailed(technical, f"My language model refused the request: {detail or status}.")


async def _whole_reply(response: aiohttp.ClientResponse, stats: StreamStats, limit: float) -> AsyncIterator[str]:
    try:
        async with asyncio.timeout(limit):
            obj = await response.json(content_type=None)
    except TimeoutError:
        raise LLMTimeout(f"no reply within {limit:g}s") from None
    except (json.JSONDecodeError, aiohttp.ClientError, ValueError) as exc:
        raise LLMFailed(f"unreadable reply: {exc}", "My language model sent a reply I can't read.") from None
    if isinstance(obj, dict) and "error" in obj:
        raise LLMFailed(f"error: {_error_text(obj)}", f"My language model failed: {_error_text(obj)}")
    try:
        text = obj["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise LLMFailed(
            "reply without choices[0].message.content", "My language model sent a reply I can't read."
        ) from None
    if text:
        stats.first_token = time.perf_counter()
        stats.tokens = 1
        yield text
    stats.finished = time.perf_counter()
