"""tests/support/dockerfile.py: stages, instructions, ARG defaults, ENV and the `make` calls of a Dockerfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dockerfile import expand, image_env, make_calls, parse_dockerfile

SAMPLE = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11-slim
ARG EXTRAS=piper

FROM ${BASE} AS build
ARG BASE
ARG EXTRAS
ARG VENV=/opt/venv
RUN apt-get update \\
    # a comment inside a continued instruction
    && apt-get install -y make
run --mount=type=cache,target=/root/.cache make -C /app install-run VENV=$VENV EXTRAS_RUN=${EXTRAS} && echo done

FROM ${BASE}
ENV VOICE_BRIDGE_HOST=0.0.0.0 HF_HOME="/models/hub cache" \\
    VOICE_BRIDGE_PORT=8765
RUN make system-deps-run; make test-python
"""


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(SAMPLE)
    return path


def test_stages_and_their_instructions(sample: Path) -> None:
    dockerfile = parse_dockerfile(sample)
    assert dockerfile.global_args == {"BASE": "python:3.11-slim", "EXTRAS": "piper"}
    assert [(s.base, s.name) for s in dockerfile.stages] == [("${BASE}", "build"), ("${BASE}", None)]
    assert dockerfile.stage("build") is dockerfile.stages[0] and dockerfile.final is dockerfile.stages[1]
    build = dockerfile.stage("build")
    assert [i.keyword for i in build.instructions] == ["ARG", "ARG", "ARG", "RUN", "RUN"]
    # Continuation lines joined (the comment inside dropped), keywords upper-cased, lines counted
    # from where the instruction starts.
    first_run, second_run = build.all("RUN")
    assert first_run.args == "apt-get update && apt-get install -y make" and first_run.line == 9
    assert second_run.args.startswith("--mount=type=cache") and second_run.line == 12


def test_stage_args_take_global_defaults_when_redeclared(sample: Path) -> None:
    dockerfile = parse_dockerfile(sample)
    assert dockerfile.args(dockerfile.stage("build")) == {"BASE": "python:3.11-slim", "EXTRAS": "piper", "VENV": "/opt/venv"}
    assert dockerfile.args(dockerfile.final) == {}  # a global ARG is not visible unless re-declared


def test_expand_replaces_known_variables_in_both_spellings() -> None:
    assert expand("$A/${B}/$C", {"A": "1", "B": "2"}) == "1/2/$C"


def test_make_calls_with_directory_variables_and_expanded_args(sample: Path) -> None:
    dockerfile = parse_dockerfile(sample)
    [call] = make_calls(dockerfile, dockerfile.stage("build"))
    assert call.targets == ["install-run"] and call.directory == "/app"
    assert call.variables == {"VENV": "/opt/venv", "EXTRAS_RUN": "piper"}
    calls = make_calls(dockerfile, dockerfile.final)
    assert [c.targets for c in calls] == [["system-deps-run"], ["test-python"]]


def test_image_env_reads_every_env_line_of_the_final_stage(sample: Path) -> None:
    env = image_env(parse_dockerfile(sample))
    assert env == {"VOICE_BRIDGE_HOST": "0.0.0.0", "HF_HOME": "/models/hub cache", "VOICE_BRIDGE_PORT": "8765"}


@pytest.mark.parametrize(
    ("text", "message"),
    [("FROM a\nRUN x \\\n", "dangling line continuation"), ("RUN x\nFROM a\n", "only ARG may come before FROM")],
)
def test_malformed_dockerfiles_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        parse_dockerfile(path)
