"""Checkers for notebook 02 (LRCN)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_mapping, as_numbers


def frame_influence(model: torch.nn.Module, clip: torch.Tensor, noise: torch.Tensor) -> list[float]:
    """For each frame ``t``: the largest change of the scores when only frame ``t`` of ``clip``
    is replaced by the same frame of ``noise``, computed in float64 to keep rounding small."""
    model = copy.deepcopy(model).double().eval()
    x = clip.double()
    changes = []
    with torch.no_grad():
        reference = model(x)
        for t in range(x.shape[2]):
            y = x.clone()
            y[:, :, t] = noise.double()[:, :, t]
            changes.append(float((model(y) - reference).abs().max()))
    return changes


@exercise(
    "02-frame-influence",
    "For each frame t, the largest change of the last-step scores when only frame t is replaced "
    "by noise (in float64): a list of T numbers.",
)
def _influence(
    answer: object, *, model: torch.nn.Module, clip: torch.Tensor, noise: torch.Tensor
) -> str | None:
    truth = frame_influence(model, clip, noise)
    values = as_numbers(answer, len(truth), "The influence")
    if isinstance(values, str):
        return values
    if all(
        abs(v - t) <= 1e-6 * max(abs(t), 1e-12) + 1e-12 for v, t in zip(values, truth, strict=True)
    ):
        return None
    if all(abs(v - t) <= 1e-3 * abs(t) for v, t in zip(values[::-1], truth, strict=True)):
        return "Your list runs backwards: entry t is for frame t, from the first frame to the last."
    if all(abs(v - t) <= 1e-3 * abs(t) + 1e-7 for v, t in zip(values, truth, strict=True)):
        return (
            "Close, but computed in float32: there, changes near 1e-7 are rounding. Use "
            "last.double() and x.double(), noise.double()."
        )
    return (
        "Not the influence of each frame. For each t, copy x, replace frame t (y[:, :, t] = "
        "noise[:, :, t]) and take the largest |last(y) - last(x)|, in float64."
    )


@exercise(
    "02-within-pair-reversed",
    "Give LRCN's mean within-pair accuracy on the original and on the reversed clips: "
    "{'original': ..., 'reversed': ...} as fractions.",
)
def _within_reversed(answer: object, *, diagnostics: Any) -> str | None:
    from hartutor.exercises.nb01 import mean_within_pair

    values = as_mapping(answer, ("original", "reversed"), "Your answer")
    if isinstance(values, str):
        return values
    truth = {k: mean_within_pair(diagnostics.results[k]) for k in ("original", "reversed")}
    if all(abs(values[k] - truth[k]) < 1e-6 for k in truth):
        return None
    if all(abs(values[k] / 100 - truth[k]) < 1e-6 for k in truth):
        return "Give fractions (0.5 for 50%), not percents."
    if isinstance(answer, Mapping) and abs(values["original"] - truth["reversed"]) < 1e-6:
        return "You swapped the two conditions."
    return (
        "Use pair_report(diagnostics.results[condition], REVERSAL_PAIRS) for each condition and "
        "average within_pair_accuracy over the three pairs."
    )
