"""tests/support/kube.py: the Python kustomize subset, strategic merge, and their agreement with kubectl."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.kube import KustomizeError, canonical, find, kubectl, kubectl_kustomize, render, strategic_merge

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
        - name: main
          image: app:cpu
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          resources:
            requests: {cpu: "1"}
        - name: sidecar
          image: side:1
      volumes:
        - name: data
          emptyDir: {}
      tolerations:
        - {key: a, operator: Exists}
"""

PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
        - name: main
          image: app:gpu
          env:
            - {name: B, value: "3"}
            - {name: C, value: "4"}
          resources:
            limits: {example.com/gpu: 1}
      volumes:
        - name: data
          emptyDir: null
          persistentVolumeClaim: {claimName: data}
      tolerations:
        - {key: b, operator: Exists}
"""


def test_strategic_merge_merges_named_lists_and_deletes_on_null() -> None:
    import yaml

    merged = strategic_merge(yaml.safe_load(DEPLOYMENT), yaml.safe_load(PATCH))
    spec = merged["spec"]["template"]["spec"]
    main, sidecar = spec["containers"]
    assert main["image"] == "app:gpu" and sidecar == {"name": "sidecar", "image": "side:1"}
    # env merges by name, the patched entries first (as kustomize writes them).
    assert main["env"] == [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}, {"name": "A", "value": "1"}]
    # maps merge key by key
    assert main["resources"] == {"requests": {"cpu": "1"}, "limits": {"example.com/gpu": 1}}
    # null deletes: the volume changes source instead of having two
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    # lists without a merge key are replaced
    assert spec["tolerations"] == [{"key": "b", "operator": "Exists"}]
    # the inputs are not modified
    assert yaml.safe_load(DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]["image"] == "app:cpu"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_tree(
        tmp_path,
        {
            "base/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: demo\n"
                "resources: [ns.yaml, deployment.yaml]\n"
                "secretGenerator:\n  - name: keys\n    envs: [keys.env]\n"
                "generatorOptions: {disableNameSuffixHash: true}\n"
            ),
            "base/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n",
            "base/deployment.yaml": DEPLOYMENT,
            "base/keys.env": "# a comment\nTOKEN=s3cret\nEMPTY=\n",
            "overlay/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: demo\n"
                "resources: [../base, claim.yaml]\npatches:\n  - path: patch.yaml\n"
            ),
            "overlay/claim.yaml": (
                "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n"
                "spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}\n"
            ),
            "overlay/patch.yaml": PATCH,
        },
    )
    return tmp_path


def test_render_resources_namespace_secrets_and_patches(tree: Path) -> None:
    objects = render(tree / "overlay")
    assert sorted(o["kind"] for o in objects) == ["Deployment", "Namespace", "PersistentVolumeClaim", "Secret"]
    assert "namespace" not in find(objects, "Namespace")["metadata"]
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"demo"}
    secret = find(objects, "Secret", "keys")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"TOKEN": "s3cret", "EMPTY": ""}
    deployment = find(objects, "Deployment", "app")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "app:gpu"


@pytest.mark.skipif(kubectl() is None, reason="no kubectl on PATH (its `kubectl kustomize` is the reference)")
def test_render_agrees_with_kubectl_kustomize(tree: Path) -> None:
    for directory in (tree / "base", tree / "overlay"):
        assert canonical(render(directory)) == canonical(kubectl_kustomize(directory))


def test_render_refuses_what_it_does_not_implement(tree: Path) -> None:
    kustomization = tree / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "commonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="unsupported fields.*commonLabels"):
        render(tree / "base")


def test_render_names_the_missing_env_file_and_its_example(tree: Path) -> None:
    (tree / "base" / "keys.env").unlink()
    with pytest.raises(KustomizeError, match=r"keys\.env not found.*keys\.env\.example"):
        render(tree / "overlay")


def test_render_refuses_an_overlay_inside_its_base_as_kustomize_does(tree: Path) -> None:
    """kustomize's cycle rule (`kubectl apply -k` fails on it): an overlay may not live below the
    directory of a kustomization it includes."""
    write_tree(
        tree,
        {
            "base/inner/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [..]\n",
        },
    )
    with pytest.raises(KustomizeError, match="cycle"):
        render(tree / "base" / "inner")
    if kubectl() is not None:
        with pytest.raises(KustomizeError, match="cycle"):
            kubectl_kustomize(tree / "base" / "inner")
