"""Checkers for notebook 04 (C3D and the cost of 3D convolutions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_number, as_pair, close


@exercise(
    "04-conv3d-formulas",
    "From your formulas, give (parameters, FLOPs) of C3D's conv2a; they must match its row of "
    "the breakdown.",
)
def _formulas(answer: object, *, rows: Sequence[Any]) -> str | None:
    row = next(r for r in rows if r.name == "conv2a")
    values = as_pair(answer, "parameters, FLOPs")
    if isinstance(values, str):
        return values
    params, flops = values
    problems = []
    c_out = row.output_shape[1]
    if params != row.params:
        if params == row.params - c_out:
            problems.append("your parameter count leaves out the bias (one per output channel)")
        else:
            problems.append("your parameter count is off: k^3 x C_in x C_out weights, plus biases")
    if flops != row.flops:
        if flops * 2 == row.flops:
            problems.append(
                "your FLOPs count multiply-adds; hartutor counts 2 FLOPs per multiply-add"
            )
        else:
            problems.append(
                "your FLOPs are off: 2 x k^3 x C_in x C_out per output position, "
                "times T x H x W positions"
            )
    return "; ".join(problems).capitalize() + "." if problems else None


def _c3d_rows(**kwargs: Any) -> tuple[dict[str, Any], int]:
    from hartutor.models.c3d import C3D
    from hartutor.params import parameter_breakdown

    size = kwargs.get("input_size", (16, 112, 112))
    with torch.device("meta"):
        model = C3D(num_classes=101, **kwargs)
        rows = {r.name: r for r in parameter_breakdown(model, torch.zeros(1, 3, *size))}
    return rows, sum(r.flops for r in rows.values())


@exercise(
    "04-c3d-224",
    "For C3D on 16 frames of 224x224: give {'changed': the names of the layers whose parameter "
    "count changes, 'flops_ratio': total FLOPs at 224 / at 112}.",
)
def _c3d_224(answer: object) -> str | None:
    if not isinstance(answer, Mapping) or {"changed", "flops_ratio"} - set(answer):
        return "Give a dict {'changed': {...}, 'flops_ratio': ...}."
    small, small_flops = _c3d_rows()
    big, big_flops = _c3d_rows(input_size=(16, 224, 224))
    changed = {name for name in small if big[name].params != small[name].params}
    given = answer["changed"]
    if isinstance(given, str) or not isinstance(given, Iterable):
        return "'changed' should be a set of layer names, such as {'conv1'}."
    ratio = as_number(answer["flops_ratio"], "'flops_ratio'")
    if isinstance(ratio, str):
        return ratio
    if set(given) != changed:
        return (
            f"Your set of changed layers {sorted(set(given))} is not right. Compare the params "
            "of every row of parameter_breakdown at both sizes; convolutions do not depend on "
            "the frame size, a layer fed the flattened pool5 map does."
        )
    if not close(ratio, big_flops / small_flops, rel=1e-3):
        if close(ratio, small_flops / big_flops, rel=1e-3):
            return "Your FLOPs ratio is inverted: 224 over 112."
        return "Sum the flops of every row of parameter_breakdown at both sizes and divide."
    return None


@exercise(
    "04-slim-c3d",
    "How many parameters does C3D(num_classes=101, fc_features=1024) have?",
)
def _slim(answer: object) -> str | None:
    from hartutor.models.c3d import C3D
    from hartutor.params import count_parameters

    value = as_number(answer, "The parameter count")
    if isinstance(value, str):
        return value
    with torch.device("meta"):
        slim = count_parameters(C3D(num_classes=101, fc_features=1024))
        full = count_parameters(C3D(num_classes=101))
    if value == slim:
        return None
    if value == full:
        return "That is the original C3D; build it with fc_features=1024."
    if 0 < value < 1:
        return "Give the parameter count itself, not a share of the original."
    return (
        "Build C3D(num_classes=101, fc_features=1024) on the meta device and count_parameters it."
    )


def _t3d_counts() -> dict[str, int]:
    from hartutor.models import build_model
    from hartutor.params import count_parameters

    with torch.device("meta"):
        ttl = build_model("t3d", num_classes=101)
        plain = build_model("t3d", num_classes=101, ttl=False)
    return {
        "t3d": count_parameters(ttl),
        "plain": count_parameters(plain),
        "ttls": sum(count_parameters(m) for m in ttl.transition_layers()),
        "transitions": sum(count_parameters(m) for m in plain.transition_layers()),
    }


@exercise(
    "04-ttl-cost",
    "How many parameters do T3D's Temporal Transition Layers add to DenseNet3D-121 (both at "
    "101 classes, build_model('t3d', ...) with ttl=True and ttl=False)?",
)
def _ttl_cost(answer: object) -> str | None:
    value = as_number(answer, "The parameter count")
    if isinstance(value, str):
        return value
    counts = _t3d_counts()
    extra = counts["t3d"] - counts["plain"]
    if value == extra:
        return None
    if value == -extra:
        return "Your difference has the wrong sign: T3D minus DenseNet3D."
    if value == counts["ttls"]:
        return (
            "That is all the TTLs hold; the plain transitions they replace had parameters too "
            "(a BatchNorm and a 1x1x1 conv each): subtract them."
        )
    if value in (counts["t3d"], counts["plain"]):
        return "That is one network's total; give the difference between the two."
    if 0 < value < 10:
        return "Give the number of parameters added, not a ratio."
    return "Build both on the meta device and subtract their count_parameters."
