"""tests/support/makefile.py: a Makefile's overridable variables, its dry run, and a target's apt-get calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.makefile import apt_installs, make_dry_run, make_dry_script, makefile_variables

MAKEFILE = """\
VENV ?= .venv
EXTRAS ?=   piper,rvc
FIXED := nope
PY := $(VENV)/bin/python

install:
\tpython3 -m venv $(VENV)
\t$(PY) -m pip install -e '.[$(EXTRAS)]'
\ttouch $(VENV)/.stamp
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Makefile").write_text(MAKEFILE)
    return tmp_path


def test_only_question_mark_assignments_are_overridable(project: Path) -> None:
    assert makefile_variables(project / "Makefile") == {"VENV": ".venv", "EXTRAS": "piper,rvc"}


def test_dry_run_prints_the_commands_with_the_callers_variables(project: Path) -> None:
    script = make_dry_script("install", {"VENV": "/opt/venv"}, project)
    assert "touch /opt/venv/.stamp" in script
    assert make_dry_run("install", {"VENV": "/opt/venv", "EXTRAS": "piper"}, project) == [
        "python3 -m venv /opt/venv",
        "/opt/venv/bin/python -m pip install -e '.[piper]'",
    ]


def test_a_failing_dry_run_fails_with_makes_message(project: Path) -> None:
    with pytest.raises(AssertionError, match="No rule to make target"):
        make_dry_script("nothing-here", {}, project)


def test_apt_installs_runs_the_recipe_against_stub_commands(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Makefile").write_text(
        "deps:\n"
        "\t@ldconfig -p | grep -q 'libopus\\.so\\.0' || { [ \"$$(id -u)\" = 0 ] && apt-get update && apt-get install -y libopus0; }\n"
    )
    bare, present = tmp_path / "bare", tmp_path / "present"
    bare.mkdir()
    present.mkdir()
    assert apt_installs("deps", bare, directory=project)[0] == ["libopus0"]
    assert apt_installs("deps", present, have_all=True, directory=project)[0] is None
