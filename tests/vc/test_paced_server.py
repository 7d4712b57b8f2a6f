"""Paced RVC blocks inside the real server: block sizes follow the listener's buffer, each block
goes out as soon as it is converted, and no audio is lost or doubled.

Same voice set-up as ``test_voice_server.py`` (tiny HuBERT, random v1 40k voice, parselmouth),
with a short first block and long blocks, so that the pacer has room to choose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import word_pieces
from bridge.client import BridgeClient, Event
from bridge.engines import Engines, create_voice_converter
from bridge.vc.pacing import BlockPacer
from bridge.vc.rvc import RVCStream

from tests.conftest import make_settings, start_server
from .test_voice_server import TEXT, models_dir  # noqa: F401 - fixture

LONG = f"{TEXT} {TEXT} {TEXT}"


@pytest.fixture
async def paced_server(models_dir: Path, deterministic_piper):  # noqa: F811 - the fixture
    settings = make_settings(
        models_dir=models_dir, rvc_pitch_method="parselmouth", rvc_block_seconds=1.0, rvc_first_block_seconds=0.1
    )
    engines = Engines(settings=settings, tts=deterministic_piper, voice=create_voice_converter(settings))
    engines.loaded = True
    running, runner = await start_server(engines)
    yield running
    await runner.cleanup()
    engines.executor.shutdown(wait=True)


async def test_blocks_follow_the_listeners_buffer_and_go_out_one_by_one(paced_server, monkeypatch) -> None:
    blocks: list[int] = []
    convert_block = RVCStream._convert_block

    def spy(self: RVCStream, block: int):  # type: ignore[no-untyped-def]
        blocks.append(block)
        return convert_block(self, block)

    monkeypatch.setattr(RVCStream, "_convert_block", spy)
    # A fixed model cost (0.5 ms per window frame) instead of the measured one, so the sizes
    # do not depend on how busy this machine is; the listener's clock stays real.
    converted = BlockPacer.converted
    monkeypatch.setattr(BlockPacer, "converted", lambda self, window, _s: converted(self, window, 0.0005 * window))
    async with await BridgeClient.connect(paced_server.ws_url) as bare_client:
        bare = await bare_client.speak(word_pieces(LONG))
    assert blocks == []  # no voice: nothing converted
    async with await BridgeClient.connect(paced_server.ws_url, voice="keeper") as client:
        await client.send_token(LONG)
        await client.flush()
        blocks_at_first_audio = None
        received = 0
        async for item in client.receive():
            if isinstance(item, Event):
                if item.type == "flushed":
                    break
                continue
            if blocks_at_first_audio is None:
                blocks_at_first_audio = len(blocks)
            received += item.samples.size
        assert client.errors == []
    # The first block is the short one; the next is as large as the 0.1 s the listener has
    # allows (0.08 s of budget / 0.5 ms = 160 window frames − 50 of context: 100, the
    # cap; a doubling schedule would give 10); all within the limits.
    assert blocks[0] == 10
    assert blocks[1] > 20
    assert all(2 <= b <= 100 and b % 2 == 0 for b in blocks)
    # Audio went out after the first block, long before the last one was converted.
    assert blocks_at_first_audio is not None and blocks_at_first_audio < len(blocks) // 2
    # Nothing lost, nothing doubled: as long as the bare speech (RVC keeps time).
    assert abs(received - bare.size) / bare.size < 0.05
