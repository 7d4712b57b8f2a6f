"""benchmarks/naive_server.py: the naive peer's sentence cutter and its events."""

from __future__ import annotations

from benchmarks.naive_server import naive_cuts


def test_naive_cutter_cuts_like_the_seed() -> None:
    assert naive_cuts("Sure! I can") == (["Sure!"], " I can")
    assert naive_cuts("It costs $3.") == (["It costs $3."], "")  # the seed's known price bug
    long = "word " * 50
    segments, rest = naive_cuts(long)
    assert segments and len(segments[0]) == 200


class _FakeEngine:
    """Stands in for Piper: 10 ms of silence per character, at Piper's rate."""

    sample_rate = 22050

    def synthesize(self, text: str):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.zeros(len(text) * 220, dtype=np.float32)


async def test_naive_server_names_the_closing_token_like_the_bridge() -> None:
    import json as _json

    from aiohttp import WSMsgType, web
    from aiohttp.test_utils import TestClient, TestServer

    from benchmarks.naive_server import ENGINE, handle

    app = web.Application()
    app[ENGINE] = _FakeEngine()  # type: ignore[assignment]
    app.router.add_get("/ws/stream", handle)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect("/ws/stream?events=1")
        assert _json.loads((await ws.receive()).data)["type"] == "ready"
        for token in ["Sure", "!", " I", " can"]:
            await ws.send_str(_json.dumps({"token": token}))
        await ws.send_str(_json.dumps({"flush": True}))
        seen: list = []
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                if seen and seen[-1] != "audio":
                    seen.append("audio")
                continue
            event = _json.loads(msg.data)
            if event["type"] == "flushed":
                stats = event["stats"]
                break
            seen.append((event["text"], event.get("token")))
        await ws.close()
    assert seen == [("Sure!", 2), "audio", (" I can", None), "audio"]
    assert stats["tokens"] == 4 and stats["audio_seconds"] > 0 and "first_text_to_audio_ms" in stats
