"""Checkers of notebook 07b (the transfer world: pretraining, Table 1 for real, the fusion per
family of classes)."""

from __future__ import annotations

from typing import Any

from hartutor.course import exercise
from hartutor.exercises._common import as_number


@exercise(
    "07b-appearance-gap",
    "Give, in percentage points, how much better the frame stream scores than the temporal "
    "stream on the appearance-defined test clips (negative if it scores worse).",
)
def _appearance_gap(answer: Any, *, report: Any = None) -> str | None:
    if report is None:
        return "run the cells of 'The fusion, family by family' first: the check needs `report`."
    value = as_number(answer, "The gap")
    if isinstance(value, str):
        return value
    truth = 100.0 * (
        report.accuracy("frame", "appearance") - report.accuracy("temporal", "appearance")
    )
    if abs(value - truth) <= 0.05:
        return None
    if abs(100.0 * value - truth) <= 0.05:
        return "that is a fraction; give percentage points (multiply by 100)."
    if abs(value + truth) <= 0.05:
        return "the sign is reversed: frame stream minus temporal stream."
    return (
        "use report.accuracy(stream, family) for the two streams on the 'appearance' family "
        "and subtract them."
    )
