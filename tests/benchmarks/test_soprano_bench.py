"""benchmarks/soprano_bench.py's device handling and rendering (never a measured number).

A result must say which device produced it: a GPU run must not claim "No GPU was
available", and results written before ``--device`` existed (all CPU runs, no ``device``
key) must still render as they did.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from benchmarks import soprano_bench as bench  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
COMMITTED = RESULTS / "2026-11-22-soprano.json"
NO_GPU = "No GPU was available"


def committed() -> dict:
    return json.loads(COMMITTED.read_text())


def test_results_from_before_device_render_as_committed() -> None:
    result = committed()
    assert "device" not in result["environment"]  # written before --device existed
    rendered = bench.markdown(result)
    # The committed Markdown is the rendered table plus hand-written notes after it.
    assert COMMITTED.with_suffix(".md").read_text().startswith(rendered)
    assert NO_GPU in rendered
    assert bench.device_label(result["environment"]) == "CPU"


def test_render_option_prints_an_earlier_result(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["soprano_bench.py", "--render", str(COMMITTED)])
    bench.main()
    assert capsys.readouterr().out.strip() == bench.markdown(committed()).strip()


def test_gpu_results_name_the_gpu_and_never_say_no_gpu() -> None:
    result = copy.deepcopy(committed())
    result["environment"].update(device="cuda", gpu="NVIDIA H200", cuda_available=True)
    rendered = bench.markdown(result)
    assert NO_GPU not in rendered and "every figure is CPU" not in rendered
    assert "NVIDIA H200" in rendered and "(cuda)" in rendered
    assert bench.device_label(result["environment"]) == "NVIDIA H200"


def test_cpu_run_on_a_gpu_machine_says_so() -> None:
    result = copy.deepcopy(committed())
    result["environment"].update(device="cpu", gpu=None, cuda_available=True)
    rendered = bench.markdown(result)
    assert NO_GPU not in rendered
    assert "although a GPU was available" in rendered


def test_auto_picks_cuda_only_when_torch_sees_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bench.resolve_device("auto") == "cuda"
    assert bench.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.resolve_device("auto") == "cpu"
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        bench.resolve_device("cuda")  # not a silent CPU run labelled as GPU


def test_device_environment_records_the_gpu_name(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert bench.device_environment("cuda") == {"device": "cuda", "gpu": "NVIDIA H200", "cuda_available": True}
    assert bench.device_environment("cpu") == {"device": "cpu", "gpu": None, "cuda_available": True}
