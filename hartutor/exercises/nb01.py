"""Checkers for notebook 01 (the single-frame CNN)."""

from __future__ import annotations

from typing import Any

import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_number, close


def _reversal_gap(model: torch.nn.Module, clip: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(clip) - model(clip.flip(2))).abs().max())


@exercise(
    "01-reversal-gap",
    "Give the largest absolute difference between the model's scores for the clip x and for x "
    "played backwards.",
)
def _reversal(answer: object, *, model: torch.nn.Module, clip: torch.Tensor) -> str | None:
    value = as_number(answer, "The difference")
    if isinstance(value, str):
        return value
    truth = _reversal_gap(model, clip)
    if close(value, truth, rel=1e-2, abs_=1e-6):
        return None
    if value > 1e-3:
        return (
            "That is far too large for this model. Reverse the time axis: a clip is "
            "(N, C, T, H, W), so time is dimension 2 (x.flip(2)), and compare model(x) with "
            "model(x.flip(2))."
        )
    return (
        "Compute model(x) and model(x.flip(2)) under torch.no_grad() and take the largest "
        "|difference|."
    )


def mean_within_pair(report: Any) -> float:
    """Mean within-pair accuracy over the synthetic set's reversal pairs."""
    from hartutor.diagnostics import pair_report
    from hartutor.synth import REVERSAL_PAIRS

    pairs = pair_report(report, REVERSAL_PAIRS)
    return sum(p.within_pair_accuracy for p in pairs) / len(pairs)


@exercise(
    "01-within-pair",
    "Give the mean within-pair accuracy over the three reversal pairs, as a fraction.",
)
def _within_pair(answer: object, *, report: Any) -> str | None:
    value = as_number(answer, "The mean within-pair accuracy")
    if isinstance(value, str):
        return value
    truth = mean_within_pair(report)
    if close(value, truth, rel=1e-6):
        return None
    if close(value / 100, truth, rel=1e-6):
        return "Give it as a fraction (0.5 for 50%), not in percent."
    if close(value, report.top1, rel=1e-6):
        return "That is the top-1 over all classes; average p.within_pair_accuracy over `pairs`."
    return "Average the within_pair_accuracy of the three entries of `pairs` (section 4)."
