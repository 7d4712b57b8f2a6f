"""The Dockerfiles under docker/, read the way `docker build` reads them.

A small parser (stages, instructions with continuation lines joined, ARG defaults) so that the
deploy tests can state what each image does without a Docker engine: which `make` targets its
RUN lines call and with which variables, and which ENV it sets. Its own tests are
tests/support/test_dockerfile.py.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "cuda": DOCKER / "Dockerfile.cuda", "rocm": DOCKER / "Dockerfile.rocm"}


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def args(self, stage: Stage) -> dict[str, str]:
        """ARG defaults visible in ``stage`` (global ones re-declared, plus the stage's own)."""
        values: dict[str, str] = {}
        for instruction in stage.all("ARG"):
            name, _, default = instruction.args.partition("=")
            values[name] = default or self.global_args.get(name, "")
        return values


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions per stage: continuation lines joined, comments and blank lines dropped."""
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    if pending:
        raise ValueError(f"{path}: dangling line continuation")
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, text in logical:
        keyword, _, args = text.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"{path}:{number}: only ARG may come before FROM")
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return Dockerfile(global_args, stages)


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def image_env(dockerfile: Dockerfile) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in dockerfile.final.all("ENV"):
        for token in shlex.split(instruction.args):
            name, _, value = token.partition("=")
            values[name] = value
    return values



@dataclass
class MakeCall:
    targets: list[str]
    variables: dict[str, str]
    directory: str | None


def make_calls(dockerfile: Dockerfile, stage: Stage) -> list[MakeCall]:
    """Every `make` a RUN line of ``stage`` runs, with ARG defaults expanded."""
    calls: list[MakeCall] = []
    values = dockerfile.args(stage)
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;|\|\|", run.args):
            words = shlex.split(expand(command, values))
            while words and words[0].startswith("--mount="):
                words.pop(0)
            if not words or words[0] != "make":
                continue
            call = MakeCall([], {}, None)
            rest = iter(words[1:])
            for word in rest:
                if word == "-C":
                    call.directory = next(rest)
                elif "=" in word:
                    name, _, value = word.partition("=")
                    call.variables[name] = value
                else:
                    call.targets.append(word)
            calls.append(call)
    return calls

