"""The converter's voices: loaded once, kept while used, least recently used dropped first."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.vc.voice import RVCVoice

log = logging.getLogger(__name__)


class VoiceCache:
    """Thread-safe LRU of loaded voices. A voice is loaded once even if several sessions ask
    for it at the same moment; evicted voices stay alive while streams still use them."""

    def __init__(self, capacity: int, loader: Callable[[str], RVCVoice]) -> None:
        self.capacity = max(1, int(capacity))
        self._loader = loader
        self._items: OrderedDict[str, RVCVoice] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> RVCVoice:
        with self._lock:
            voice = self._items.get(name)
            if voice is not None:
                self._items.move_to_end(name)
                return voice
            gate = self._loading.setdefault(name, threading.Lock())
        with gate:
            with self._lock:
                voice = self._items.get(name)
                if voice is not None:
                    self._items.move_to_end(name)
                    return voice
            try:
                voice = self._loader(name)
            finally:
                with self._lock:
                    self._loading.pop(name, None)
            with self._lock:
                self._items[name] = voice
                self._items.move_to_end(name)
                while len(self._items) > self.capacity:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("voice %s evicted from the cache", evicted)
            return voice

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __iter__(self) -> Iterator[RVCVoice]:
        with self._lock:
            return iter(list(self._items.values()))
