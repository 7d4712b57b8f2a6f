"""Per-guild state and the logic of every command, with Discord kept at the edge.

:class:`GuildSession` knows nothing of contexts, interactions or channels: it gets a
:class:`VoicePort` (what it needs of ``discord.VoiceClient``: ``play``/``stop``/``is_playing``/
``is_connected``) and, with each request, a ``reply`` coroutine to post text. The cog
(:mod:`bots.discord.cog`) turns Discord objects into these; tests drive this class directly
with a recording voice client, a real bridge and a fake LLM.

One utterance plays at a time per guild. A request that arrives while one is playing is queued
or interrupts it (``busy_policy``). An utterance:

1. connects the guild's :class:`BridgeLink` (with backoff) and makes a fresh
   :class:`StreamSource` its sink;
2. streams the LLM's reply (or the ``say`` text) into the bridge token by token;
3. starts the player as soon as the source holds ``prebuffer_ms`` of audio;
4. at the end of the text sends ``flush``, posts the text, and waits for ``flushed`` and for
   the player to play the last sample;
5. on stop/interrupt: empties the source (the next 20 ms frame is already silent), stops the
   player, sends ``cancel``; the next utterance starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bridge.protocol import PITCH_SHIFT_LIMIT
from bots.discord.errors import (
    BadRequest,
    BridgeLost,
    LLMError,
    NotInVoice,
    QueueFull,
    UserFacingError,
    VoiceFailed,
)
from bots.discord.link import BridgeLink
from bots.discord.llm import ChatClient, ChatHistory, StreamStats
from bots.discord.settings import DiscordSettings
from bots.discord.source import FRAME_SAMPLES, SAMPLE_RATE, OpusStreamSource, SourceStats, StreamSource

log = logging.getLogger(__name__)

#: Posts text to the channel; may return a :class:`Posted` handle to replace what it posted.
Reply = Callable[[str], Awaitable[Any]]


class Posted(Protocol):
    """A reply already in the channel, which the bot can replace (a cut-off reply)."""

    async def replace(self, text: str) -> None: ...
Outcome = Literal["done", "interrupted", "failed", "dropped"]

#: Words that mean "the server's default voice" in ``/voice``.
DEFAULT_VOICE_WORDS = {"default", "none", "off", "reset"}


class VoicePort(Protocol):
    """What a guild session needs of ``discord.VoiceClient``."""

    def is_connected(self) -> bool: ...

    def is_playing(self) -> bool: ...

    def play(self, source: Any, *, after: Callable[[Exception | None], Any] | None = None, **kwargs: Any) -> None: ...

    def stop(self) -> None: ...


_request_ids = itertools.count(1)


@dataclass
class Request:
    """One ``speak`` (prompt for the LLM) or ``say`` (text to speak as is)."""

    kind: Literal["speak", "say"]
    text: str
    channel_id: int = 0
    author: str = ""
    reply: Reply | None = None
    id: int = field(default_factory=lambda: next(_request_ids))


@dataclass
class UtteranceReport:
    """How one request went; resolved on :attr:`GuildSession.submit`'s future, and logged."""

    request: Request
    outcome: Outcome = "done"
    text: str = ""
    error: str | None = None
    llm: StreamStats = field(default_factory=StreamStats)
    source: SourceStats | None = None
    started: float = 0.0  # perf_counter when the utterance began
    bridge_first_chunk: float | None = None
    playback_started: float | None = None
    playback_ended: float | None = None  # when the player reported the end (its `after`)
    ended: float | None = None
    #: Interrupted: the words the listener heard (the server's ``cancelled``), None if unknown.
    heard: str | None = None
    posted: Any = None  # what the reply callable returned for the posted reply


class GuildSession:
    """Everything one guild's voice bot does. All methods run on the event loop."""

    def __init__(
        self,
        guild_id: int,
        settings: DiscordSettings,
        chat: ChatClient,
        history: ChatHistory,
        *,
        link: BridgeLink | None = None,
    ) -> None:
        self.guild_id = guild_id
        self.settings = settings
        self.chat = chat
        self.history = history
        self.voice_name: str | None = settings.voice
        self.pitch: float = settings.pitch
        self.link = link or BridgeLink(settings, voice=self.voice_name, pitch=self.pitch, name=str(guild_id))
        self.voice: VoicePort | None = None
        self.log = logging.LoggerAdapter(log, {"guild": guild_id})
        self._pending: deque[tuple[Request, asyncio.Future[UtteranceReport]]] = deque()
        self._current: Request | None = None
        self._current_source: StreamSource | None = None
        self._current_task: asyncio.Task[None] | None = None
        self.reports: deque[UtteranceReport] = deque(maxlen=32)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._idle_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def attach_voice(self, voice: VoicePort) -> None:
        self.voice = voice

    async def detach_voice(self) -> None:
        """The bot left (or was moved out of) voice: stop everything, forget the voice client,
        and give the bridge session back (the server has a session limit)."""
        await self.stop()
        self.voice = None
        await self.link.close()

    def _voice_or_raise(self) -> VoicePort:
        if self.voice is None or not self.voice.is_connected():
            raise NotInVoice()
        return self.voice

    # ------------------------------------------------------------------ commands
    async def submit(self, request: Request) -> tuple[str | None, asyncio.Future[UtteranceReport]]:
        """Accept a speak/say request: (a note for the user or None, a future of its report).

        Raises :class:`BadRequest`, :class:`NotInVoice` or :class:`QueueFull` at once, so the
        command can answer before anything is spoken.
        """
        request.text = request.text.strip()
        if not request.text:
            what = "a prompt" if request.kind == "speak" else "some text"
            raise BadRequest(user_message=f"Give me {what}, like `/{request.kind} hello there`.")
        self._voice_or_raise()
        note: str | None = None
        if self.busy:
            if self.settings.busy_policy == "interrupt":
                await self._drop_pending()
                await self._interrupt()
            else:
                if len(self._pending) >= self.settings.queue_size:
                    raise QueueFull()
                ahead = len(self._pending) + (1 if self._current is not None else 0)
                if ahead == 1:
                    note = "Queued — I'll say it right after this one."
                else:
                    note = f"Queued — {ahead} ahead of you."
        future: asyncio.Future[UtteranceReport] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        self._disarm_idle()
        self._start_next()
        return note, future

    async def stop(self) -> str:
        """Interrupt what is playing and clear the queue."""
        dropped = await self._drop_pending()
        playing = self._current is not None
        await self._interrupt()
        if not playing and not dropped:
            return "Nothing is playing."
        extra = f" Cleared {dropped} queued request{'s' if dropped != 1 else ''}." if dropped else ""
        return ("Stopped." if playing else "Nothing is playing.") + extra

    async def list_voices(self) -> str:
        await self.link.connect()
        voices = self.link.voices
        current = self.voice_name or "the server's default"
        self._arm_idle_if_quiet()
        if not voices:
            return f"Current voice: {current}. The voice server has no other voices installed."
        return f"Current voice: {current}. Available: {', '.join(f'`{v}`' for v in voices)}."

    async def set_voice(self, name: str) -> str:
        """Choose an RVC voice by name (case-insensitive); ``default`` returns to the server's."""
        name = name.strip()
        if not name or name.lower() in DEFAULT_VOICE_WORDS:
            self.voice_name = None
            await self.link.configure(voice="")
            return "Back to the default voice."
        await self.link.connect()
        self._arm_idle_if_quiet()
        voices = self.link.voices
        if not voices:
            raise BadRequest(user_message="The voice server has no other voices installed; only its default voice.")
        match = next((v for v in voices if v == name), None) or next(
            (v for v in voices if v.lower() == name.lower()), None
        )
        if match is None:
            shown = ", ".join(f"`{v}`" for v in voices[:25])
            raise BadRequest(user_message=f"I don't know the voice `{name[:50]}`. Available: {shown}.")
        self.voice_name = match
        await self.link.configure(voice=match)
        when = " from the next reply" if self._current is not None else ""
        return f"Voice set to **{match}**{when}."

    async def set_pitch(self, value: str | float) -> str:
        """Pitch shift in semitones, within the bridge's limit."""
        semitones = parse_pitch(value)
        self.pitch = semitones
        await self.link.configure(pitch=semitones)
        text = f"Pitch set to {semitones:+g} semitone{'s' if abs(semitones) != 1 else ''}."
        if self.link.connected and not self.link.voices:
            text += " (Pitch only changes converted voices, and the voice server has none installed.)"
        return text

    async def close(self) -> None:
        """Shutdown: stop, and close the bridge session."""
        self._disarm_idle()
        await self.stop()
        await self.link.close()

    # ------------------------------------------------------------------ idle
    def _arm_idle(self) -> None:
        """Close the bridge session after ``bridge_idle_seconds`` without requests: a guild that
        stopped talking should not hold one of the server's sessions."""
        delay = self.settings.bridge_idle_seconds
        if delay <= 0 or self._idle_timer is not None:
            return
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_close)

    def _arm_idle_if_quiet(self) -> None:
        if not self.busy:
            self._arm_idle()

    def _disarm_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_close(self) -> None:
        self._idle_timer = None
        if not self.busy and self.link.connected:
            self.log.info("bridge session idle; closing it")
            self._background(self.link.close())

    # ------------------------------------------------------------------ queue
    async def _drop_pending(self) -> int:
        dropped = 0
        while self._pending:
            request, future = self._pending.popleft()
            if not future.done():
                future.set_result(UtteranceReport(request, outcome="dropped"))
            dropped += 1
        return dropped

    async def _interrupt(self) -> None:
        """Silence now, then let the utterance's task clean up (cancel on the bridge)."""
        source = self._current_source
        if source is not None:
            source.abort()  # the player's next read() returns b''
            voice = self.voice
            if voice is not None and getattr(voice, "source", source) is source:
                voice.stop()
        task = self._current_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def _start_next(self) -> None:
        """Start the next request if nothing is playing (synchronously: no window where the
        queue looks longer than it is)."""
        if self._current is not None:
            return
        if not self._pending:
            self._arm_idle()
            return
        request, future = self._pending.popleft()
        report = UtteranceReport(request)
        self._current = request
        task = asyncio.create_task(self._run(request, report), name=f"utterance-{request.id}")
        self._current_task = task

        def finished(_: asyncio.Task[None]) -> None:
            # Runs before anyone awaiting the task resumes (callbacks run in order).
            self._current = None
            self._current_task = None
            self._current_source = None
            if not future.done():
                future.set_result(report)
            self._start_next()

        task.add_done_callback(finished)

    # ------------------------------------------------------------------ one utterance
    async def _run(self, request: Request, report: UtteranceReport) -> None:
        """Play one request; ``report`` is filled in as it goes (also when interrupted)."""
        report.started = time.perf_counter()
        source: StreamSource | None = None
        playback: asyncio.Task[None] | None = None
        posted = False
        streaming = False  # the bridge may still be sending for this utterance
        try:
            voice = self._voice_or_raise()
            s = self.settings
            source = (OpusStreamSource if s.bridge_audio == "opus" else StreamSource)(
                max_seconds=s.buffer_seconds,
                low_water_seconds=s.low_water_seconds,
                prebuffer_seconds=s.prebuffer_ms / 1000,
                prebuffer_max_wait=s.prebuffer_max_wait_ms / 1000,
            )
            report.source = source.stats
            self._current_source = source
            await self.link.begin(source)
            streaming = True
            playback = asyncio.create_task(self._playback(voice, source, report), name=f"playback-{request.id}")
            llm_error = await self._stream_text(request, report)
            await self.link.flush()
            source.last_progress = time.monotonic()
            if request.kind == "speak":
                await self._post_reply(request, report, llm_error)
                posted = True
            await self._until_streamed(source, playback)
            streaming = False
            await playback
            if self.link.errors:
                report.error = "; ".join(self.link.errors)
                await self._say(request, "The voice server had trouble with part of that reply.")
            if llm_error is not None:
                report.outcome, report.error = "failed", str(llm_error)
        except asyncio.CancelledError:
            report.outcome = "interrupted"
            raise
        except UserFacingError as exc:
            report.outcome, report.error = "failed", str(exc)
            self.log.warning("utterance failed", extra={"request": request.id, "error": str(exc)})
            await self._say(request, exc.user_message)
        except Exception as exc:  # a bug: tell the channel something, keep the bot alive
            report.outcome, report.error = "failed", repr(exc)
            self.log.exception("utterance crashed", extra={"request": request.id})
            await self._say(request, "Something went wrong on my side; please try again.")
        finally:
            report.ended = time.perf_counter()
            report.bridge_first_chunk = self.link.first_chunk_at
            report.heard = await asyncio.shield(self._cleanup(source, playback, streaming))
            said = report.text.strip()
            if report.outcome == "interrupted":
                said = report.heard.strip() if report.heard is not None else said
                if request.kind == "speak" and (posted or report.text.strip()) and self.settings.post_text:
                    # In the background: the next utterance must not wait on Discord's HTTP API.
                    self._background(self._post_cut(request, report, said))
            if request.kind == "speak" and said:
                # Only what the listener heard goes into the LLM's history of the channel.
                self.history.record(request.channel_id, _user_turn(request), said)
            self.reports.append(report)
            self._log_report(report)

    async def _cleanup(
        self, source: StreamSource | None, playback: asyncio.Task[None] | None, streaming: bool
    ) -> str | None:
        """Stop the player and the bridge; the words heard when the bridge was cancelled
        (cut at what the player played), or None when it was not or did not say."""
        played = source.stats.audio_frames * FRAME_SAMPLES / SAMPLE_RATE if source is not None else None
        if source is not None and not source.played_out:
            source.abort()
            voice = self.voice
            if voice is not None and getattr(voice, "source", source) is source:
                voice.stop()
        if playback is not None and not playback.done():
            playback.cancel()
            await asyncio.wait([playback])
        if not streaming:
            return None
        confirmed = await self.link.cancel(played)
        if confirmed is None:
            return None
        try:
            event = await asyncio.wait_for(confirmed, self.settings.bridge_stall_timeout)
        except TimeoutError:
            return None
        heard = event.get("heard")
        return heard if isinstance(heard, str) else None

    async def _stream_text(self, request: Request, report: UtteranceReport) -> LLMError | None:
        """Send the text to the bridge as it comes; an LLM failure is returned (what came is spoken)."""
        parts: list[str] = []
        try:
            async for piece in self._pieces(request, report):
                parts.append(piece)
                report.text = "".join(parts)
                for token in split_token(piece):
                    await self.link.send_token(token)
        except LLMError as exc:
            self.log.warning("llm failed", extra={"request": request.id, "error": str(exc)})
            return exc
        return None

    async def _pieces(self, request: Request, report: UtteranceReport) -> AsyncIterator[str]:
        if request.kind == "say":
            yield request.text
            return
        messages = self.history.messages(request.channel_id, self.settings.persona, _user_turn(request))
        stream = self.chat.stream(messages, report.llm)
        try:
            async for piece in stream:
                yield piece
        finally:
            await stream.aclose()  # closes the HTTP response at once on interrupt

    async def _playback(self, voice: VoicePort, source: StreamSource, report: UtteranceReport) -> None:
        """Start the player once there is audio; return when it has played the last frame."""
        await source.wait_ready()
        if source.aborted or not source.has_audio:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Exception | None] = loop.create_future()

        def after(error: Exception | None) -> None:  # runs in the player thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, done, error)

        try:
            voice.play(source, after=after, bitrate=self.settings.opus_bitrate)
        except Exception as exc:  # discord.ClientException: not connected / already playing
            if not voice.is_connected():
                raise NotInVoice(str(exc)) from None
            raise VoiceFailed(f"play failed: {exc}") from None
        report.playback_started = time.perf_counter()
        error = await done
        report.playback_ended = time.perf_counter()
        if error is not None:
            raise VoiceFailed(f"player error: {error!r}")
        if not source.played_out and not source.aborted:
            raise VoiceFailed("the player stopped before the end", "I lost the voice connection while speaking.")

    async def _until_streamed(self, source: StreamSource, playback: asyncio.Task[None]) -> None:
        """Wait for the bridge's ``flushed``; fail fast if playback fails or the bridge stalls."""
        finished = asyncio.create_task(source.wait_finished())
        try:
            while True:
                await asyncio.wait({finished, playback}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if finished.done():
                    finished.result()  # raises BridgeLost if the connection dropped
                    return
                if playback.done():
                    playback.result()  # raises if playback failed
                idle = time.monotonic() - source.last_progress
                if idle > self.settings.bridge_stall_timeout and source.buffered_bytes == 0:
                    raise BridgeLost(
                        f"no audio for {idle:.0f}s", "My voice server stopped responding. Please try again."
                    )
        finally:
            finished.cancel()

    # ------------------------------------------------------------------ text out
    async def _post_reply(self, request: Request, report: UtteranceReport, error: LLMError | None) -> None:
        text = report.text.strip()
        if error is not None:
            note = error.user_message
            report.posted = await self._say(request, f"{text}\n\n*({note})*" if text else note)
        elif self.settings.post_text:
            report.posted = await self._say(request, text or "*(no reply)*")

    async def _post_cut(self, request: Request, report: UtteranceReport, heard: str) -> None:
        """An interrupted reply: what was really spoken, marked as cut, in place of the full
        reply when it was posted already (and can be replaced), else as a new message."""
        text = f"{heard} — *(interrupted)*" if heard else "*(interrupted)*"
        replace = getattr(report.posted, "replace", None)
        if replace is None:
            await self._say(request, text)
            return
        try:
            await replace(text)
        except Exception:
            self.log.exception("could not replace the reply", extra={"request": request.id})

    def _background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _say(self, request: Request, text: str) -> Any:
        """Post ``text``; what the reply callable returned (a :class:`Posted`, or None)."""
        if request.reply is None:
            return None
        try:
            return await request.reply(text)
        except Exception:
            self.log.exception("could not post to the channel", extra={"request": request.id})
            return None

    def _log_report(self, report: UtteranceReport) -> None:
        stats = report.source
        fields: dict[str, Any] = {
            "request": report.request.id,
            "kind": report.request.kind,
            "outcome": report.outcome,
            "chars": len(report.text),
        }
        if report.llm.first_token is not None:
            fields["llm_first_token_ms"] = round((report.llm.first_token - report.started) * 1000)
        if stats is not None and stats.first_audio_read is not None and report.llm.first_token is not None:
            fields["first_token_to_audio_ms"] = round((stats.first_audio_read - report.llm.first_token) * 1000)
        if stats is not None:
            fields.update(
                audio_s=round(stats.fed_bytes / 192_000, 2),
                underruns=stats.underruns,
                reader_waits=stats.reader_waits,
            )
        if report.error:
            fields["error"] = report.error
        self.log.info("utterance", extra=fields)


#: Longest text sent in one token message (the server refuses tokens over ``max_token_chars``,
#: 4 096 by default; a /say text can be 6 000 characters, a non-streaming LLM reply longer).
TOKEN_CHARS = 1000


def split_token(text: str, limit: int = TOKEN_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after whitespace when possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit)) + 1
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces


def parse_pitch(value: str | float) -> float:
    """``"+3"``, ``"-2.5"``, ``"3st"`` → semitones; :class:`BadRequest` with a sentence if not valid."""
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("semitones").removesuffix("st").strip()
        try:
            number = float(text)
        except ValueError:
            raise BadRequest(
                user_message="Pitch is a number of semitones, like `/pitch 3` or `/pitch -2.5`."
            ) from None
    else:
        number = float(value)
    if not math.isfinite(number) or abs(number) > PITCH_SHIFT_LIMIT:
        raise BadRequest(
            user_message=f"Pitch must be between -{PITCH_SHIFT_LIMIT:g} and +{PITCH_SHIFT_LIMIT:g} semitones."
        )
    return round(number, 2) + 0.0  # + 0.0: no "-0"


def _user_turn(request: Request) -> str:
    """The user's message as the LLM sees it: who is speaking matters in a shared channel."""
    return f"{request.author}: {request.text}" if request.author else request.text


def _resolve(future: asyncio.Future[Exception | None], error: Exception | None) -> None:
    if not future.done():
        future.set_result(error)
