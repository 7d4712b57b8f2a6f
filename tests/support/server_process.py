"""A real server process (``python -m bridge serve``) for the tests that signal it: shutdown,
and a pod's deletion in the Kubernetes tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def start_server_process(
    tmp_path: Path, *, shutdown_timeout: float
) -> tuple[asyncio.subprocess.Process, int, list[dict]]:
    """``voice-bridge serve`` in a child process on a free port, JSON logs on stderr; returns once
    it logs "listening", with its port and the log lines so far."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_BRIDGE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        VOICE_BRIDGE_HOST="127.0.0.1",
        VOICE_BRIDGE_PORT="0",
        VOICE_BRIDGE_LOG_JSON="true",
        VOICE_BRIDGE_SHUTDOWN_TIMEOUT_SECONDS=str(shutdown_timeout),
        VOICE_BRIDGE_SYNTHESIS_WORKERS="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "serve", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    logs: list[dict] = []
    assert process.stderr is not None
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 120)
        assert line, "the server exited before listening"
        try:
            logs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
        if logs[-1]["message"] == "listening":
            port = int(logs[-1]["url"].rsplit(":", 1)[1].split("/")[0])
            return process, port, logs
