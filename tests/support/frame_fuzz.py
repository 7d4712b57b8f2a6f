"""A seeded mutation fuzzer for client frames: valid seed frames, hostile JSON values, and one
random corruption at a time (bit flips, splices, truncations, grafts). Used on the pure parser
(tests/hardening/test_protocol_fuzz.py) and on a live server (test_live_fuzz.py)."""

from __future__ import annotations

import random

SEEDS = [
    '{"token": "Hello", "pitch_shift": 0}',
    '{"token": " there, friend.", "flush": true}',
    '{"flush": true}',
    '{"type": "config", "events": true, "voice": "miku", "pitch_shift": -3.5, "format": "s16le"}',
    '{"type": "cancel"}',
    '{"interrupt": true}',
    '{"type": "token", "token": "x"}',
    '{"type": "flush"}',
]
HOSTILE = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" + "0" * 5000, "null", "true", "[]", "{}",
    '"\\ud800"', '"\\udfff x"', '"' + "w" * 200 + '"', "[" * 50 + "]" * 50, '{"a": {"b": {"c": []}}}',
    '"config"', '"cancel"', "-0", "0.000000001", "24.0000001", "-24", '"\\u0000"', '"\\n\\t"',
]


def mutate(rng: random.Random, frame: str) -> str:
    """One random corruption of a frame."""
    op = rng.randrange(9)
    if not frame:
        return rng.choice(SEEDS)
    i = rng.randrange(len(frame))
    if op == 0:  # flip a character
        return frame[:i] + chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000), rng.randrange(0, 32)])) + frame[i + 1 :]
    if op == 1:  # delete a run
        return frame[:i] + frame[i + rng.randrange(1, 8) :]
    if op == 2:  # duplicate a run
        j = min(len(frame), i + rng.randrange(1, 16))
        return frame[:j] + frame[i:j] + frame[j:]
    if op == 3:  # truncate
        return frame[:i]
    if op == 4:  # splice two frames
        other = rng.choice(SEEDS)
        return frame[:i] + other[rng.randrange(len(other)) :]
    if op == 5:  # graft a hostile value after a colon
        colons = [k for k, c in enumerate(frame) if c == ":"]
        if colons:
            k = rng.choice(colons) + 1
            end = k
            while end < len(frame) and frame[end] not in ",}":
                end += 1
            return frame[:k] + " " + rng.choice(HOSTILE) + frame[end:]
        return frame + rng.choice(HOSTILE)
    if op == 6:  # swap a key for another known one
        return frame.replace('"token"', rng.choice(['"flush"', '"type"', '"pitch_shift"', '"voice"', '"tokens"']), 1)
    if op == 7:  # wrap
        return rng.choice(["[%s]", '{"token": %s}', '{"type": "config", "voice": %s}', "%s%s"]).replace("%s", frame, 1).replace("%s", "")
    return frame + rng.choice([" ", ",", "}", '"', "\\", "\x00", "\ud800"])
