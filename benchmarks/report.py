"""Results → Markdown tables, the README block, and PNG plots. Pure except the plot writers."""

from __future__ import annotations

import statistics

import math
from pathlib import Path
from typing import Any

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def _ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.0f} ms"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.0f} %"


def _mib(value: Any) -> str:
    return "—" if value is None else f"{value:.0f} MiB"


def _rtf(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _sessions(payload: dict[str, Any], name: str) -> str:
    ramp = _get(payload, "ramp", name)
    if not ramp:
        return "—"
    if ramp.get("status") != "ok":
        return "—"
    best = ramp.get("max_clean", 0)
    return f"≥ {best}" if ramp.get("capped") else str(best)


def latency_table(payload: dict[str, Any]) -> list[str]:
    """The headline table: how soon speech starts and whether it then plays without gaps."""
    lines = [
        "| peer | FTTS p50 | FTTS p90 | FTTS p99 | token→sound p50 | token→sound p90 | flush→sound p50 | underruns (utterances) | underrun total | sessions without underruns |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, peer in payload.get("peers", {}).items():
        if peer.get("status") != "ok":
            lines.append(f"| {name} | {peer.get('status', '?')}: {peer.get('reason', '')} | | | | | | | | |")
            continue
        s = peer["summary"]
        lines.append(
            f"| {name} | {_ms(_get(s, 'ftts_ms', 'p50'))} | {_ms(_get(s, 'ftts_ms', 'p90'))} | {_ms(_get(s, 'ftts_ms', 'p99'))} | "
            f"{_ms(_get(s, 't2s_ms', 'p50'))} | {_ms(_get(s, 't2s_ms', 'p90'))} | {_ms(_get(s, 't2s_flush_ms', 'p50'))} | "
            f"{s.get('underruns', 0)} ({s.get('utterances_with_underruns', 0)}/{s.get('utterances', 0)}) | "
            f"{_ms(s.get('underrun_ms'))} | {_sessions(payload, name)} |"
        )
    return lines


def cost_table(payload: dict[str, Any]) -> list[str]:
    """Where the first-audio time goes, and what the process costs."""
    lines = [
        "| peer | text wait p50 | engine first chunk p50 | server overhead p50 | overhead p90 | transport p50 | RTF TTS | RTF voice | RTF resample | CPU mean | RSS peak | WER |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, peer in payload.get("peers", {}).items():
        if peer.get("status") != "ok":
            continue
        s = peer["summary"]
        rtf = s.get("rtf") or {}
        proc = s.get("process") or {}
        wer = s.get("wer")
        lines.append(
            f"| {name} | {_ms(_get(s, 'text_wait_ms', 'p50'))} | {_ms(_get(s, 'engine_first_chunk_ms', 'p50'))} | "
            f"{_ms(_get(s, 'overhead_ms', 'p50'))} | {_ms(_get(s, 'overhead_ms', 'p90'))} | {_ms(_get(s, 'transport_ms', 'p50'))} | "
            f"{_rtf(rtf.get('tts'))} | {_rtf(rtf.get('voice'))} | {_rtf(rtf.get('resample'))} | "
            f"{_pct(proc.get('cpu_mean_pct'))} | {_mib(proc.get('rss_peak_mib'))} | "
            f"{'—' if wer is None else f'{wer:.3f}'} |"
        )
    return lines


def underrun_table(payload: dict[str, Any]) -> list[str]:
    """Where the gaps are: position in the audio, length, and what a 100 ms buffer would hide."""
    lines = [
        "| peer | underruns | in the first second of audio | position p50 | length p50 | length max | underruns with a 100 ms buffer |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, peer in payload.get("peers", {}).items():
        if peer.get("status") != "ok":
            continue
        s = peer["summary"]
        position = _get(s, "stall_position_s", "p50")
        lines.append(
            f"| {name} | {s.get('underruns', 0)} | {s.get('underruns_first_second', '—')} | "
            f"{'—' if position is None else f'{position:.2f} s'} | {_ms(_get(s, 'stall_length_ms', 'p50'))} | "
            f"{_ms(_get(s, 'stall_length_ms', 'max'))} | {s.get('underruns_buffered', '—')} |"
        )
    return lines


def ramp_table(name: str, ramp: dict[str, Any]) -> list[str]:
    lines = [
        f"**{name}** — {ramp.get('mode', '')}; answer: {'≥ ' if ramp.get('capped') else ''}{ramp.get('max_clean', 0)} sessions",
        "",
        "| sessions | utterances | FTTS p50 | FTTS p90 | underruns (utterances) | underrun total | gap per session max / median | failures | CPU mean | CPU s per audio s | RSS peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in ramp.get("levels", []):
        proc = level.get("process") or {}
        gaps = level.get("session_underrun_ms")  # results before 2026-12-03 lack these two
        spread = f"{_ms(max(gaps))} / {_ms(statistics.median(gaps))}" if gaps else "—"
        cost = level.get("cpu_per_audio_second")
        lines.append(
            f"| {level['sessions']} | {level['utterances']} | {_ms(_get(level, 'ftts_ms', 'p50'))} | {_ms(_get(level, 'ftts_ms', 'p90'))} | "
            f"{level['underruns']} ({level['utterances_with_underruns']}) | {_ms(level.get('underrun_ms'))} | {spread} | "
            f"{level.get('failures', 0)} | {_pct(proc.get('cpu_mean_pct'))} | {'—' if cost is None else f'{cost:.3f}'} | "
            f"{_mib(proc.get('rss_peak_mib'))} |"
        )
    return lines


DEFINITIONS = """\
- **FTTS** (first token to speech): first token sent → first audio byte received.
- **token→sound**: for each segment closed by a token, that token sent → the segment's first audio
  (servers name the token in their `segment` event; RealtimeTTS: the token consumed when its
  splitter let the sentence out). **flush→sound**: the last segment, closed by the flush (end of text).
- **underruns**: each utterance is played in real time from its first byte; an underrun is the
  player finding its buffer empty (gaps under 1 ms ignored). Count, and total stalled time; where
  in the audio each happened and how long it lasted; and how many remain for a listener with a
  100 ms jitter buffer.
- **sessions without underruns**: concurrency ramp 1, 2, 3, 4, 6, 8…; each session is one
  connection speaking utterances back to back, the next reply starting when the listener has
  heard the previous one; the ramp stops after the first level with an underrun.
- **text wait**: first token → the token that closed the first segment (the segmenter waiting
  for text). **engine first chunk**: the engine alone, in-process, on the same first-segment
  text (best of repeats, after the runs). **server overhead** = first segment's
  token→sound − engine first chunk: what the serving layer adds. **transport** = FTTS − the
  server's own first-text-to-first-audio.
- **RTF** per stage: stage compute time / seconds of audio out (server-side timings).
- **CPU**: % of one core, process tree, mean over the single-session run; **RSS**: peak.
- **WER**: offline Whisper transcript of each utterance's audio vs its text (optional).
"""


def _sessions_phrase(sessions: int) -> str:
    return "one session" if sessions == 1 else f"{sessions} concurrent sessions"


def render_markdown(payload: dict[str, Any]) -> str:
    settings = payload.get("settings", {})
    machine = payload.get("machine", {})
    ramped = any(r.get("levels") for r in payload.get("ramp", {}).values())
    lines = [
        f"# voice-bridge latency benchmark — {payload.get('date', '')}",
        "",
        f"{settings.get('replies', '?')} replies from the corpus, replayed as LLM tokens at "
        f"{settings.get('rate', '?'):g} tokens/s, {_sessions_phrase(settings.get('sessions', 1))} per peer"
        + (f"; then a concurrency ramp ({settings.get('start_mode', 'sessions started together')})." if ramped else "."),
        "",
        f"Machine: {machine.get('cores', '?')} CPU cores ({machine.get('cpu', '?')}), {machine.get('gpu') or 'no GPU'}, "
        f"Python {machine.get('python', '?')}, load average at start {machine.get('loadavg', '?')}.",
    ]
    if payload.get("note"):
        lines += ["", f"**Note:** {payload['note']}"]
    lines += ["", "## Latency and continuity", "", *latency_table(payload), "", "## Where the gaps are", "", *underrun_table(payload)]
    lines += ["", "## Where the time goes, and the cost", "", *cost_table(payload)]
    ramps = payload.get("ramp", {})
    if ramps:
        lines += ["", "## Concurrency ramp", ""]
        for name, ramp in ramps.items():
            if ramp.get("status") != "ok":
                lines += [f"**{name}** — {ramp.get('status')}: {ramp.get('reason', '')}", ""]
                continue
            lines += [*ramp_table(name, ramp), ""]
    lines += ["", "## Peers", ""]
    for name, peer in payload.get("peers", {}).items():
        reason = f" — {peer['status']}: {peer.get('reason', '')}" if peer.get("status") != "ok" else ""
        lines.append(f"- **{name}**: {peer.get('description', '')}{reason}")
    lines += ["", "## Definitions", "", DEFINITIONS]
    return "\n".join(lines).rstrip() + "\n"


def render_readme_block(payload: dict[str, Any], details: str | None = None) -> str:
    """The README section between the bench markers: the headline table and where it came from."""
    settings = payload.get("settings", {})
    machine = payload.get("machine", {})
    lines = [
        README_BEGIN,
        f"Measured {payload.get('date', '')[:10]} on {machine.get('cores', '?')} CPU cores, {machine.get('gpu') or 'no GPU'}: "
        f"{settings.get('replies', '?')} corpus replies at {settings.get('rate', '?'):g} tokens/s, "
        f"{_sessions_phrase(settings.get('sessions', 1))} "
        f"(`python -m benchmarks run`{'; ' + details if details else ''}).",
    ]
    if payload.get("note"):
        lines += ["", f"**Note:** {payload['note']}"]
    lines += ["", *latency_table(payload), README_END]
    return "\n".join(lines) + "\n"


def readme_with_block(readme: str, block: str) -> str:
    """``readme`` with the bench markers' content replaced by ``block`` (markers included)."""
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError(f"README has no {README_BEGIN} … {README_END} markers")
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return head + block.rstrip("\n") + tail


def write_reports(payload: dict[str, Any], stem: Path) -> list[Path]:
    """``<stem>.md``, ``<stem>-ftts.png`` and (after a ramp) ``<stem>-ramp.png`` from a payload."""
    written = [Path(f"{stem}.md"), Path(f"{stem}-ftts.png")]
    written[0].write_text(render_markdown(payload))
    plot_ftts(payload, written[1])
    if any(r.get("levels") for r in payload.get("ramp", {}).values()):
        written.append(Path(f"{stem}-ramp.png"))
        plot_ramp(payload, written[-1])
    return written


# ----------------------------------------------------------------------------- plots
def plot_ftts(payload: dict[str, Any], path: Path) -> None:
    """CDF of FTTS per peer (log time axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, peer in payload.get("peers", {}).items():
        values = sorted(u["ftts_ms"] for u in peer.get("utterances", []) if u.get("ftts_ms") is not None and not math.isnan(u["ftts_ms"]))
        if values:
            ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("first token → first audio byte (ms, log scale)")
    ax.set_ylabel("fraction of utterances")
    ax.set_title("First-token-to-speech, one session (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ramp(payload: dict[str, Any], path: Path) -> None:
    """Underruns and FTTS p90 against concurrent sessions, per peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, ramp in payload.get("ramp", {}).items():
        levels = ramp.get("levels", [])
        if not levels:
            continue
        sessions = [lv["sessions"] for lv in levels]
        left.plot(sessions, [lv["underrun_ms"] for lv in levels], marker="o", label=name)
        right.plot(sessions, [_get(lv, "ftts_ms", "p90") for lv in levels], marker="o", label=name)
    left.set_xlabel("concurrent sessions")
    left.set_ylabel("underrun total (ms)")
    left.set_title("Underruns vs sessions")
    right.set_xlabel("concurrent sessions")
    right.set_ylabel("FTTS p90 (ms)")
    right.set_title("FTTS p90 vs sessions")
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
