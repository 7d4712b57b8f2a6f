"""docker/: images, compose, load balancer, and the /ready route they rely on.

Without a Docker engine nothing here builds an image or starts a container. What is checked:
the `/ready` route on a real server; the images' health probe against it; the Dockerfiles'
install steps against the Makefile (`make -n`); `.dockerignore` against pyproject.toml; the
compose file with the real Compose v2 CLI (`docker-compose config`, every profile; installed by
`make docker-tools`, skipped with the reason when absent); Traefik's labels and static file
against the server's routes and the compose services; the real Traefik binary (also from
`make docker-tools`) with that static file and those labels, in front of two real bridges on
loopback; hadolint on the Dockerfiles.

The readers of those files (a Dockerfile parser, the Makefile's dry run, the `.dockerignore`
matcher, Compose, Traefik's labels and binary) are in tests/support/, each with its own tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import websockets

from bridge.config import Settings, flat_fields
from bridge.server import STATE
from tests.support.capacity import get_json
from tests.support.compose import answers_as_bridge, compose, read_env_file, resolved
from tests.support.dockerfile import DOCKER, DOCKERFILES, Dockerfile, expand, image_env, make_calls, parse_dockerfile
from tests.support.dockerignore import dockerignore_patterns, ignored
from tests.support.makefile import apt_installs, make_dry_script, make_dry_run, makefile_variables
from tests.support.routes import route_paths
from tests.support.traefik import (
    COMPOSE_FILE,
    TRAEFIK_FILE,
    sessions_of,
    tool,
    traefik_labels,
    traefik_static,
    traefik_version,
    until_sessions,
)

ROOT = Path(__file__).resolve().parents[2]
HEALTHCHECK = DOCKER / "healthcheck.py"
VENV_DIR = "/opt/venv"
#: The Makefile target an image's runtime stage installs its system packages with.
RUNTIME_SYSTEM_TARGET = "system-deps-run"


# =============================================================================== /ready
async def wait_for_sessions(server: Any, count: int) -> None:
    """Until the server has ``count`` sessions (a close is processed asynchronously)."""
    state = server.app[STATE]
    for _ in range(500):
        if len(state.sessions) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"server still has {len(state.sessions)} sessions, expected {count}")


async def test_ready_is_200_while_there_is_capacity(server_factory) -> None:
    server = await server_factory(max_sessions=2)
    status, body = await get_json(server.url + "/ready")
    assert status == 200
    assert body == {"ready": True, "engines_loaded": True, "sessions": 0, "max_sessions": 2, "capacity": 2}


async def test_ready_is_503_when_full_and_200_again_when_a_session_ends(server_factory) -> None:
    server = await server_factory(max_sessions=1)
    async with websockets.connect(server.ws_url, compression=None) as first:
        await wait_for_sessions(server, 1)
        status, body = await get_json(server.url + "/ready")
        assert status == 503
        assert body["ready"] is False and body["reason"] == "at capacity"
        assert body["sessions"] == 1 and body["capacity"] == 0
        # What the balancer avoids by reading /ready: a new session here is turned away (1013).
        async with websockets.connect(server.ws_url, compression=None) as second:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(second.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # The open session is not disturbed by being "not ready".
        await first.send(json.dumps({"token": "Hi."}))
        await first.send(json.dumps({"flush": True}))
        assert isinstance(await asyncio.wait_for(first.recv(), 30), bytes)
        # /health keeps answering 200: the container is healthy, only full.
        status, health = await get_json(server.url + "/health")
        assert status == 200 and health["status"] == "ok" and health["capacity"] == 0
    await wait_for_sessions(server, 0)
    status, body = await get_json(server.url + "/ready")
    assert status == 200 and body["ready"] is True and body["capacity"] == 1


async def test_ready_is_503_while_engines_load(server_factory) -> None:
    server = await server_factory(max_sessions=4)
    server.app[STATE].engines.loaded = False
    try:
        status, body = await get_json(server.url + "/ready")
    finally:
        server.app[STATE].engines.loaded = True
    assert status == 503
    assert body["ready"] is False and body["engines_loaded"] is False and body["reason"] == "engines loading"


# =============================================================================== health probe
async def run_probe(*args: str, url: str) -> tuple[int, str]:
    """docker/healthcheck.py as the image runs it, in a subprocess (the server stays responsive)."""
    env = {**os.environ, "HEALTHCHECK_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HEALTHCHECK), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_healthcheck_script_against_a_real_server(server_factory) -> None:
    server = await server_factory(max_sessions=1)
    assert (await run_probe("/health", url=server.url + "/health"))[0] == 0
    assert (await run_probe("/ready", url=server.url + "/ready"))[0] == 0
    async with websockets.connect(server.ws_url, compression=None):
        await wait_for_sessions(server, 1)
        code, out = await run_probe("/ready", url=server.url + "/ready")
        assert code == 1 and "503" in out
        assert (await run_probe("/health", url=server.url + "/health"))[0] == 0
    server.app[STATE].engines.loaded = False
    try:
        # Cannot happen in a container (the port opens after loading), but the probe says no.
        code, out = await run_probe(url=server.url + "/health")
        assert code == 1 and "loading" in out
    finally:
        server.app[STATE].engines.loaded = True


async def test_healthcheck_script_fails_when_nothing_listens(unused_tcp_port: int) -> None:
    code, out = await run_probe(url=f"http://127.0.0.1:{unused_tcp_port}/health")
    assert code == 1 and out.strip()


def test_healthcheck_script_default_url_follows_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("vb_healthcheck", HEALTHCHECK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen: list[str] = []
    monkeypatch.setattr(module, "probe", lambda url: (seen.append(url), (True, "ok"))[1])
    monkeypatch.delenv("HEALTHCHECK_URL", raising=False)
    monkeypatch.setenv("VOICE_BRIDGE_PORT", "9123")
    assert module.main(["healthcheck.py", "/ready"]) == 0
    monkeypatch.delenv("VOICE_BRIDGE_PORT")
    assert module.main(["healthcheck.py"]) == 0
    assert seen == ["http://127.0.0.1:9123/ready", "http://127.0.0.1:8765/health"]


# =============================================================================== Dockerfiles
@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> tuple[str, Dockerfile]:
    return request.param, parse_dockerfile(DOCKERFILES[request.param])


def test_images_are_multi_stage_and_run_as_a_non_root_user(image: tuple[str, Dockerfile]) -> None:
    _, dockerfile = image
    assert [s.name for s in dockerfile.stages] == ["build", "runtime"]
    final = dockerfile.final
    users = final.all("USER")
    assert users, "the runtime stage must switch to a non-root user"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric uid (Kubernetes runAsNonRoot can check it)"
    creates_user = " ".join(r.args for r in final.all("RUN"))
    assert f"--uid {uid}" in creates_user
    # The venv and the app come from the build stage; no compiler or make is left behind.
    copies = [c.args for c in final.all("COPY")]
    assert f"--from=build {VENV_DIR} {VENV_DIR}" in copies and "--from=build /app /app" in copies
    assert any("purge" in r.args and "make" in r.args for r in final.all("RUN"))


def test_images_install_only_through_the_makefile(image: tuple[str, Dockerfile]) -> None:
    """No package manager of Python's is called directly: `make install-run` does it all."""
    name, dockerfile = image
    installers = {"pip", "pip3", "uv", "poetry", "pipx", "conda", "mamba", "easy_install"}
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            for command in re.split(r"&&|;|\|\|", run.args):
                words = [w for w in shlex.split(command) if not w.startswith("--mount=")]
                direct = bool(words) and (
                    Path(words[0]).name in installers
                    or (Path(words[0]).name.startswith("python") and "pip" in words[1:3])
                    or "pip install" in command
                )
                assert not direct, f"{name}: line {run.line} installs Python packages outside the Makefile: {command}"
    build_calls = make_calls(dockerfile, dockerfile.stage("build"))
    assert [c.targets for c in build_calls] == [["install-run"]]
    assert build_calls[0].variables["VENV"] == VENV_DIR
    runtime_calls = make_calls(dockerfile, dockerfile.final)
    assert [c.targets for c in runtime_calls] == [[RUNTIME_SYSTEM_TARGET]]
    overridable = makefile_variables()
    for call in build_calls + runtime_calls:
        unknown = sorted(set(call.variables) - set(overridable))
        assert not unknown, f"{name}: make is given {unknown}, which the Makefile does not define (renamed?)"


def test_image_extras_exist_and_install_the_way_a_checkout_does(image: tuple[str, Dockerfile]) -> None:
    """The image's `make install-run` runs exactly the checkout's steps for the same extras."""
    name, dockerfile = image
    call = make_calls(dockerfile, dockerfile.stage("build"))[0]
    extras = call.variables["EXTRAS_RUN"].split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(declared), f"{name}: unknown extras {set(extras) - set(declared)}"
    steps = make_dry_run("install-run", call.variables)
    assert steps[0] == f"python3 -m venv {VENV_DIR}"
    assert any(f"-e '.[{call.variables['EXTRAS_RUN']}]'" in s for s in steps)
    # install-dev is the same recipe: with the same extras it runs the same pip commands, so a
    # step added to one target and not the other fails here.
    dev = make_dry_run("install-dev", {**call.variables, "EXTRAS_DEV": call.variables["EXTRAS_RUN"]})
    assert dev == steps
    if {"rvc", "soprano"} & set(extras):
        torch = [s for s in steps if "torch==" in s or "'torch" in s]
        assert len(torch) == 1 and steps.index(torch[0]) < next(i for i, s in enumerate(steps) if " -e " in s)
    if "soprano" in extras:
        assert any("--no-deps" in s and "soprano-tts" in s for s in steps)


def test_cpu_image_runs_the_embedded_voice_and_the_bot() -> None:
    dockerfile = parse_dockerfile(DOCKERFILES["cpu"])
    call = make_calls(dockerfile, dockerfile.stage("build"))[0]
    assert set(call.variables["EXTRAS_RUN"].split(",")) == {"piper", "romanize", "discord"}
    steps = make_dry_run("install-run", call.variables)
    assert not any("torch" in s for s in steps), "the CPU image needs no torch"


def test_cuda_image_takes_torch_from_the_cuda_index_of_its_base_image() -> None:
    dockerfile = parse_dockerfile(DOCKERFILES["cuda"])
    call = make_calls(dockerfile, dockerfile.stage("build"))[0]
    assert {"rvc", "soprano"} <= set(call.variables["EXTRAS_RUN"].split(","))
    index = call.variables["TORCH_INDEX_URL"]
    wheel_cuda = re.search(r"/cu(\d+)$", index)
    assert wheel_cuda, f"TORCH_INDEX_URL {index!r} is not a CUDA wheel index"
    base = expand(dockerfile.stage("build").base, dockerfile.global_args)
    assert base == expand(dockerfile.final.base, dockerfile.global_args)
    base_cuda = re.match(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-base-", base)
    assert base_cuda, f"unexpected base image {base}"
    # The wheel's CUDA and the base image's (driver requirement, env) are the same release.
    assert wheel_cuda.group(1) == base_cuda.group(1) + base_cuda.group(2)
    steps = make_dry_run("install-run", call.variables)
    assert any(f"--index-url '{index}'" in s and "torch==" in s for s in steps)
    env = " ".join(e.args for e in dockerfile.final.all("ENV"))
    assert "VOICE_BRIDGE_TTS=soprano" in env and "VOICE_BRIDGE_DEVICE=cuda" in env
    assert Settings(tts="soprano", device="cuda").engines.tts == "soprano"


def test_images_listen_probe_and_keep_models_on_a_volume(image: tuple[str, Dockerfile]) -> None:
    name, dockerfile = image
    env = image_env(dockerfile)
    settings = Settings(**{k.removeprefix("VOICE_BRIDGE_").lower(): v for k, v in env.items() if k.startswith("VOICE_BRIDGE_")})
    assert settings.server.host == "0.0.0.0"
    exposed = {e.args for e in dockerfile.final.all("EXPOSE")}
    assert exposed == {str(settings.server.port)}
    volumes = json.loads(dockerfile.final.all("VOLUME")[-1].args)
    assert volumes == [str(settings.engines.models_dir)]
    assert env["HF_HOME"].startswith(str(settings.engines.models_dir) + "/"), "hub downloads must land on the volume"
    healthcheck = dockerfile.final.all("HEALTHCHECK")[-1].args
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "/app/docker/healthcheck.py"]
    assert command[2] in route_paths() and command[2] == "/health"
    assert "--start-period=" in healthcheck
    assert json.loads(dockerfile.final.all("CMD")[-1].args) == ["voice-bridge", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "voice-bridge" in scripts
    assert (ROOT / "docker" / "healthcheck.py").is_file()


def test_images_install_the_run_time_system_packages_and_no_browser(image: tuple[str, Dockerfile]) -> None:
    """The target an image's runtime stage calls installs libopus0 and never the tests' chromium
    (no browser in a server image; on the CUDA image's Ubuntu 24.04 that deb is a snap stub)."""
    name, dockerfile = image
    [call] = make_calls(dockerfile, dockerfile.final)
    assert call.targets == [RUNTIME_SYSTEM_TARGET], name
    script = make_dry_script(RUNTIME_SYSTEM_TARGET, call.variables)
    assert "libopus0" in script, name  # discord.py's Opus encoder: the bot runs from the CPU image
    assert "chromium" not in script, f"{name}: `make {RUNTIME_SYSTEM_TARGET}` would install chromium:\n{script}"


def test_runtime_system_target_installs_only_libopus(tmp_path: Path) -> None:
    installed, out = apt_installs(RUNTIME_SYSTEM_TARGET, tmp_path)
    assert installed == ["libopus0"], out


def test_test_system_target_adds_chromium_to_the_runtime_packages(tmp_path: Path) -> None:
    """`make test` still gets its browser: system-deps is the runtime packages plus chromium."""
    installed, out = apt_installs("system-deps", tmp_path)
    assert installed == ["libopus0", "chromium"], out
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-python:.*\bsystem-deps\b", text, re.M), "make test must install chromium"
    assert re.search(r"^test-python:.*\bdocker-tools\b", text, re.M), "CI must install the compose validator"


def test_system_targets_install_nothing_that_is_already_there(tmp_path: Path) -> None:
    installed, out = apt_installs("system-deps", tmp_path, have_all=True)
    assert installed is None, out


# =============================================================================== .dockerignore
def test_dockerignore_lets_in_what_the_install_needs_and_nothing_heavy() -> None:
    patterns = dockerignore_patterns()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = ["Makefile", "pyproject.toml", pyproject["project"]["readme"], "docker/healthcheck.py"]
    needed += [f"{package}/__init__.py" for package in wheel["packages"]]
    needed += list(wheel.get("force-include", {}))  # e.g. models/manifest.toml
    for path in needed:
        assert not ignored(path, patterns), f".dockerignore leaves out {path}, which the install needs"
    for path in [
        ".venv/bin/python",
        ".git/HEAD",
        "models/voices/alice/alice.pth",
        "models/rmvpe.pt",
        "models/soprano/model.safetensors",
        "tests/test_server.py",
        "docker/.env",
        "docker/bot.env",
        "bridge/__pycache__/server.cpython-311.pyc",
    ]:
        assert ignored(path, patterns), f".dockerignore lets {path} into the build context"


def test_both_images_copy_the_whole_filtered_context_once() -> None:
    """`COPY . .` (filtered by .dockerignore) so a new package directory cannot be forgotten."""
    for name, path in DOCKERFILES.items():
        build = parse_dockerfile(path).stage("build")
        assert [c.args for c in build.all("COPY")] == [". ."], name
        assert build.all("WORKDIR")[-1].args == "/app"


def test_hadolint_passes() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (make docker-tools installs it into the venv)")
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# =============================================================================== compose
BRIDGE_PROFILES = ("cpu", "gpu", "rocm", "scale")
PROFILE_SETS = [("cpu",), ("gpu",), ("rocm",), ("rocm", "bot"), ("scale",), ("bot",), ("llm",), ("cpu", "bot"), ("gpu", "bot", "llm"), ("scale", "bot", "llm")]


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids=["+".join(p) for p in PROFILE_SETS])
def test_compose_config_validates_every_profile_as_checked_out(profiles: tuple[str, ...]) -> None:
    """A fresh checkout (no env files copied yet) gives a valid project for every profile."""
    result = compose(DOCKER, "config", "--quiet", profiles=profiles)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def configured_docker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docker/ with every *.env.example copied to the file it documents, as the README says."""
    target = tmp_path_factory.mktemp("stack") / "docker"
    shutil.copytree(DOCKER, target)
    for example in target.glob("*.example"):
        shutil.copy(example, example.with_suffix(""))
    for example in target.glob(".*.example"):
        shutil.copy(example, example.with_suffix(""))
    return target


def test_compose_with_the_example_env_files(configured_docker_dir: Path) -> None:
    assert (configured_docker_dir / ".env").is_file() and (configured_docker_dir / "bot.env").is_file()
    # COMPOSE_PROFILES comes from docker/.env: cpu + bot.
    config = resolved(configured_docker_dir)
    assert set(config["services"]) == {"bridge", "bot"}
    bridge_env = config["services"]["bridge"]["environment"]
    assert bridge_env["VOICE_BRIDGE_MAX_SESSIONS"] == "32"
    bot_env = config["services"]["bot"]["environment"]
    assert bot_env["VOICE_BRIDGE_DISCORD_BRIDGE_URL"] == "ws://bridge:8765/ws/stream"
    scale = resolved(configured_docker_dir, profiles=("scale",), env={"COMPOSE_PROFILES": "scale"})
    replica = scale["services"]["bridge-replica"]
    assert replica["deploy"]["replicas"] == 3
    # compose's `environment` wins over bridge.env: the replica cap is the scale profile's.
    assert replica["environment"]["VOICE_BRIDGE_MAX_SESSIONS"] == "16"
    llm = resolved(configured_docker_dir, profiles=("llm",), env={"COMPOSE_PROFILES": "llm"})["services"]["llm"]
    assert llm["environment"]["LLAMA_ARG_N_GPU_LAYERS"] == "999"
    assert llm["environment"]["LLAMA_ARG_MODEL"] == "/llm-models/model.gguf"


@pytest.mark.parametrize("profile", BRIDGE_PROFILES)
def test_each_bridge_profile_gives_exactly_one_bridge_host_and_one_published_port(profile: str) -> None:
    config = resolved(profiles=(profile, "bot"))
    assert len(answers_as_bridge(config)) == 1, answers_as_bridge(config)
    published = [
        (name, port) for name, service in config["services"].items() for port in service.get("ports", [])
    ]
    assert len(published) == 1
    name, port = published[0]
    assert port["published"] == "8765" and port["host_ip"] == "127.0.0.1"
    assert port["target"] == Settings().server.port
    # The bot waits for whichever bridge this profile runs.
    depends = config["services"]["bot"]["depends_on"]
    assert name in depends and depends[name]["condition"] == "service_healthy"


def test_bot_and_llm_urls_point_at_services_of_the_stack() -> None:
    bot_env = dict(read_env_file(DOCKER / "bot.env.example"))
    url = bot_env["VOICE_BRIDGE_DISCORD_BRIDGE_URL"]
    match = re.fullmatch(r"ws://([\w-]+):(\d+)(/\S*)", url)
    assert match and match.group(1) == "bridge" and int(match.group(2)) == Settings().server.port
    assert match.group(3) in route_paths()
    config = resolved(profiles=("gpu", "bot", "llm"))
    llm = config["services"]["llm"]
    llm_url = re.fullmatch(r"http://([\w-]+):(\d+)/v1", bot_env["VOICE_BRIDGE_DISCORD_LLM_URL"])
    assert llm_url and llm_url.group(1) == "llm"
    assert llm_url.group(2) == llm["environment"]["LLAMA_ARG_PORT"]
    assert f":{llm_url.group(2)}/health" in " ".join(llm["healthcheck"]["test"])
    gpu_request = llm["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu_request["driver"] == "nvidia" and gpu_request["capabilities"] == ["gpu"]
    bridge_gpu = config["services"]["bridge-gpu"]
    assert bridge_gpu["deploy"]["resources"]["reservations"]["devices"] == [gpu_request]
    assert bridge_gpu["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert config["services"]["bot"]["command"] == ["python", "-m", "bots.discord"]
    assert config["services"]["bot"]["healthcheck"] == {"disable": True}


def test_models_are_a_volume_shared_by_every_bridge() -> None:
    config = resolved(profiles=("cpu", "gpu", "scale"))
    for name, dockerfile in (("bridge", "cpu"), ("bridge-gpu", "cuda"), ("bridge-replica", "cpu")):
        models_dir = image_env(parse_dockerfile(DOCKERFILES[dockerfile]))["VOICE_BRIDGE_MODELS_DIR"]
        mounts = config["services"][name]["volumes"]
        assert any(m["type"] == "volume" and m["source"] == "models" and m["target"] == models_dir for m in mounts), name
    assert "models" in config["volumes"]


# =============================================================================== load balancer
def test_traefik_routes_sessions_to_ready_replicas_with_least_connections() -> None:
    config = resolved(profiles=("scale",))
    services = config["services"]
    replica, lb = services["bridge-replica"], services["lb"]
    labels = replica["labels"]
    assert labels["traefik.enable"] == "true"
    parsed = traefik_labels(labels)
    (router_name, router), = parsed["routers"].items()
    (service_name, service), = parsed["services"].items()
    assert router["service"] == service_name
    assert router["rule"] == "PathPrefix(`/`)"  # /ws/stream, /api/speak, /health, /ready
    static = traefik_static()
    assert router["entrypoints"] in static["entryPoints"]
    # Ports: the label, the image's port, the entry point and what compose publishes agree.
    assert int(service["loadbalancer.server.port"]) == Settings().server.port
    image_port = image_env(parse_dockerfile(DOCKERFILES["cpu"]))["VOICE_BRIDGE_PORT"]
    assert service["loadbalancer.server.port"] == image_port
    entry_port = int(static["entryPoints"][router["entrypoints"]]["address"].rsplit(":", 1)[1])
    assert [p["target"] for p in lb["ports"]] == [entry_port]
    # Least connections, and the readiness route the server really has.
    assert service["loadbalancer.strategy"] == "p2c"
    assert service["loadbalancer.healthcheck.path"] == "/ready" and "/ready" in route_paths()
    assert service["loadbalancer.healthcheck.interval"].endswith("s")
    # Long WebSocket sessions: no read deadline on the entry point.
    assert static["entryPoints"][router["entrypoints"]]["transport"]["respondingTimeouts"]["readTimeout"] in ("0s", 0)
    # Only labelled containers are routed, and Traefik reads them from the Docker socket.
    assert static["providers"]["docker"]["exposedByDefault"] is False
    mounts = {m["target"]: m for m in lb["volumes"]}
    assert Path(mounts["/etc/traefik/traefik.yml"]["source"]).resolve() == TRAEFIK_FILE.resolve()
    assert mounts["/etc/traefik/traefik.yml"]["read_only"] is True
    assert mounts["/var/run/docker.sock"]["read_only"] is True
    # Traefik's own health: /ping on its ping entry point.
    assert lb["healthcheck"]["test"][-2:] == ["healthcheck", "--ping"] and static["ping"]["entryPoint"] in static["entryPoints"]
    assert lb["depends_on"]["bridge-replica"]["condition"] == "service_healthy"
    # Replicas publish nothing themselves and each caps its sessions (then /ready says 503).
    assert "ports" not in replica
    assert int(replica["environment"]["VOICE_BRIDGE_MAX_SESSIONS"]) >= 1
    assert replica["deploy"]["replicas"] >= 2


def test_replica_settings_from_compose_are_valid_bridge_settings() -> None:
    config = resolved(profiles=("scale",), env={"BRIDGE_REPLICAS": "5", "BRIDGE_REPLICA_MAX_SESSIONS": "12"})
    replica = config["services"]["bridge-replica"]
    assert replica["deploy"]["replicas"] == 5
    env = replica["environment"]
    settings = Settings(**{k.removeprefix("VOICE_BRIDGE_").lower(): v for k, v in env.items()})
    assert settings.sessions.max_sessions == 12 and settings.piper.threads == 1


# =============================================================================== env files
def test_bridge_env_example_holds_valid_bridge_settings_only() -> None:
    pairs = read_env_file(DOCKER / "bridge.env.example")
    fields = {name.lower(): value for name, value in ((n.removeprefix("VOICE_BRIDGE_"), v) for n, v in pairs)}
    assert all(n.startswith("VOICE_BRIDGE_") for n, _ in pairs)
    assert set(fields) <= set(flat_fields(Settings)), set(fields) - set(flat_fields(Settings))
    Settings(**fields)  # values validate
    # The images fix these; an env file that set them would break the container's wiring.
    assert not {"host", "port", "models_dir"} & set(fields)


def test_bot_env_example_holds_valid_bot_settings() -> None:
    pairs = dict(read_env_file(DOCKER / "bot.env.example"))
    assert all(n.startswith("VOICE_BRIDGE_DISCORD_") for n in pairs)
    assert "VOICE_BRIDGE_DISCORD_TOKEN" in pairs and pairs["VOICE_BRIDGE_DISCORD_TOKEN"] == ""
    try:
        from bots.discord.settings import ENV_PREFIX, DiscordSettings
    except ImportError as exc:
        pytest.skip(f"the Discord bot's settings are not importable here ({exc})")
    values = {n.removeprefix(ENV_PREFIX).lower(): v for n, v in pairs.items() if v != ""}
    assert set(values) <= set(DiscordSettings.model_fields)
    DiscordSettings(**values)


def test_compose_variables_are_documented_in_the_example() -> None:
    """Every ${VAR} compose.yaml reads has its line in .env.example (and nothing stale there)."""
    used = set(re.findall(r"\$\{(\w+)(?::?-[^}]*)?\}", COMPOSE_FILE.read_text()))
    documented = {name for name, _ in read_env_file(DOCKER / ".env.example")} - {"COMPOSE_PROFILES"}
    assert used == documented


def test_local_env_files_are_never_committed_or_built_in() -> None:
    ignore = (DOCKER / ".gitignore").read_text().split()
    assert ".env" in ignore and "*.env" in ignore
    assert ignored("docker/bridge.env", dockerignore_patterns())


# =============================================================================== Traefik, for real
def test_traefik_image_matches_the_tested_traefik() -> None:
    binary = tool("traefik")
    if binary is None:
        pytest.skip("traefik not installed (make docker-tools installs it into the venv)")
    image = re.search(r"TRAEFIK_IMAGE:-traefik:v(\d+\.\d+)\}", COMPOSE_FILE.read_text())
    assert image and image.group(1) == traefik_version(binary)


async def test_traefik_sends_new_sessions_only_to_ready_replicas(server_factory, balancer) -> None:
    """Two bridges of one session each behind Traefik: once a bridge's /ready says 503 it gets
    no new session; with both full Traefik answers 503 itself instead of handing the client to
    a bridge that would close it (1013); when a session ends its bridge comes back."""
    replicas = {r.url: r for r in [await server_factory(max_sessions=1) for _ in range(2)]}
    a, b = list(replicas)
    lb = await balancer([a, b])
    async with websockets.connect(lb.url + "?events=1", compression=None) as first:
        assert json.loads(await asyncio.wait_for(first.recv(), 10))["type"] == "ready"
        [full] = [url for url, count in sessions_of(replicas).items() if count]
        other = b if full == a else a
        await lb.until({full: "DOWN", other: "UP"})
        async with websockets.connect(lb.url + "?events=1", compression=None) as second:
            assert json.loads(await asyncio.wait_for(second.recv(), 10))["type"] == "ready"
            assert sessions_of(replicas) == {a: 1, b: 1}
            # Audio flows through the proxied WebSocket.
            await second.send(json.dumps({"token": "Hello there."}))
            await second.send(json.dumps({"flush": True}))
            kinds: list[str] = []
            while "flushed" not in kinds:
                message = await asyncio.wait_for(second.recv(), 30)
                kinds.append("audio" if isinstance(message, bytes) else json.loads(message)["type"])
            assert "audio" in kinds
            await lb.until({a: "DOWN", b: "DOWN"})
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(lb.url, compression=None)
            assert refused.value.response.status_code == 503
        await lb.until({full: "DOWN", other: "UP"})
        async with websockets.connect(lb.url, compression=None):
            await until_sessions(replicas, {a: 1, b: 1})


async def test_traefik_balances_open_websockets_by_least_connections(server_factory, balancer) -> None:
    """p2c counts a proxied WebSocket as in flight for its whole life: each new session goes to
    the bridge with fewer open sessions (round robin would not: see the last step)."""
    replicas = {r.url: r for r in [await server_factory(max_sessions=8) for _ in range(2)]}
    a, b = list(replicas)
    lb = await balancer([a, b])
    sessions: dict[str, list[Any]] = {a: [], b: []}

    async def open_one() -> str:
        before = sessions_of(replicas)
        ws = await websockets.connect(lb.url, compression=None)
        for _ in range(200):
            after = sessions_of(replicas)
            if sum(after.values()) == sum(before.values()) + 1:
                break
            await asyncio.sleep(0.05)
        [landed] = [url for url in replicas if after[url] == before[url] + 1]
        sessions[landed].append(ws)
        return landed

    try:
        for opened in range(1, 5):
            await open_one()
            assert sorted(sessions_of(replicas).values()) == [opened // 2, (opened + 1) // 2]
        # Empty one bridge: the next two sessions both go there (round robin would split them).
        emptied, busy = a, b
        for ws in sessions[emptied]:
            await ws.close()
        sessions[emptied].clear()
        await until_sessions(replicas, {emptied: 0, busy: 2})
        assert [await open_one(), await open_one()] == [emptied, emptied]
        assert sessions_of(replicas) == {emptied: 2, busy: 2}
    finally:
        for ws in sessions[a] + sessions[b]:
            await ws.close()
