"""tests/support/compose.py: the env-file reader and who answers as host `bridge` (the Compose CLI
itself is exercised by tests/deploy/test_docker.py, which skips with the reason without one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.compose import answers_as_bridge, read_env_file


def test_env_file_pairs_in_order_without_comments(tmp_path: Path) -> None:
    path = tmp_path / "a.env"
    path.write_text("# a comment\n\nB=2\n  A = x=y  \nEMPTY=\n")
    assert read_env_file(path) == [("B", "2"), ("A ", " x=y"), ("EMPTY", "")]


def test_a_line_without_equals_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("OK=1\njust words\n")
    with pytest.raises(AssertionError, match="bad.env: not NAME=value"):
        read_env_file(path)


def test_bridge_is_the_service_name_or_a_network_alias() -> None:
    config = {
        "services": {
            "bridge": {},
            "bridge-gpu": {"networks": {"default": {"aliases": ["bridge"]}}},
            "bot": {"networks": {"default": None}},
            "lb": {"networks": {"default": {"aliases": ["balancer"]}}},
        }
    }
    assert answers_as_bridge(config) == ["bridge", "bridge-gpu"]
