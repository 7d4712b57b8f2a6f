"""``voice-bridge models``: download weights and show what is installed.

The main CLI mounts :data:`app` with ``app.add_typer(cli_models.app, name="models")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from bridge import modelstore

app = typer.Typer(help="Download model weights and list what is installed.", no_args_is_help=True)

DestOption = Annotated[
    Optional[Path],
    typer.Option("--dest", "-d", help="Models directory (default: the models_dir setting)."),
]
ManifestOption = Annotated[
    Optional[Path],
    typer.Option("--manifest", help="Manifest file (default: <dest>/manifest.toml, else the bundled one)."),
]


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _models_dir(dest: Path | None) -> Path:
    if dest is not None:
        return dest
    from bridge.config import load_settings

    return load_settings().engines.models_dir


def _manifest(path: Path | None, models_dir: Path) -> modelstore.Manifest:
    return modelstore.load_manifest(path or modelstore.default_manifest_path(models_dir))


@app.command()
def pull(
    names: Annotated[
        Optional[list[str]],
        typer.Argument(help="Files (hubert_base.pt), unique stems (rmvpe) or groups (rvc); default groups if none."),
    ] = None,
    dest: DestOption = None,
    manifest: ManifestOption = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries per file after a network error.")] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download weights listed in the manifest, resuming partial downloads and checking SHA-256."""
    console = Console(stderr=True)
    models_dir = _models_dir(dest)
    try:
        m = _manifest(manifest, models_dir)
        results = modelstore.pull(names or (), models_dir, progress=not quiet, manifest=m, retries=retries)
    except modelstore.PullError as exc:
        results = exc.results
    except modelstore.ModelStoreError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    failed = 0
    for r in results:
        if r.outcome == "failed":
            failed += 1
            console.print(f"[red]✗[/] {r.file.name}: {r.message}", highlight=False)
        else:
            console.print(f"[green]✓[/] {r.file.name}: {r.message}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_models(
    dest: DestOption = None,
    manifest: ManifestOption = None,
    quick: Annotated[bool, typer.Option("--quick", help="Check sizes only, do not hash files.")] = False,
) -> None:
    """Show manifest files (ok, missing, partial, corrupt) and the voices in <dest>/voices/."""
    console = Console()
    models_dir = _models_dir(dest)
    try:
        m = _manifest(manifest, models_dir)
    except modelstore.ModelStoreError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    styles = {"ok": "green", "present": "green", "unverified": "yellow", "missing": "dim",
              "partial": "yellow", "corrupt": "red"}
    table = Table(title=f"Models in {models_dir}")
    for col in ("file", "group", "size", "state", "detail"):
        table.add_column(col)
    for s in modelstore.status(m, models_dir, verify=not quick):
        table.add_row(s.file.name, s.file.group, _human(s.file.size), f"[{styles[s.state]}]{s.state}[/]", s.detail)
    console.print(table)
    voices = modelstore.find_voices(models_dir)
    if not voices:
        console.print(f"No voices in {models_dir / 'voices'} (one directory per voice: <name>/<name>.pth).")
        return
    vt = Table(title="Voices")
    for col in ("voice", "checkpoint", "index", "problem"):
        vt.add_column(col)
    for v in voices:
        vt.add_row(v.name, v.checkpoint.name if v.checkpoint else "-", v.index.name if v.index else "-",
                   f"[red]{v.problem}[/]" if v.problem else "")
    console.print(vt)
