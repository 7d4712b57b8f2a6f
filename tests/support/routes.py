"""The server's HTTP routes, which the deploy files (probes, balancer health checks, bot URLs) name."""

from __future__ import annotations

from bridge.server import create_app
from tests.conftest import make_settings


def route_paths() -> set[str]:
    app = create_app(make_settings(), engines=object())  # type: ignore[arg-type]  # routes only
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}

