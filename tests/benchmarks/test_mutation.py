"""The pure parts of benchmarks/mutation.py (its runs are a tool, not a test): the mutation
config, the equivalent-mutant check, the re-scoring, the report."""

from __future__ import annotations

from pathlib import Path

from benchmarks.mutation import Equivalent, _changed_line, load_config, mutmut_section, render_markdown, rescore

DIFF = """--- bridge/limits.py
+++ bridge/limits.py
@@ -1,4 +1,4 @@
 def f(self) -> None:
-    self.closing = False
+    self.closing = None
"""


def test_every_listed_module_and_test_file_exists() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config()
    assert config.target_percent == 90 and config.property_examples >= 1
    for module, tests in config.modules.items():
        assert (root / module).is_file(), module
        assert tests and all((root / t).is_file() for t in tests), tests
    for equivalent in config.equivalents:
        assert equivalent.mutant.startswith("bridge.") and equivalent.changed and equivalent.reason
        assert any(equivalent.mutant.startswith(m[:-3].replace("/", ".") + ".") for m in config.modules), equivalent


def test_the_changed_line_and_the_mutmut_section() -> None:
    assert _changed_line(DIFF) == "self.closing = None"
    section = mutmut_section("bridge/limits.py", ["tests/test_limits.py"])
    assert 'source_paths = ["bridge/limits.py"]' in section
    assert 'pytest_add_cli_args_test_selection = ["tests/test_limits.py"]' in section


def module(survivors: list[dict]) -> dict:
    return {
        "module": "bridge/limits.py", "tests": ["tests/test_limits.py"], "mutants": 10, "killed": 9,
        "survived": len(survivors), "equivalent": 0, "skipped": 0, "seconds": 1.0, "survivors": survivors,
        "equivalents": [], "stale_equivalents": [], "error": None, "score": None, "stopped": False,
    }


def test_rescore_leaves_out_a_matching_equivalent_and_flags_a_stale_one() -> None:
    survivor = {"mutant": "bridge.limits.x_f__mutmut_1", "status": "survived", "diff": DIFF}
    payload = {"date": "d", "mutmut": "3", "machine": "m", "target_percent": 90, "modules": [module([survivor])]}
    same = Equivalent("bridge.limits.x_f__mutmut_1", "self.closing = None", "falsy")
    scored = rescore(payload, [same])["modules"][0]
    assert (scored["killed"], scored["survived"], scored["equivalent"], scored["score"]) == (9, 0, 1, 100.0)
    moved = Equivalent("bridge.limits.x_f__mutmut_1", "self.closing = 0", "falsy")
    payload["modules"] = [module([survivor])]
    scored = rescore(payload, [moved])["modules"][0]
    assert scored["survived"] == 1 and scored["stale_equivalents"] == ["bridge.limits.x_f__mutmut_1"]
    assert scored["score"] == 90.0
    text = render_markdown(payload)
    assert "| `bridge/limits.py` | `tests/test_limits.py` | 10 | 9 | 1 | 0 | 0 | 90.0 % |" in text
    assert "re-judge them" in text and "self.closing = None" in text
