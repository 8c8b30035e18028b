"""A report's verdict: the worst finding."""

from __future__ import annotations

from vmsd.function_checks.report import Finding, worst


def test_worst_severity() -> None:
    assert worst([]) == "ok"
    assert worst([Finding("a", "warning", ""), Finding("b", "ok", "")]) == "warning"
    assert worst([Finding("a", "warning", ""), Finding("b", "fail", "")]) == "fail"
