"""tests/support/traefik.py: the replicas' Docker labels read and translated into Traefik's file provider
(the real binary, driven by the ``balancer`` fixture, is exercised by tests/deploy/)."""

from __future__ import annotations

import pytest

from tests.support.traefik import dynamic_config_from_labels, traefik_labels

LABELS = {
    "traefik.enable": "true",
    "traefik.http.routers.bridge.rule": "PathPrefix(`/`)",
    "traefik.http.routers.bridge.entrypoints": "web",
    "traefik.http.routers.bridge.service": "bridge",
    "traefik.http.services.bridge.loadbalancer.server.port": "8765",
    "traefik.http.services.bridge.loadbalancer.strategy": "p2c",
    "traefik.http.services.bridge.loadBalancer.healthCheck.path": "/ready",
    "traefik.http.services.bridge.loadbalancer.healthcheck.interval": "2s",
    "traefik.http.services.bridge.loadbalancer.healthcheck.timeout": "1s",
}


def test_labels_grouped_by_kind_and_name_with_keys_lower_cased() -> None:
    parsed = traefik_labels(LABELS)
    assert set(parsed) == {"routers", "services"}  # traefik.enable is not a router or service key
    assert parsed["routers"]["bridge"] == {"rule": "PathPrefix(`/`)", "entrypoints": "web", "service": "bridge"}
    assert parsed["services"]["bridge"]["loadbalancer.healthcheck.path"] == "/ready"


def test_labels_become_a_file_provider_config_for_the_given_servers() -> None:
    config = dynamic_config_from_labels(LABELS, ["http://127.0.0.1:1", "http://127.0.0.1:2"])
    assert config["http"]["routers"] == {"bridge": {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "bridge"}}
    balancer = config["http"]["services"]["bridge"]["loadBalancer"]
    assert balancer["strategy"] == "p2c"
    assert balancer["healthCheck"] == {"path": "/ready", "interval": "2s", "timeout": "1s"}
    assert balancer["servers"] == [{"url": "http://127.0.0.1:1"}, {"url": "http://127.0.0.1:2"}]


def test_a_label_it_cannot_translate_fails() -> None:
    """What runs on loopback must be what the labels say: an unknown label is not dropped."""
    with pytest.raises(AssertionError, match="sticky"):
        dynamic_config_from_labels({**LABELS, "traefik.http.services.bridge.loadbalancer.sticky.cookie": "true"}, [])
    with pytest.raises(AssertionError, match="middlewares"):
        dynamic_config_from_labels({**LABELS, "traefik.http.routers.bridge.middlewares": "auth"}, [])
