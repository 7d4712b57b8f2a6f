"""deploy/kubernetes/: manifests valid for Kubernetes, variants that render, and a bridge that
behaves as they expect (probes, metric, drain), all offline.

No cluster here: every manifest and every rendered variant is validated against the Kubernetes
schemas (``kubernetes-validate``, strict); the variants are rendered with tests/support/kube.py and, where
a kubectl is on PATH, compared with what `kubectl kustomize` (`kubectl apply -k`) renders; the
probes, the autoscaler's metric and the drain on SIGTERM are checked against real servers on
loopback. What needs a cluster (scheduling, the device plugins, the Prometheus adapter, an
ingress controller) is not run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
import yaml

from bridge.config import Settings, flat_fields
from tests.support.kube import (
    CLUSTER_SCOPED,
    canonical,
    container,
    env_of,
    find,
    kubectl,
    kubectl_kustomize,
    load_documents,
    pod_spec,
    render,
    validate,
)
from tests.support.compose import resolved
from tests.support.dockerfile import DOCKERFILES, image_env, parse_dockerfile
from tests.support.routes import route_paths
from tests.support.server_process import start_server_process

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
#: Every variant a user applies: `kubectl apply -k deploy/kubernetes[/overlays/X]`.
VARIANTS = {"cpu": ".", "nvidia": "overlays/nvidia", "amd": "overlays/amd"}
#: The oldest Kubernetes the manifests are for (preStop `sleep` is on by default from 1.30) and the
#: newest whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
#: After its shutdown deadline the server still closes its runner and engines: the grace period
#: must leave this much beyond preStop + shutdown_timeout_seconds (the drain test holds the
#: server to it).
EXIT_SLACK_SECONDS = 5.0
#: The image each variant's bridge runs, and the Dockerfile that builds it (as in compose.yaml).
VARIANT_IMAGES = {"cpu": ("voice-bridge:cpu", "cpu"), "nvidia": ("voice-bridge:cuda", "cuda"), "amd": ("voice-bridge:rocm", "rocm")}
HPA_METRIC = "voice_bridge_load_ratio"


def configured_copy(target: Path) -> Path:
    """deploy/kubernetes with every *.env.example copied to the file it documents (the README's
    first step), so that the secret generators find their env files."""
    shutil.copytree(KUBE, target, ignore=shutil.ignore_patterns("*.env"))
    for example in target.rglob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return target


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    root = configured_copy(tmp_path_factory.mktemp("kube") / "kubernetes")
    return {name: render(root / path) for name, path in VARIANTS.items()}


def bridge(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment", "voice-bridge")


# =============================================================================== schemas
def manifest_files() -> list[Path]:
    """Every YAML file of deploy/kubernetes that holds complete Kubernetes objects (not
    kustomizations, patches or the adapter's Helm values)."""
    files = []
    for path in sorted(KUBE.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "prometheus-adapter" in path.parts:
            continue
        kustomization = yaml.safe_load((path.parent / "kustomization.yaml").read_text())
        if path.name in {p["path"] for p in kustomization.get("patches", [])}:
            continue
        files.append(path)
    return files


def test_every_file_is_a_resource_or_patch_of_some_kustomization() -> None:
    """No manifest lies around unused: each is listed where it is."""
    for path in sorted(KUBE.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "prometheus-adapter" in path.parts:
            continue
        kustomization = yaml.safe_load((path.parent / "kustomization.yaml").read_text())
        listed = set(kustomization.get("resources", [])) | {p["path"] for p in kustomization.get("patches", [])}
        assert path.name in listed, f"{path.relative_to(ROOT)} is in no kustomization"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    files = manifest_files()
    assert len(files) >= 8
    for path in files:
        for obj in load_documents(path):
            validate(obj, version)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_variant_validates(variants: dict[str, list[dict[str, Any]]], variant: str, version: str) -> None:
    objects = variants[variant]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("Deployment") == 2 and {"Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Secret", "Namespace"} <= set(kinds)
    for obj in objects:
        validate(obj, version)


def test_a_schema_violation_is_caught() -> None:
    """The validator is not a rubber stamp: a misspelt field and a bad type fail."""
    deployment = load_documents(KUBE / "base" / "bridge-deployment.yaml")[0]
    broken = json.loads(json.dumps(deployment))
    pod_spec(broken)["terminationGracePeriod"] = 45
    with pytest.raises(Exception, match="terminationGracePeriod"):
        validate(broken, KUBERNETES_VERSIONS[-1])
    broken = json.loads(json.dumps(deployment))
    container(broken, "bridge")["readinessProbe"]["periodSeconds"] = "two"
    with pytest.raises(Exception):
        validate(broken, KUBERNETES_VERSIONS[-1])


@pytest.mark.skipif(kubectl() is None, reason="no kubectl on PATH: rendered with tests/support/kube.py only")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kubectl_kustomize_renders_each_variant_the_same(tmp_path: Path, variant: str, variants: dict[str, list[dict[str, Any]]]) -> None:
    """The real kustomize (what `kubectl apply -k` applies) agrees with tests/support/kube.py."""
    root = configured_copy(tmp_path / "kubernetes")
    assert canonical(kubectl_kustomize(root / VARIANTS[variant])) == canonical(variants[variant])


def test_one_namespace_for_everything(variants: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in variants.items():
        namespace = find(objects, "Namespace")["metadata"]["name"]
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                assert obj["metadata"].get("namespace") == namespace, (name, obj["kind"], obj["metadata"]["name"])


# =============================================================================== the bridge's pod
def test_each_variant_runs_its_image_and_its_gpu(variants: dict[str, list[dict[str, Any]]]) -> None:
    compose = resolved(profiles=("cpu", "gpu", "rocm", "bot"))["services"]
    compose_images = {"cpu": compose["bridge"]["image"], "cuda": compose["bridge-gpu"]["image"], "rocm": compose["bridge-rocm"]["image"]}
    for name, objects in variants.items():
        image, dockerfile = VARIANT_IMAGES[name]
        spec = container(bridge(objects), "bridge")
        assert spec["image"] == image == compose_images[dockerfile], name
        assert DOCKERFILES[dockerfile].is_file()
        gpus = {k: v for k, v in spec["resources"].get("limits", {}).items() if k.endswith("/gpu")}
        assert gpus == {"cpu": {}, "nvidia": {"nvidia.com/gpu": 1}, "amd": {"amd.com/gpu": 1}}[name]
        # The bot stays on the CPU image in every variant (the GPU images have no discord extra).
        assert container(find(objects, "Deployment", "voice-bridge-bot"), "bot")["image"] == "voice-bridge:cpu"
        if name != "cpu":
            # GPU nodes are usually tainted for their GPU resource; weights on a shared claim.
            assert [t["key"] for t in pod_spec(bridge(objects))["tolerations"]] == list(gpus)
            models = next(v for v in pod_spec(bridge(objects))["volumes"] if v["name"] == "models")
            assert set(models) == {"name", "persistentVolumeClaim"}
            claim = find(objects, "PersistentVolumeClaim", models["persistentVolumeClaim"]["claimName"])
            assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_amd_pods_join_the_groups_that_own_the_gpu_devices(variants: dict[str, list[dict[str, Any]]]) -> None:
    groups = pod_spec(bridge(variants["amd"]))["securityContext"]["supplementalGroups"]
    assert 44 in groups and len(groups) == 2  # video, and the nodes' render gid
    # The same ids the compose profile gives the container (video by default).
    compose = resolved(profiles=("rocm",), env={"RENDER_GID": str(groups[1])})["services"]["bridge-rocm"]
    assert sorted(map(int, compose["group_add"])) == sorted(groups)
    assert "supplementalGroups" not in pod_spec(bridge(variants["nvidia"]))["securityContext"]


def test_pods_run_as_the_images_user_with_models_where_the_image_expects_them(variants: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in variants.items():
        dockerfile = parse_dockerfile(DOCKERFILES[VARIANT_IMAGES[name][1]])
        uid = int(dockerfile.final.all("USER")[-1].args.split(":")[0])
        for deployment in (bridge(objects), find(objects, "Deployment", "voice-bridge-bot")):
            security = pod_spec(deployment)["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] == uid
        spec = container(bridge(objects), "bridge")
        mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
        assert mounts[image_env(dockerfile)["VOICE_BRIDGE_MODELS_DIR"]] == "models"
        # A read-only root file system: what the server writes goes to volumes (/tmp, /models).
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True and "/tmp" in mounts


def test_the_bridge_env_is_valid_settings_and_the_secrets_are_settings_too(variants: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in variants.items():
        spec = container(bridge(objects), "bridge")
        env = env_of(spec)
        fields = {k.removeprefix("VOICE_BRIDGE_").lower(): v for k, v in env.items()}
        assert all(k.startswith("VOICE_BRIDGE_") for k in env) and set(fields) <= set(flat_fields(Settings)), name
        settings = Settings(**fields)
        # The port, host and models come from the image; setting them here would break probes.
        assert not {"host", "port", "models_dir"} & set(fields)
        assert settings.sessions.max_sessions >= 1 and settings.access.metrics_auth is False
        # The measured capacity counts the cores the pod asked for (no CPU limit, so no quota).
        [cores] = [e["valueFrom"]["resourceFieldRef"] for e in spec["env"] if e["name"] == "VOICE_BRIDGE_CAPACITY_CORES"]
        assert cores == {"containerName": spec["name"], "resource": "requests.cpu", "divisor": "1"}
        assert "cpu" not in spec["resources"].get("limits", {}), "a CPU limit throttles (and caps the capacity twice)"
        assert float(spec["resources"]["requests"]["cpu"]) >= 1  # divisor 1 rounds a fraction up
        assert Settings(capacity_cores=spec["resources"]["requests"]["cpu"]).capacity.cores >= 1
        [secret_ref] = [e["secretRef"]["name"] for e in spec["envFrom"]]
        secret = find(objects, "Secret", secret_ref)
        values = {k.removeprefix("VOICE_BRIDGE_").lower(): base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert set(values) <= set(flat_fields(Settings))
        assert Settings(**values).access.api_keys == []  # the example: no keys


def test_the_bot_reaches_the_bridge_through_the_service(variants: dict[str, list[dict[str, Any]]]) -> None:
    objects = variants["cpu"]
    bot = find(objects, "Deployment", "voice-bridge-bot")
    assert bot["spec"]["replicas"] == 1 and bot["spec"]["strategy"]["type"] == "Recreate"
    spec = container(bot, "bot")
    assert spec["command"] == ["python", "-m", "bots.discord"]
    service = find(objects, "Service", "voice-bridge")
    url = re.fullmatch(r"ws://([\w-]+):(\d+)(/\S+)", env_of(spec)["VOICE_BRIDGE_DISCORD_BRIDGE_URL"])
    assert url and url.group(1) == service["metadata"]["name"]
    assert int(url.group(2)) == service["spec"]["ports"][0]["port"] and url.group(3) in route_paths()
    try:
        from bots.discord.settings import ENV_PREFIX, DiscordSettings
    except ImportError as exc:
        pytest.skip(f"the Discord bot's settings are not importable here ({exc})")
    secret = find(objects, "Secret", spec["envFrom"][0]["secretRef"]["name"])
    assert "VOICE_BRIDGE_DISCORD_TOKEN" in secret["data"]
    values = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in env_of(spec).items()}
    assert set(values) <= set(DiscordSettings.model_fields)
    DiscordSettings(**values)


def test_service_pdb_and_hpa_select_the_bridge_pods_only(variants: dict[str, list[dict[str, Any]]]) -> None:
    objects = variants["cpu"]
    bridge_labels = bridge(objects)["spec"]["template"]["metadata"]["labels"]
    bot_labels = find(objects, "Deployment", "voice-bridge-bot")["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    for selector in (
        find(objects, "Service", "voice-bridge")["spec"]["selector"],
        find(objects, "PodDisruptionBudget", "voice-bridge")["spec"]["selector"]["matchLabels"],
        bridge(objects)["spec"]["selector"]["matchLabels"],
    ):
        assert selects(selector, bridge_labels) and not selects(selector, bot_labels)
    target = find(objects, "HorizontalPodAutoscaler", "voice-bridge")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "voice-bridge")
    pdb = find(objects, "PodDisruptionBudget", "voice-bridge")["spec"]
    # A full replica is unready: it must not be evictable regardless of the budget.
    assert pdb["unhealthyPodEvictionPolicy"] == "IfHealthyBudget" and pdb["maxUnavailable"] == 1
    rollout = bridge(objects)["spec"]["strategy"]["rollingUpdate"]
    assert rollout["maxUnavailable"] == 0, "a rollout must not lower the capacity"


def probe_port(deployment: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container(deployment, "bridge")["ports"] if p["name"] == port]
    return number


def test_probes_ports_and_routes_agree_with_the_image_and_the_server(variants: dict[str, list[dict[str, Any]]]) -> None:
    routes = route_paths()
    for name, objects in variants.items():
        deployment = bridge(objects)
        spec = container(deployment, "bridge")
        image_port = int(image_env(parse_dockerfile(DOCKERFILES[VARIANT_IMAGES[name][1]]))["VOICE_BRIDGE_PORT"])
        probes = {kind: spec[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert probes["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health"
        assert probes["startupProbe"]["httpGet"]["path"] == "/health"
        for probe in probes.values():
            assert probe["httpGet"]["path"] in routes and probe_port(deployment, probe) == image_port == Settings().server.port
        startup = probes["startupProbe"]
        allowed = startup["periodSeconds"] * startup["failureThreshold"]
        # Model loading: minutes on a GPU (CUDA/ROCm start-up, Soprano + RVC, MIOpen's kernels).
        assert allowed >= (300 if name == "cpu" else 600), (name, allowed)
        # Readiness follows the free session slots closely: a full replica leaves within seconds.
        ready = probes["readinessProbe"]
        assert ready["periodSeconds"] * ready["failureThreshold"] <= 5
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == image_port and annotations["prometheus.io/path"] in routes
    service = find(variants["cpu"], "Service", "voice-bridge")["spec"]["ports"][0]
    assert service["targetPort"] == "http" and service["port"] == Settings().server.port


def test_ingress_keeps_websockets_open_and_routes_only_client_paths(variants: dict[str, list[dict[str, Any]]]) -> None:
    ingress = find(variants["cpu"], "Ingress", "voice-bridge")
    annotations = ingress["metadata"]["annotations"]
    # A bot keeps its session open for hours, silent between replies.
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    # The body limit is the server's own message limit.
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body.removesuffix("k")) * 1024 == Settings().limits.max_message_bytes
    routes = route_paths()
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for path in paths:
        assert path["backend"]["service"]["name"] == "voice-bridge" and path["backend"]["service"]["port"]["name"] == "http"
        assert path["pathType"] in ("Exact", "Prefix"), path  # the schema takes any string
        if path["pathType"] == "Exact":
            assert path["path"] in routes, path
        else:
            assert any(r.startswith(path["path"]) for r in routes), path
    exposed = {p["path"] for p in paths}
    assert {"/ws/stream", "/api/speak", "/v1"} <= exposed and not any(p.startswith("/metrics") for p in exposed)


# =============================================================================== autoscaling
def test_hpa_scales_on_the_load_metric_with_cpu_as_fallback(variants: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in variants.items():
        spec = find(objects, "HorizontalPodAutoscaler", "voice-bridge")["spec"]
        custom, fallback = spec["metrics"]
        assert custom["type"] == "Pods" and custom["pods"]["metric"]["name"] == HPA_METRIC
        target = custom["pods"]["target"]
        assert target["type"] == "AverageValue" and target["averageValue"] == "700m"  # 0.7 of real time
        assert fallback == {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
        assert container(bridge(objects), "bridge")["resources"]["requests"]["cpu"], "CPU utilization needs a request"
        assert 1 <= spec["minReplicas"] < spec["maxReplicas"]
        # Down slowly (removing a replica ends its sessions), up at once.
        down, up = spec["behavior"]["scaleDown"], spec["behavior"]["scaleUp"]
        assert down["stabilizationWindowSeconds"] >= 300 and down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]
        assert up["stabilizationWindowSeconds"] == 0


def test_prometheus_adapter_rule_serves_the_hpa_metric_per_pod() -> None:
    values = yaml.safe_load((KUBE / "prometheus-adapter" / "values.yaml").read_text())
    [rule] = values["rules"]["custom"]
    series = re.match(r"(\w+)\{", rule["seriesQuery"])
    assert series and series.group(1) == HPA_METRIC
    # The name the adapter serves is the one the HPA asks for.
    assert re.sub(rule["name"]["matches"], rule["name"]["as"], series.group(1)) == HPA_METRIC
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    query = rule["metricsQuery"]
    for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert placeholder in query


async def test_the_hpa_metric_is_a_gauge_on_metrics_and_follows_the_load(server_factory, variants) -> None:
    """A running server exports the metric the HPA scales on: demand over usable cores, where
    open sessions count with their voice's cost per audio second (bridge/capacity.py)."""
    server = await server_factory(max_sessions=4)

    async def scrape() -> str:
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
            assert response.status == 200
            return await response.text()

    def value(text: str) -> float:
        assert f"# TYPE {HPA_METRIC} gauge" in text
        [line] = [line for line in text.splitlines() if line.startswith(HPA_METRIC + " ")]
        return float(line.split()[1])

    idle = value(await scrape())
    async with websockets.connect(server.ws_url, compression=None), websockets.connect(server.ws_url, compression=None):
        for _ in range(200):
            busy = value(await scrape())
            if busy > idle:
                break
            await asyncio.sleep(0.02)
    assert idle == 0.0 and busy > idle


# =============================================================================== draining
def test_grace_period_covers_prestop_and_the_shutdown_timeout(variants: dict[str, list[dict[str, Any]]]) -> None:
    for name, objects in variants.items():
        deployment = bridge(objects)
        spec = container(deployment, "bridge")
        timeout = Settings(shutdown_timeout_seconds=env_of(spec)["VOICE_BRIDGE_SHUTDOWN_TIMEOUT_SECONDS"]).limits.shutdown_timeout_seconds
        pre_stop = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert pre_stop >= 1, "the endpoint must leave the Service before the listener closes"
        assert grace >= pre_stop + timeout + EXIT_SLACK_SECONDS, (name, grace, pre_stop, timeout)
    # Compose's bridges (no preStop there) get the default deadline's worth of grace too.
    for service in ("bridge", "bridge-gpu", "bridge-rocm", "bridge-replica"):
        compose = resolved(profiles=("cpu", "gpu", "rocm", "scale"))["services"][service]
        grace = float(compose["stop_grace_period"].removesuffix("s"))
        assert grace >= Settings().limits.shutdown_timeout_seconds + EXIT_SLACK_SECONDS, service


async def test_sigterm_drains_ready_says_503_at_once_the_utterance_finishes_and_the_process_exits(tmp_path: Path) -> None:
    """What a pod does on deletion, on loopback: SIGTERM mid-utterance. /ready is asked on a
    keep-alive connection opened before (the listener closes at SIGTERM; a balancer with pooled
    connections asks that way): 503 from the first request after the server starts draining.

    The server process is test_shutdown's, with the default shutdown timeout (10 s) instead of
    its 3 s: room for the reply to finish on a loaded machine; the server exits as soon as it has.
    """
    DEADLINE = Settings().limits.shutdown_timeout_seconds
    process, port, _ = await start_server_process(tmp_path, shutdown_timeout=DEADLINE)
    assert process.stderr is not None
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
            async with http.get(base + "/ready") as response:
                assert response.status == 200 and (await response.json())["ready"] is True
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/stream?events=1", compression=None)
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "ready"
            # Two sentences: at its first audio frame the rest is still being synthesized.
            reply = "A short reply, still being spoken when the pod goes. It ends before the deadline."
            await ws.send(json.dumps({"token": reply, "flush": True}))
            while not isinstance(await asyncio.wait_for(ws.recv(), 60), bytes):
                pass  # mid-utterance now
            process.send_signal(signal.SIGTERM)
            signalled = time.perf_counter()
            while True:  # the server says it is draining (then `draining` is already set)
                line = await asyncio.wait_for(process.stderr.readline(), 30)
                assert line, "the server exited without logging its shutdown"
                if line.startswith(b"{") and json.loads(line)["message"] == "shutting down":
                    break
            async with http.get(base + "/ready") as response:
                status, body = response.status, await response.json()
            assert status == 503 and body["ready"] is False and body["reason"] == "shutting down"
            async with http.get(base + "/health") as response:
                assert (await response.json())["status"] == "draining"
            kinds: list[str] = []
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), 30)
                    kinds.append("audio" if isinstance(message, bytes) else json.loads(message)["type"])
            except websockets.exceptions.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
        await asyncio.wait_for(process.wait(), DEADLINE + EXIT_SLACK_SECONDS + 5)
        exited = time.perf_counter() - signalled
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "flushed" in kinds, f"the utterance in flight at SIGTERM was cut: {kinds[-5:]}"
    assert code == 1001
    assert process.returncode == 0
    assert exited <= DEADLINE + EXIT_SLACK_SECONDS, f"exited {exited:.2f} s after SIGTERM"
