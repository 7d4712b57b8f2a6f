"""docker/Dockerfile.rocm and the compose profile `rocm`: an AMD GPU, offline.

What every image must do (multi-stage, non-root, installs only through the Makefile, the same
pip steps as a checkout, the health check, hadolint, compose validation) is checked for this
image too by tests/deploy/test_docker.py, whose DOCKERFILES (tests/support/dockerfile.py) and
BRIDGE_PROFILES name it. Here: what is particular to ROCm. No AMD GPU and no Docker engine
here: nothing builds or runs the image.
"""

from __future__ import annotations

import re

import pytest

from bridge.config import Settings
from tests.support.compose import resolved
from tests.support.dockerfile import DOCKER, DOCKERFILES, expand, image_env, make_calls, parse_dockerfile
from tests.support.makefile import make_dry_run
from tests.support.traefik import tool

ROCM = DOCKERFILES["rocm"]


def test_rocm_image_takes_torch_from_the_rocm_wheel_index() -> None:
    dockerfile = parse_dockerfile(ROCM)
    call = make_calls(dockerfile, dockerfile.stage("build"))[0]
    assert call.targets == ["install-run"]
    assert {"rvc", "soprano"} <= set(call.variables["EXTRAS_RUN"].split(","))
    index = call.variables["TORCH_INDEX_URL"]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/rocm\d+\.\d+", index), index
    # The Makefile installs torch (TORCH_SPEC, the same release as everywhere) from that index,
    # before the package, so nothing pulls a CUDA or CPU torch instead.
    steps = make_dry_run("install-run", call.variables)
    [torch] = [s for s in steps if "torch==" in s]
    assert f"--index-url '{index}'" in torch
    assert steps.index(torch) < next(i for i, s in enumerate(steps) if " -e " in s)
    # Build and runtime share one base (the venv's python3 must be the runtime's).
    base = expand(dockerfile.stage("build").base, dockerfile.global_args)
    assert base == expand(dockerfile.final.base, dockerfile.global_args)
    # The ROCm wheels carry their own HIP runtime and libraries: no vendor base image needed,
    # and none whose user space could disagree with the wheel's.
    assert not base.startswith(("rocm/", "nvidia/")), base


def test_rocm_image_uses_the_cuda_device_api_and_keeps_kernel_caches_on_the_volume() -> None:
    env = image_env(parse_dockerfile(ROCM))
    # torch's ROCm build calls the AMD GPU "cuda": the same setting as the CUDA image.
    assert env["VOICE_BRIDGE_DEVICE"] == "cuda" and env["VOICE_BRIDGE_TTS"] == "soprano"
    settings = Settings(device=env["VOICE_BRIDGE_DEVICE"], tts=env["VOICE_BRIDGE_TTS"], models_dir=env["VOICE_BRIDGE_MODELS_DIR"])
    # MIOpen's compiled kernels survive a restart (and a read-only root file system).
    for name in ("MIOPEN_USER_DB_PATH", "MIOPEN_CUSTOM_CACHE_DIR"):
        assert env[name].startswith(str(settings.engines.models_dir) + "/"), name
    healthcheck = parse_dockerfile(ROCM).final.all("HEALTHCHECK")[-1].args
    start = int(re.search(r"--start-period=(\d+)s", healthcheck).group(1))  # type: ignore[union-attr]
    cuda_start = int(re.search(r"--start-period=(\d+)s", parse_dockerfile(DOCKERFILES["cuda"]).final.all("HEALTHCHECK")[-1].args).group(1))  # type: ignore[union-attr]
    assert start >= cuda_start, "MIOpen builds kernels on first start: at least the CUDA image's start period"


def test_rocm_profile_passes_the_gpu_devices_and_the_hosts_groups() -> None:
    config = resolved(profiles=("rocm", "bot"), env={"RENDER_GID": "993"})
    service = config["services"]["bridge-rocm"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile.rocm"
    assert service["image"] == "voice-bridge:rocm"
    devices = {d["source"]: d["target"] for d in service["devices"]}
    assert devices == {"/dev/kfd": "/dev/kfd", "/dev/dri": "/dev/dri"}
    # The image runs as uid 10001: it joins video (44 on Debian/Ubuntu) and the host's render gid.
    assert service["group_add"] == ["44", "993"]
    # No NVIDIA reservation on an AMD box.
    assert "devices" not in ((service.get("deploy") or {}).get("resources") or {}).get("reservations", {})
    models_dir = image_env(parse_dockerfile(ROCM))["VOICE_BRIDGE_MODELS_DIR"]
    assert any(m["type"] == "volume" and m["source"] == "models" and m["target"] == models_dir for m in service["volumes"])
    assert config["services"]["bot"]["depends_on"]["bridge-rocm"]["condition"] == "service_healthy"
    # Without RENDER_GID the group is asked for by name: a container without it fails to start
    # with a clear error instead of running on the CPU without the GPU's device files.
    assert resolved(profiles=("rocm",))["services"]["bridge-rocm"]["group_add"] == ["44", "render"]


def test_docs_name_the_devices_groups_and_the_env_example_the_gid() -> None:
    readme = (DOCKER / "README.md").read_text()
    for fact in ("/dev/kfd", "/dev/dri", "render", "video", "RENDER_GID", "Dockerfile.rocm", "HSA_OVERRIDE_GFX_VERSION"):
        assert fact in readme, fact
    example = (DOCKER / ".env.example").read_text()
    assert re.search(r"^RENDER_GID=", example, re.M) and "getent group render" in example


def test_hadolint_passes_on_the_rocm_dockerfile() -> None:
    import subprocess

    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (make docker-tools installs it into the venv)")
    result = subprocess.run([hadolint, "--config", str(DOCKER / ".hadolint.yaml"), str(ROCM)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
