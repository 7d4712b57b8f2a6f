"""Offline tooling for deploy/kubernetes/: render a kustomization, validate objects, read them.

No cluster is needed. Rendering has two ways, checked against each other in
tests/support/test_kube.py:

* :func:`kubectl_kustomize`: the real kustomize built into kubectl (`kubectl kustomize DIR`,
  what `kubectl apply -k DIR` applies), when a kubectl is on PATH;
* :func:`render`: the same, in Python, for the part of kustomize the manifests use
  (``resources``, ``namespace``, ``patches`` as strategic-merge files, ``secretGenerator`` from
  env files without a name hash). A kustomization field outside that part is an error, so a
  manifest cannot drift beyond what is checked here without a kubectl.

Validation is against the Kubernetes OpenAPI schemas bundled by the ``kubernetes-validate``
package (strict: unknown fields are errors).
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

#: Kinds without a namespace among those the manifests use (kustomize leaves them alone).
CLUSTER_SCOPED = frozenset({"Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding", "APIService"})
#: The kustomization fields :func:`render` understands.
SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "patches", "secretGenerator", "generatorOptions"})
#: Lists that strategic merge patches merge item by item, by this key (the rest are replaced).
#: The subset of Kubernetes' patchMergeKey tags the manifests' patches touch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}

Obj = dict[str, Any]


class KustomizeError(ValueError):
    """A kustomization that :func:`render` cannot render (or that kustomize would refuse)."""


def load_documents(path: Path) -> list[Obj]:
    """The YAML documents of ``path``, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def find(objects: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    """The one object of ``kind`` (and ``name``) among ``objects``."""
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} objects of kind {kind} named {name}")
    return matches[0]


# ----------------------------------------------------------------------------- strategic merge
def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """``patch`` merged into ``base`` as a strategic merge patch does for these manifests: maps
    merge key by key, a null deletes the key, lists named in :data:`MERGE_KEYS` merge item by item
    on their key (patched items first, as kustomize writes them), other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for name, value in patch.items():
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = strategic_merge(out[name], value, name)
            else:
                out[name] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        merge_key = MERGE_KEYS[field]
        by_key = {item[merge_key]: item for item in base}
        patched = [strategic_merge(by_key[item[merge_key]], item, "") if item[merge_key] in by_key else copy.deepcopy(item) for item in patch]
        seen = {item[merge_key] for item in patch}
        return patched + [item for item in base if item[merge_key] not in seen]
    return copy.deepcopy(patch)


# ----------------------------------------------------------------------------- render
def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (comments and blank lines skipped), as kustomize's ``envs`` reads them."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise KustomizeError(f"{path}:{number}: not NAME=value")
        values[name] = value
    return values


def render(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize directory`` would print, for the supported fields."""
    return _render(directory.resolve(), ())


def _render(directory: Path, visiting: tuple[Path, ...]) -> list[Obj]:
    # kustomize's rule: a kustomization may not include one whose directory contains its own.
    if any(directory == seen or directory in seen.parents for seen in visiting):
        raise KustomizeError(f"cycle: {directory} contains a kustomization being built ({visiting[-1]})")
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}/kustomization.yaml: unsupported fields {sorted(unknown)}")
    if kustomization.get("kind") != "Kustomization":
        raise KustomizeError(f"{directory}/kustomization.yaml: kind must be Kustomization")
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += _render(path.resolve(), (*visiting, directory))
        elif path.is_file():
            objects += load_documents(path)
        else:
            raise KustomizeError(f"{directory}: resource {entry} not found")
    options = kustomization.get("generatorOptions", {})
    for generator in kustomization.get("secretGenerator", []):
        if not options.get("disableNameSuffixHash"):
            raise KustomizeError("secretGenerator needs generatorOptions.disableNameSuffixHash here (no name rewriting)")
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            env_path = directory / env
            if not env_path.is_file():
                raise KustomizeError(f"{directory}: env file {env} not found (copy it from {env}.example)")
            data.update(read_env_file(env_path))
        encoded = {name: base64.b64encode(value.encode()).decode() for name, value in data.items()}
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]}, "type": "Opaque", "data": encoded})
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise KustomizeError(f"{directory}: only file patches ({{path: ...}}) are supported, not {entry}")
        for patch in load_documents(directory / entry["path"]):
            matches = [i for i, obj in enumerate(objects) if key(obj) == key(patch)]
            if len(matches) != 1:
                raise KustomizeError(f"{directory}/{entry['path']}: patch matches {len(matches)} objects {key(patch)}")
            objects[matches[0]] = strategic_merge(objects[matches[0]], patch)
    return objects


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kubectl_kustomize(directory: Path) -> list[Obj]:
    """What the real kustomize in kubectl renders for ``directory`` (kubectl must exist)."""
    binary = kubectl()
    assert binary is not None
    result = subprocess.run([binary, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise KustomizeError(result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def canonical(objects: Iterable[Obj]) -> dict[tuple[str, str], Any]:
    """Objects keyed by (kind, name), with lists of named items in name order: two renderings that
    differ only in the order kustomize writes things compare equal."""

    def normal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, list):
            items = [normal(v) for v in value]
            if items and all(isinstance(v, dict) and "name" in v for v in items):
                return sorted(items, key=lambda v: json.dumps(v.get("name")))
            return items
        return value

    out: dict[tuple[str, str], Any] = {}
    for obj in objects:
        if key(obj) in out:
            raise KustomizeError(f"two objects {key(obj)}")
        out[key(obj)] = normal(obj)
    return out


# ----------------------------------------------------------------------------- validate
def validate(obj: Obj, version: str) -> None:
    """Raise when ``obj`` is not valid for Kubernetes ``version`` (strict: no unknown fields)."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, version, strict=True)


def pod_spec(deployment: Obj) -> Obj:
    return deployment["spec"]["template"]["spec"]


def container(deployment: Obj, name: str) -> Obj:
    [found] = [c for c in pod_spec(deployment)["containers"] if c["name"] == name]
    return found


def env_of(container_spec: Obj) -> dict[str, str]:
    """A container's literal environment (``value`` entries)."""
    return {e["name"]: e["value"] for e in container_spec.get("env", []) if "value" in e}
