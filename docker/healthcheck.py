"""Container health probe: exit 0 when the bridge answers, 1 otherwise (stdlib only).

    python docker/healthcheck.py            # GET /health: up, engines loaded
    python docker/healthcheck.py /ready     # GET /ready: up and able to take a new session

The images run it as their HEALTHCHECK (python:slim has no curl). It asks the server on
127.0.0.1 at ``$VOICE_BRIDGE_PORT`` (8765), or the URL in ``$HEALTHCHECK_URL``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, one line saying why) for one GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http on loopback
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:  # 503 from /ready: up, but not taking sessions
        return False, f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        return False, f"{url}: {exc}"
    if url.rstrip("/").endswith("/health") and body.get("status") != "ok":
        return False, f"{url}: status {body.get('status')!r}"
    return True, f"{url}: ok"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/health"
    port = os.environ.get("VOICE_BRIDGE_PORT") or "8765"
    url = os.environ.get("HEALTHCHECK_URL") or f"http://127.0.0.1:{port}{path}"
    healthy, why = probe(url)
    print(why)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
