"""The pure parts of benchmarks/suite_under_load.py (its runs are a tool, not a test): pytest's
closing line counted, and the report."""

from __future__ import annotations

from benchmarks.suite_under_load import parse_counts, render_markdown as render_load


def test_pytest_closing_lines_are_counted() -> None:
    assert parse_counts("...\n===== 3 passed, 1 failed, 2 skipped in 4.50s =====\n") == {
        "passed": 3, "failed": 1, "skipped": 2}
    assert parse_counts("12 passed in 0.91s\n") == {"passed": 12}
    assert parse_counts("no summary") == {}
    payload = {
        "date": "d", "machine": "m", "runs": 2, "burners": 2, "cpus": "0,1", "pytest_args": ["-q"],
        "results": [
            {"passed": True, "exit_code": 0, "counts": {"passed": 3}, "seconds": 5.0, "failed": []},
            {"passed": False, "exit_code": 1, "counts": {"passed": 2, "failed": 1}, "seconds": 6.0,
             "failed": ["tests/test_x.py::test_y"]},
        ],
    }
    text = render_load(payload)
    assert "| 2 | FAIL (exit 1) | 2 passed, 1 failed | 6 s |" in text
    assert "1 of 2 runs passed." in text and "run 2: `tests/test_x.py::test_y`" in text
