"""The README's snippets are code that runs: the Python one against a real server, the Node one
is the Node client's own (tested there by `node --test`)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


async def test_python_snippet_speaks_against_a_running_server(server) -> None:
    (snippet,) = code_blocks(section(README, "### Python"), "python")
    assert "ws://127.0.0.1:8765/ws/stream" in snippet
    code = snippet.replace("ws://127.0.0.1:8765/ws/stream", server.ws_url)
    out = io.StringIO()

    def run() -> None:  # the snippet calls asyncio.run(): give it a thread with no loop
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})

    await asyncio.wait_for(asyncio.to_thread(run), timeout=120)
    sizes = [int(line) for line in out.getvalue().split()]
    assert sizes and sum(sizes) / 48000 > 0.5, sizes


def test_node_snippet_is_the_node_clients_first_example() -> None:
    (snippet,) = code_blocks(section(README, "### Node"), "js")
    node_readme = (ROOT / "clients" / "node" / "README.md").read_text(encoding="utf-8")
    assert code_blocks(node_readme, "js")[0] == snippet


def test_links_to_other_documents_resolve() -> None:
    targets = re.findall(r"\]\(([^)#:]+?)(?:#[^)]*)?\)", README)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == []


def test_anchor_links_name_sections() -> None:
    anchors = set(re.findall(r"\]\(#([^)]+)\)", README))
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", README, re.M)
    }
    assert anchors and anchors <= headings, anchors - headings
