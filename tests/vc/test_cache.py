"""bridge/vc/cache.py: the voice cache is LRU and loads each voice once, however many ask."""

from __future__ import annotations

import threading
from pathlib import Path

from bridge.vc.cache import VoiceCache


def test_voice_cache_is_lru_and_loads_once(tmp_path: Path) -> None:
    calls: list[str] = []
    gate = threading.Event()

    def loader(name: str):
        calls.append(name)
        gate.wait(2)
        return object()

    cache = VoiceCache(2, loader)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a"))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["a"] and len({id(v) for v in got}) == 1
    cache.get("b")
    cache.get("a")  # a becomes most recent
    cache.get("c")  # evicts b
    assert cache.loaded() == ["a", "c"]
    cache.get("b")
    assert calls == ["a", "b", "c", "b"]
