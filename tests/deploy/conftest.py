"""Fixtures for the deploy tests: the real Traefik balancer (tests/support/traefik.py) in front
of bridges on loopback, for test_docker.py and test_capacity_lb.py."""

from tests.support.traefik import balancer  # noqa: F401 - a fixture
