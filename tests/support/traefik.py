"""Traefik, the compose ``scale`` profile's balancer, run for real on loopback in front of bridges.

Shared by the tests that need a balancer (tests/deploy/test_docker.py, tests/deploy/test_capacity_lb.py): the
replicas' Docker labels translated into Traefik's file provider, the static file used as it is
checked in but for loopback addresses, and the real binary (``make docker-tools`` installs it
into the venv; tests skip with the reason without it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.server import STATE

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
TRAEFIK_FILE = DOCKER / "traefik" / "traefik.yml"


def tool(name: str) -> str | None:
    """A tool from this venv's bin (where `make docker-tools` puts it), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which(name)


def traefik_version(binary: str) -> str:
    out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"Version:\s*v?(\d+\.\d+)", out)
    assert match, out
    return match.group(1)



def traefik_static() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(TRAEFIK_FILE.read_text())


def traefik_labels(labels: dict[str, str]) -> dict[str, Any]:
    """`traefik.http.{routers,services}.NAME.key...` labels as {kind: {NAME: {key: value}}}."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for key, value in labels.items():
        parts = key.split(".")
        if parts[:2] == ["traefik", "http"] and len(parts) >= 5:
            out.setdefault(parts[2], {}).setdefault(parts[3], {})[".".join(parts[4:]).lower()] = value
    return out


def dynamic_config_from_labels(labels: dict[str, str], servers: list[str]) -> dict[str, Any]:
    """The replicas' Docker labels as Traefik file-provider configuration, for these servers.

    Every label must be translated: a label this does not know fails the test, so what runs on
    loopback below is what the labels say.
    """
    parsed = traefik_labels(labels)
    known_router = {"entrypoints", "rule", "service"}
    known_service = {
        "loadbalancer.server.port",
        "loadbalancer.strategy",
        "loadbalancer.healthcheck.path",
        "loadbalancer.healthcheck.interval",
        "loadbalancer.healthcheck.timeout",
    }
    routers, services = {}, {}
    for name, router in parsed["routers"].items():
        assert set(router) <= known_router, set(router) - known_router
        routers[name] = {"rule": router["rule"], "entryPoints": router["entrypoints"].split(","), "service": router["service"]}
    for name, service in parsed["services"].items():
        assert set(service) <= known_service, set(service) - known_service
        services[name] = {
            "loadBalancer": {
                "strategy": service["loadbalancer.strategy"],
                "healthCheck": {
                    "path": service["loadbalancer.healthcheck.path"],
                    "interval": service["loadbalancer.healthcheck.interval"],
                    "timeout": service["loadbalancer.healthcheck.timeout"],
                },
                "servers": [{"url": url} for url in servers],
            }
        }
    assert set(parsed) == {"routers", "services"}
    return {"http": {"routers": routers, "services": services}}


@dataclass
class Balancer:
    url: str  # ws://127.0.0.1:PORT/ws/stream, through Traefik
    api: str
    log: Path
    process: asyncio.subprocess.Process

    async def statuses(self) -> dict[str, str]:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{self.api}/api/http/services/bridge@file") as response:
                return (await response.json()).get("serverStatus", {}) if response.status == 200 else {}
        except aiohttp.ClientError:
            return {}

    async def until(self, want: dict[str, str]) -> None:
        """Until Traefik's view of the servers is ``want`` (it probes every 2 s: up to 30 s)."""
        for _ in range(300):
            if await self.statuses() == want or self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        seen = await self.statuses()
        assert seen == want, f"Traefik says {seen}, expected {want}; log:\n{self.log.read_text()[-3000:]}"


@pytest.fixture
async def balancer(tmp_path: Path, unused_tcp_port_factory) -> Any:
    """Start Traefik (the real binary) with docker/traefik/traefik.yml and the replicas' labels.

    The static file is used as is but for loopback addresses, the API switched on (to read the
    servers' health) and a file provider beside the Docker one, whose socket is absent here.
    """
    binary = tool("traefik")
    if binary is None:
        pytest.skip("traefik not installed (make docker-tools installs it into the venv)")
    yaml = pytest.importorskip("yaml")
    started: list[Balancer] = []

    async def start(servers: list[str]) -> Balancer:
        labels = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["bridge-replica"]["labels"]
        (tmp_path / "dynamic.yml").write_text(yaml.safe_dump(dynamic_config_from_labels(labels, servers)))
        static = traefik_static()
        web_port, ping_port, api_port = (unused_tcp_port_factory() for _ in range(3))
        static["entryPoints"]["web"]["address"] = f"127.0.0.1:{web_port}"
        static["entryPoints"]["ping"]["address"] = f"127.0.0.1:{ping_port}"
        static["entryPoints"]["traefik"] = {"address": f"127.0.0.1:{api_port}"}
        static["api"] = {"insecure": True}
        static["providers"]["docker"]["endpoint"] = f"unix://{tmp_path}/no-docker.sock"
        static["providers"]["file"] = {"filename": str(tmp_path / "dynamic.yml")}
        (tmp_path / "traefik.yml").write_text(yaml.safe_dump(static))
        log_path = tmp_path / "traefik.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                binary, f"--configFile={tmp_path / 'traefik.yml'}", stdout=log, stderr=subprocess.STDOUT
            )
        running = Balancer(f"ws://127.0.0.1:{web_port}/ws/stream", f"http://127.0.0.1:{api_port}", log_path, process)
        started.append(running)
        await running.until({url: "UP" for url in servers})
        return running

    yield start
    for running in started:
        if running.process.returncode is None:
            running.process.terminate()
            await asyncio.wait_for(running.process.wait(), 30)


def sessions_of(replicas: dict[str, Any]) -> dict[str, int]:
    return {url: len(r.app[STATE].sessions) for url, r in replicas.items()}


async def until_sessions(replicas: dict[str, Any], want: dict[str, int]) -> None:
    for _ in range(200):
        if sessions_of(replicas) == want:
            return
        await asyncio.sleep(0.05)
    assert sessions_of(replicas) == want
