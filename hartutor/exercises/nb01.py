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


def unseen_frames(model: Any) -> list[int]:
    """Frames of a clip no unit of a Karpathy network's fc6 sees (their values cannot matter)."""
    seen = {f for unit in model.temporal_views()["fc6"] for f in unit}
    return [f for f in range(model.layout.num_frames) if f not in seen]


@exercise(
    "01-late-blind",
    "Give the list of frame indices of a 16-frame clip that the tiny late-fusion network's "
    "scores do not depend on.",
)
def _late_blind(answer: object, *, model: Any) -> str | None:
    if hasattr(answer, "tolist"):
        answer = answer.tolist()
    if isinstance(answer, str) or not isinstance(answer, list | tuple | set | range):
        return f"Give a list of frame indices (ints), got {type(answer).__name__}."
    try:
        given = sorted({int(f) for f in answer})
    except (TypeError, ValueError):
        return "Every entry should be a frame index (an int from 0 to 15)."
    truth = unseen_frames(model)
    seen = sorted(set(range(model.layout.num_frames)) - set(truth))
    if given == truth:
        return None
    if given == seen:
        return (
            "Those are the frames it does see. List the others: changing them leaves "
            "model(x) as it is."
        )
    if not given:
        return (
            "Some frames never reach it: change one frame of x at a time (x[:, :, t]) and "
            "compare model(x) before and after."
        )
    wrong = sorted(set(given) & set(seen))
    if wrong:
        return (
            f"Changing frame {wrong[0]} does change the scores; test each frame by perturbing it."
        )
    return "Some frames are missing from your list: perturb each of the 16 frames in turn."
