"""Markdown tables of settings for the README: a table generated from a settings class, and the
``--update-readme`` command line that rewrites the block between two markers (used by
:mod:`bridge.config` and the Discord bot's settings; re-exported by :mod:`bridge.config`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from pydantic_settings import BaseSettings

README_BEGIN = "<!-- settings:begin -->"
README_END = "<!-- settings:end -->"


def settings_table(cls: type[BaseSettings], prefix: str, *, shown: dict[str, str] | None = None) -> str:
    """A Markdown table of a settings class: variable, default, meaning (from the descriptions).

    ``shown`` replaces the default column for fields whose default is too long to print.
    """
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in cls.model_fields.items():
        default = info.default
        if info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        if shown and name in shown:
            cell = shown[name]
        elif default is None or default == [] or default == {}:
            cell = "—"
        else:
            cell = "`" + (", ".join(map(str, default)) if isinstance(default, list) else str(default)) + "`"
        rows.append(f"| `{prefix}{name.upper()}` | {cell} | {info.description or ''} |")
    return "\n".join(rows)


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` markers replaced by ``block``."""
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def table_cli(argv: list[str], table: Callable[[], str], update: Callable[[str], str]) -> None:
    """``python -m <module> [--update-readme FILE]``: print the table, or rewrite FILE's block."""
    if len(argv) == 2 and argv[0] == "--update-readme":
        target = Path(argv[1])
        target.write_text(update(target.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(table() + "\n")
