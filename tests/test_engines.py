"""What :class:`bridge.engines.Engines` shares between sessions besides the models: the start
slots that space simultaneous utterance starts, and their spacing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bridge.engines import Engines
from bridge.load import ServerLoad
from bridge.capacity import CapacityConfig
from tests.conftest import make_settings


class _StubTTS:
    name = "stub"


@pytest.fixture
def engines_with() -> Iterator[Any]:
    made: list[Engines] = []

    def build(**settings: Any) -> Engines:
        engines = Engines(settings=make_settings(**settings), tts=_StubTTS())  # type: ignore[arg-type]
        made.append(engines)
        return engines

    yield build
    for engines in made:
        engines.executor.shutdown(wait=False)


def test_the_spacing_is_the_setting_when_one_is_given(engines_with: Any) -> None:
    engines = engines_with(synthesis_workers=2, start_spacing_ms=250)
    assert engines.start_spacing() == pytest.approx(0.25)


def test_the_spacing_follows_the_measured_cost_of_a_start_over_the_workers(engines_with: Any) -> None:
    engines = engines_with(synthesis_workers=2, start_audio_seconds=3.0, capacity_prior_cost_per_audio_second=0.3)
    # Nothing measured yet: the capacity prior.
    assert engines.start_spacing() == pytest.approx(0.3 * 3.0 / 2)
    engines.cost_per_audio_second = lambda: 0.1
    assert engines.start_spacing() == pytest.approx(0.1 * 3.0 / 2)
    # Twice the workers, half the spacing.
    wider = engines_with(synthesis_workers=4, start_audio_seconds=3.0)
    wider.cost_per_audio_second = lambda: 0.1
    assert wider.start_spacing() == pytest.approx(0.1 * 3.0 / 4)


def test_starts_beyond_one_more_than_the_workers_are_spaced(engines_with: Any) -> None:
    engines = engines_with(synthesis_workers=2, start_spacing_ms=200)
    assert engines.start_slots.burst == 3
    assert [engines.start_slot(5.0) for _ in range(5)] == pytest.approx([5.0, 5.0, 5.0, 5.2, 5.4])
    assert engines_with(synthesis_workers=2, start_burst=6).start_slots.burst == 6


def test_the_server_load_reports_the_measured_cost_of_a_voice() -> None:
    clock = iter(float(t) for t in range(100))
    load = ServerLoad(CapacityConfig(cores=2, warmup_audio_seconds=1.0, prior_cost=0.5), clock=lambda: next(clock))
    assert load.cost("piper") == pytest.approx(0.5)  # warming up: the prior
    load.observe("piper", cpu_seconds=0.2, audio_seconds=2.0)
    assert load.cost("piper") == pytest.approx(0.1)


def test_a_server_spaces_starts_by_its_own_measured_cost(engines_with: Any) -> None:
    from bridge.session import ServerState

    engines = engines_with(synthesis_workers=2, start_audio_seconds=3.0)
    state = ServerState(settings=engines.settings, engines=engines)
    key = state.voice_key(None)
    for _ in range(20):
        state.load.observe(key, cpu_seconds=0.05, audio_seconds=1.0)
    assert engines.start_spacing() == pytest.approx(0.05 * 3.0 / 2)


def test_the_model_workers_get_the_niceness_setting(engines_with: Any) -> None:
    assert engines_with(synthesis_workers=1, worker_nice=3).executor.nice == 3
    assert engines_with(synthesis_workers=1).executor.nice == 10  # the default: below the event loop
