"""The Makefile, asked what it would do: its overridable variables, `make -n`, and a target's
apt-get calls run for real against stub commands.

The deploy tests hold the images to the Makefile with these (an image installs only through
`make`, with variables the Makefile defines). Its own tests are tests/support/test_makefile.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"


@cache
def makefile_variables(makefile: Path = MAKEFILE) -> dict[str, str]:
    """Variables the Makefile lets a caller override (``NAME ?= value``)."""
    text = makefile.read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z_]+)\s*\?=[ \t]*(.*)$", text, re.M)}


def make_dry_script(target: str, variables: dict[str, str], directory: Path = ROOT) -> str:
    """Everything ``make TARGET`` would run (``make -n``), as printed."""
    result = subprocess.run(
        ["make", "-n", "-C", str(directory), target, *(f"{k}={v}" for k, v in variables.items())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_dry_run(target: str, variables: dict[str, str], directory: Path = ROOT) -> list[str]:
    """The commands ``make TARGET`` would run for a fresh venv (``make -n``), pip steps only."""
    script = make_dry_script(target, variables, directory)
    return [line for line in script.splitlines() if " pip " in line or line.startswith("python")]


def apt_installs(
    target: str, tmp_path: Path, *, have_all: bool = False, directory: Path = ROOT
) -> tuple[list[str] | None, str]:
    """Which packages ``make TARGET`` hands ``apt-get install`` on a bare Debian box, as root.

    It really runs the recipe, with stubs first on an otherwise empty PATH: ``id`` says root,
    ``apt-get`` logs its arguments, ``ldconfig`` lists no library (or libopus with
    ``have_all``); ``grep`` is the real one. No ``chromium`` is on that PATH, and
    VOICE_BRIDGE_CHROMIUM is unset (set with ``have_all``). Returns the packages (None: apt-get
    install was not called) and make's output.
    """
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "apt-get.log"
    library = "\tlibopus.so.0 (libc6,x86-64) => /usr/lib/libopus.so.0" if have_all else ""
    scripts = {
        "id": 'echo 0',
        "apt-get": f'echo "$*" >> {shlex.quote(str(log))}',
        "ldconfig": f"echo '1 libs found in cache'; echo {shlex.quote(library)}",
    }
    for name, body in scripts.items():
        (stubs / name).write_text(f"#!/bin/bash\n{body}\n")
        (stubs / name).chmod(0o755)
    grep = shutil.which("grep")
    assert grep
    (stubs / "grep").symlink_to(grep)
    env = {"PATH": str(stubs), "HOME": str(tmp_path)}
    if have_all:
        env["VOICE_BRIDGE_CHROMIUM"] = "/opt/chromium/chrome"
    make = shutil.which("make")
    assert make
    result = subprocess.run([make, "-C", str(directory), target], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    installs = [line.split() for line in calls if line.split()[:1] == ["install"]]
    if not installs:
        return None, result.stdout
    assert len(installs) == 1 and calls[0].split()[0] == "update", calls  # one update, then one install
    return [word for word in installs[0][1:] if not word.startswith("-")], result.stdout

