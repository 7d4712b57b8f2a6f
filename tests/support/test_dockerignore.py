"""tests/support/dockerignore.py: Docker's `.dockerignore` rules (globs, `**`, `!` exceptions, last match wins)."""

from __future__ import annotations

from pathlib import Path

from tests.support.dockerignore import dockerignore_patterns, ignored


def test_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = ["*", "!src", "**/__pycache__", "!keep/*.txt"]
    assert ignored("notes.md", patterns) and ignored("a/b.py", patterns)
    assert not ignored("src/x/y.py", patterns)
    assert ignored("src/x/__pycache__/y.pyc", patterns)
    assert not ignored("keep/a.txt", patterns) and ignored("keep/a.bin", patterns)


def test_a_pattern_on_a_directory_covers_what_is_inside() -> None:
    assert ignored("models/voices/alice/alice.pth", ["models"])
    assert not ignored("modelsx/a", ["models"])
    assert ignored("docs/a.md", ["/docs/"])  # leading and trailing slashes mean the same


def test_single_star_and_question_mark_stay_within_one_directory() -> None:
    assert ignored("a.env", ["*.env"]) and not ignored("docker/a.env", ["*.env"])
    assert ignored("docker/a.env", ["**/*.env"]) and ignored("a.env", ["**/*.env"])
    assert ignored("v1", ["v?"]) and not ignored("v12", ["v?"]) and not ignored("v/1", ["v??"])


def test_the_last_matching_pattern_decides() -> None:
    assert not ignored("a.txt", ["*.txt", "!a.txt"])
    assert ignored("a.txt", ["!a.txt", "*.txt"])
    assert not ignored("a.txt", [])


def test_patterns_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / ".dockerignore"
    path.write_text("# comment\n\n  .git  \n  # indented comment\n!README.md\n")
    assert dockerignore_patterns(path) == [".git", "!README.md"]
