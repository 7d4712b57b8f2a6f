"""Text → LLM-like tokens: word pieces carrying their leading space, as chat models stream them.

BPE vocabularies keep common words whole (" the", " hotel"), split long or rare words into a
few pieces, cut numbers into groups of at most three digits, and give most punctuation its own
token. This splitter imitates that closely enough for timing (about 1.3 tokens per word on
assistant prose); the exact pieces do not matter, their count and their order do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"\s*[A-Za-z]+(?:'[a-z]+)?|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")
LONG_WORD = 7
PIECE = 4


def llm_tokens(text: str) -> list[str]:
    """Split ``text`` into LLM-like tokens; ``"".join(llm_tokens(t)) == t`` always."""
    tokens: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:  # anything the pattern skipped (never expected)
            tokens.append(text[position : match.start()])
        piece = match.group()
        word = piece.lstrip()
        if word.isalpha() and len(word) > LONG_WORD:
            lead = piece[: len(piece) - len(word)]
            parts = [word[i : i + PIECE] for i in range(0, len(word), PIECE)]
            if len(parts[-1]) < 2 and len(parts) > 1:
                tail = parts.pop()  # (not `parts[-2] += parts.pop()`: -2 is resolved before the pop)
                parts[-1] += tail
            tokens.append(lead + parts[0])
            tokens.extend(parts[1:])
        else:
            tokens.append(piece)
        position = match.end()
    if position != len(text):
        tokens.append(text[position:])
    return tokens


@dataclass(frozen=True)
class Reply:
    topic: str
    text: str


CORPUS_PATH = Path(__file__).with_name("corpus.jsonl")


def load_corpus(path: Path = CORPUS_PATH) -> list[Reply]:
    replies = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            replies.append(Reply(obj.get("topic", ""), obj["text"]))
    return replies
