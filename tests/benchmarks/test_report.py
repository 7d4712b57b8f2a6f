"""benchmarks/report.py: Markdown, the README block, the plots (and the CLI hook that prints the block)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.report import (
    README_BEGIN,
    README_END,
    plot_ftts,
    plot_ramp,
    readme_with_block,
    render_markdown,
    render_readme_block,
)
from tests.benchmarks.payloads import compare_payload

REPO = Path(__file__).resolve().parents[2]


def test_markdown_shows_every_peer_and_why_one_did_not_run() -> None:
    md = render_markdown(compare_payload())
    assert "| voice-bridge | 210 ms | 380 ms | 398 ms | 150 ms | 420 ms | 300 ms | 1 (1/2) | 42 ms | 3 |" in md
    assert "| realtimetts | skipped: no RealtimeTTS environment |" in md
    assert "| voice-bridge | 40 ms | 120 ms | 35 ms | 60 ms | 4 ms | 0.080 | 0.000 | 0.004 | 31 % | 321 MiB | — |" in md
    assert "| 4 | 8 | 800 ms | 1,200 ms | 2 (1) | 20 ms | — | 0 | — | — | — |" in md  # older results: no gap spread or cost
    assert "**Note:** shared machine: timings inflated" in md and "## Definitions" in md


def test_readme_block_renders_and_replaces_only_between_the_markers() -> None:
    block = render_readme_block(compare_payload(), "details: `benchmarks/results/x.md`")
    assert block.startswith(README_BEGIN) and block.rstrip().endswith(README_END)
    assert "| voice-bridge | 210 ms |" in block and "2 corpus replies at 70 tokens/s, one session" in block
    readme = f"# Title\n\n## Benchmarks\n\n{README_BEGIN}\nold table\n{README_END}\n\n## After\n"
    updated = readme_with_block(readme, block)
    assert updated.startswith("# Title\n\n## Benchmarks\n\n") and updated.endswith(f"{README_END}\n\n## After\n")
    assert "old table" not in updated and readme_with_block(updated, block) == updated  # idempotent
    with pytest.raises(ValueError, match="markers"):
        readme_with_block("# no markers\n", block)


def test_plots_are_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plot_ftts(compare_payload(), tmp_path / "ftts.png")
    plot_ramp(compare_payload(), tmp_path / "ramp.png")
    for name in ("ftts.png", "ramp.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("readme", ["README.md", "benchmarks/README.md"])
def test_readmes_hold_the_block_of_the_newest_committed_result(readme: str) -> None:
    """Both READMEs show exactly what ``python -m benchmarks readme --update`` writes from the
    newest comparison in benchmarks/results: a new run without the update fails here."""
    import json as _json

    from benchmarks.__main__ import newest_result

    results = REPO / "benchmarks" / "results"
    if not any(results.glob("*-compare.json")):
        pytest.skip("no committed results yet")
    newest = newest_result(results)
    block = render_readme_block(_json.loads(newest.read_text()), f"details: `benchmarks/results/{newest.stem}.md`")
    assert block.count("| voice-bridge |") == 1 and README_END in block
    text = (REPO / readme).read_text(encoding="utf-8")
    assert text.count(README_BEGIN) == 1 and text.count(README_END) == 1
    shown = text[text.index(README_BEGIN) : text.index(README_END) + len(README_END)] + "\n"
    assert shown == block, f"{readme} is stale: run `python -m benchmarks readme --update {readme}`"


def test_bench_command_is_wired_into_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from typer.testing import CliRunner

    from bridge.cli import app

    result_file = tmp_path / "2026-11-22-compare.json"
    result_file.write_text(_json.dumps(compare_payload()))
    out = CliRunner().invoke(app, ["bench", "readme", str(result_file)])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(README_BEGIN) and "| voice-bridge | 210 ms |" in out.output
