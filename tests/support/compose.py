"""docker/compose.yaml as Compose itself resolves it, and the env files it reads.

The real Compose v2 CLI (`docker-compose config`, installed into the venv by `make docker-tools`;
`docker compose` where a Docker CLI is installed) resolves the file for a set of profiles;
without one the callers skip with the reason. Its own tests are tests/support/test_compose.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.traefik import tool

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


@cache
def compose_command() -> tuple[list[str] | None, str]:
    """A Compose v2 CLI, and what was found when there is none."""
    tried: list[str] = []
    candidates: list[list[str]] = []
    if (standalone := tool("docker-compose")) is not None:
        candidates.append([standalone])
    if (docker := shutil.which("docker")) is not None:
        candidates.append([docker, "compose"])
    for command in candidates:
        try:
            result = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=60)
        except OSError as exc:
            tried.append(f"{' '.join(command)}: {exc}")
            continue
        version = result.stdout.strip().lstrip("v")
        if result.returncode == 0 and version.startswith("2."):
            return command, version
        said = (result.stdout + result.stderr).strip().splitlines()
        tried.append(f"{' '.join(command)}: {said[0][:80] if said else f'exit {result.returncode}'}")
    return None, "; ".join(tried) or "no docker-compose or docker on PATH"


def require_compose() -> list[str]:
    command, why = compose_command()
    if command is None:
        pytest.skip(f"Compose v2 CLI not available ({why}); `make docker-tools` installs it")
    return command


def compose(directory: Path, *args: str, profiles: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = require_compose()
    flags = [flag for profile in profiles for flag in ("--profile", profile)]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "BRIDGE_", "LLM_", "TRAEFIK_"))}
    return subprocess.run(
        [*command, "--project-directory", str(directory), "-f", str(directory / "compose.yaml"), *flags, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_env, **(env or {})},
    )


def resolved(directory: Path = DOCKER, profiles: tuple[str, ...] = (), env: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose(directory, "config", "--format", "json", profiles=profiles, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)



def answers_as_bridge(config: dict[str, Any]) -> list[str]:
    """Services reachable as host `bridge` on the stack's network (name or alias)."""
    found = []
    for name, service in config["services"].items():
        aliases = {a for net in (service.get("networks") or {}).values() for a in ((net or {}).get("aliases") or [])}
        if name == "bridge" or "bridge" in aliases:
            found.append(name)
    return found



def read_env_file(path: Path) -> list[tuple[str, str]]:
    """``NAME=value`` lines in order; comments and blank lines skipped, any other line fails."""
    pairs = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            pairs.append((name, value))
    return pairs

