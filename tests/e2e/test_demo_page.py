"""The browser demo (``GET /demo``): served by the bridge, and driven in headless Chromium.

The browser test runs ``tests/support/demo_page_driver.mjs`` (playwright-core from clients/node's dev
dependencies, the system's ``chromium``) against the real server and checks what the page
displayed: it connected, streamed the tokens, received and played audio through its
AudioWorklet (in an AudioContext running at the bridge's 48 kHz), showed first-token-to-speech and the segments, highlighted each
word while it played (word timings placed on the worklet's playback position), and Stop cancelled and cleared the
buffer. ``make test`` installs chromium (``system-deps``) and playwright-core (``node-deps``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from bridge.cli import word_pieces

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "support" / "demo_page_driver.mjs"
PLAYWRIGHT = ROOT / "clients" / "node" / "node_modules" / "playwright-core"
SHORT = "Sure! Your table for two is booked at 7:45 tonight. Dr. Patel will meet you at the door."


def _chromium() -> str | None:
    explicit = os.environ.get("VOICE_BRIDGE_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


async def test_root_redirects_to_the_demo_and_assets_are_served(server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/", allow_redirects=False) as response:
            assert response.status == 302
        async with http.get(server.url + "/") as response:
            assert response.status == 200 and str(response.url).endswith("/demo")
        async with http.get(server.url + "/demo") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        assert 'src="static/demo.js"' in page and 'id="ftts"' in page
        for asset, kind in [
            ("demo.js", "javascript"),
            ("pcm-player.js", "javascript"),
            ("demo.css", "text/css"),
        ]:
            async with http.get(f"{server.url}/static/{asset}") as response:
                assert response.status == 200 and kind in response.content_type, asset
        async with http.get(server.url + "/static/../server.py") as response:
            assert response.status in (403, 404)


async def test_demo_page_in_headless_chromium(server, tmp_path) -> None:
    node, chromium = shutil.which("node"), _chromium()
    missing = [
        what
        for what, ok in [
            ("node", node),
            ("chromium (make system-deps)", chromium),
            ("clients/node/node_modules (make node-deps)", PLAYWRIGHT.is_dir()),
        ]
        if not ok
    ]
    assert not missing, f"the demo page test needs: {', '.join(missing)}"
    shots = os.environ.get("VOICE_BRIDGE_DEMO_SCREENSHOTS", "")  # a folder, to look at the page
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        server.url,
        chromium,
        *([shots] if shots else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},  # Chromium's profile and crash dirs
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()[-3000:]
    result = json.loads(stdout)
    assert "error" not in result, result.get("error")
    assert result["pageErrors"] == [] and result["consoleErrors"] == []
    assert result["url"].endswith("/demo")
    assert result["readyStatus"].startswith("ready")

    # 1. Streamed at the chosen rate, spoken to the end.
    first = result["first"]
    assert result["rateLabel"] == "50 tokens/s"
    pieces = word_pieces(SHORT)
    assert first["tokensSent"] == first["tokenChips"] == len(pieces)
    assert first["streamedText"] == "".join(pieces)
    assert result["speakWallMs"] >= (len(pieces) - 1) / 50 * 1000  # paced, not sent at once
    assert first["status"].startswith("done")
    assert 0 < first["fttsMs"] < 15000, first  # first token → first audio byte, from the DOM
    assert first["fttsText"] == f"{first['fttsMs']} ms"
    assert first["firstSoundMs"] is not None and first["firstSoundMs"] >= first["fttsMs"]
    assert 3.0 < first["audioSeconds"] < 12.0
    assert first["segments"] and " ".join(first["segments"]).split() == SHORT.split()
    # The AudioWorklet really played it, and its jitter buffer ran out at the end.
    played_out = result["firstPlayedOut"]
    assert played_out["playback"] == "drained" and played_out["bufferedSamples"] == 0
    assert played_out["playedSamples"] >= 0.9 * first["audioSeconds"] * 48000
    # ... at the bridge's rate: the page feeds the worklet 48 kHz samples unchanged, so its
    # AudioContext must run at 48 kHz (headless Chromium's default is 44.1 kHz: without the
    # page's sampleRate option this fails) or the voice plays slow and low.
    assert result["audioContexts"] == [{"requested": 48000, "sampleRate": 48000, "state": "running"}]
    # Each word is highlighted while it plays, on the worklet's playback clock: the words come
    # with their times, the highlight moves through them in order, the highlighted word's
    # [start, end) holds the playback position, and once drained every word is marked said.
    words = result["words"]
    assert [w["text"] for w in words] == SHORT.split()
    assert all(0 <= w["start"] <= w["end"] <= first["audioSeconds"] + 0.001 for w in words)
    highlights = result["highlights"]
    order = [h["index"] for h in highlights]
    assert order == sorted(order), "the highlight never goes back"
    assert len(set(order)) >= len(words) // 2, f"only {len(set(order))} of {len(words)} words highlighted"
    for h in highlights:
        assert h["start"] <= h["position"] < h["end"], h
        assert h["text"] == words[h["index"]]["text"]
    assert all(w["said"] for w in words)
    print(f"demo page: FTTS {first['fttsMs']} ms, first sound {first['firstSoundMs']} ms, underruns {first['underruns']}")

    # 2. Stop mid-reply: cancel sent, buffer cleared, nothing more arrives.
    before, stopped, later = result["beforeStop"], result["afterStop"], result["afterStopLater"]
    assert before["state"] == "speaking" and before["fttsMs"] is not None
    assert stopped["status"] == "stopped" and stopped["playback"] == "stopped" and stopped["bufferedSamples"] == 0
    assert stopped["audioSeconds"] < 15.0  # the reply is ~20 s long
    assert later["audioSeconds"] == stopped["audioSeconds"] and later["bufferedSamples"] == 0
    assert later["playedSamples"] - stopped["playedSamples"] < 48000 * 0.1

    # 3. The session goes on.
    after = result["next"]
    assert after["status"].startswith("done") and after["audioSeconds"] > 0.3
    assert " ".join(after["segments"]).split() == ["New", "topic."]
    # Still the one 48 kHz context: later replies and Stop reuse it rather than making another.
    assert result["audioContextsAtEnd"] == [{"requested": 48000, "sampleRate": 48000, "state": "running"}]

    # 4. bridge/static/README.md's snippet played a reply to the end in a page of its own.
    assert "played it all" in result["snippetLog"], result["snippetLog"]
