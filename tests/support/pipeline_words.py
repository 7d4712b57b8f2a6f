"""Speak a text through a session pipeline and read its word events and audio (word-timing tests)."""

from __future__ import annotations

import asyncio

import numpy as np

from bridge.audio.formats import decode_pcm
from bridge.cli import word_pieces
from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.pipeline import AudioOut, CancelledOut, FlushedOut, OutputItem, SessionPipeline, WordsOut
from bridge.words import WordTime


async def speak(pipeline: SessionPipeline, text: str, *, timeout: float = 300) -> list[OutputItem]:
    """Feed ``text`` token by token, flush, and collect every item up to the ``FlushedOut``
    (or a ``CancelledOut``); the pipeline is closed after."""
    try:
        for piece in word_pieces(text):
            pipeline.feed(piece)
        pipeline.flush()
        items: list[OutputItem] = []
        while True:
            item = await asyncio.wait_for(pipeline.next_output(), timeout)
            items.append(item)
            if isinstance(item, FlushedOut | CancelledOut):
                return items
    finally:
        await pipeline.close()


def words_and_audio(items: list[OutputItem]) -> tuple[dict[int, list[WordTime]], np.ndarray, list[tuple[int, int]]]:
    """Word events per segment, the 48 kHz audio, and for each word (its start in samples, the
    samples handed out before its event)."""
    words: dict[int, list[WordTime]] = {}
    frames = []
    received = 0
    order = []
    for item in items:
        if isinstance(item, WordsOut):
            words.setdefault(item.segment, []).extend(item.words)
            order.extend((round(w.start * OUTPUT_SAMPLE_RATE), received) for w in item.words)
        elif isinstance(item, AudioOut):
            frames.append(decode_pcm(item.data, "f32le"))
            received += item.samples
    return words, np.concatenate(frames) if frames else np.zeros(0, np.float32), order


def all_words(items: list[OutputItem]) -> list[WordTime]:
    """Every word event's words, in the order they came."""
    return [w for item in items if isinstance(item, WordsOut) for w in item.words]
