"""Checkers of notebook 06 (Xception, and its pretraining on the transfer world's images)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hartutor.course import exercise
from hartutor.exercises._common import as_flag, as_number, close
from hartutor.params import count_parameters, layer_cost


@exercise(
    "06-images-named",
    "Count the held-out images whose object the image-pretrained Xception names right "
    "(top-1), out of all of them.",
)
def _images_named(answer: Any, *, logits: Any = None, labels: Any = None) -> str | None:
    if logits is None or labels is None:
        return "run the cells of section 6 first: the check needs image_logits and images.labels."
    truth = int((logits.argmax(1) == labels).sum())
    value = float(answer)
    if value == truth:
        return None
    if abs(value - truth / len(labels)) < 1e-6:
        return "that is the fraction; give the number of images."
    if value == len(labels) - truth:
        return "that counts the images it gets wrong."
    return "compare image_logits.argmax(1) with images.labels and count the matches."


#: The three layers of exercise 06-separable-ratio: (C_in, C_out, k).
RATIO_LAYERS = ((32, 64, 3), (728, 728, 3), (256, 512, 5))


def _separable_ratio(c_in: int, c_out: int, k: int) -> float:
    """Parameters of timm's SeparableConv2d / those of a standard k x k Conv2d (19x19 map)."""
    from timm.models.xception import SeparableConv2d

    with torch.device("meta"):
        standard = layer_cost(
            nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), (1, c_in, 19, 19)
        )
        separable = layer_cost(SeparableConv2d(c_in, c_out, k, 1, k // 2), (1, c_in, 19, 19))
    return separable.params / standard.params


@exercise(
    "06-separable-ratio",
    "Give {(C_in, C_out, k): parameters of the separable convolution / parameters of the "
    "standard one} for (32, 64, 3), (728, 728, 3) and (256, 512, 5), measured with layer_cost.",
)
def _ratio(answer: object) -> str | None:
    if not isinstance(answer, Mapping) or set(RATIO_LAYERS) - set(answer):
        return f"Give a dict with the keys {list(RATIO_LAYERS)}, one ratio each."
    for key in RATIO_LAYERS:
        value = as_number(answer[key], f"The ratio of {key}")
        if isinstance(value, str):
            return value
        truth = _separable_ratio(*key)
        if close(value, truth, rel=1e-4):
            continue
        _, c_out, k = key
        if close(value, 1 / truth, rel=1e-4):
            return f"for {key} you gave standard / separable; give separable / standard."
        if close(value, 100 * truth, rel=1e-4):
            return f"for {key} give a fraction of the standard count, not a percentage."
        if close(value, 1 / k**2, rel=1e-4):
            return f"for {key} you counted only the pointwise 1x1 part; add the depthwise one."
        if close(value, 1 / c_out, rel=1e-4):
            return f"for {key} you counted only the depthwise part; add the pointwise 1x1 one."
        return (
            f"the ratio of {key} is off: build both layers on the meta device and divide the "
            "params of their layer_cost rows."
        )
    return None


def _separables(model: nn.Module) -> list[nn.Module]:
    from timm.models.xception import SeparableConv2d

    return [m for m in model.modules() if isinstance(m, SeparableConv2d)]


def _standard_weights(separable: nn.Module) -> int:
    """Weights of a standard convolution with the separable one's kernel and channels."""
    kh, kw = separable.conv1.kernel_size
    return kh * kw * separable.conv1.in_channels * separable.pointwise.out_channels


@exercise(
    "06-standard-count",
    "Give the parameter count Xception would have if every SeparableConv2d were a standard "
    "k x k convolution (no bias) with the same input and output channels.",
)
def _standard_count(answer: object, *, model: nn.Module | None = None) -> str | None:
    if model is None:
        return "run the cells of section 3 first: the check needs the xception model."
    value = as_number(answer, "The parameter count")
    if isinstance(value, str):
        return value
    separables = _separables(model)
    if not separables:
        return "pass the model with model=xception (timm's legacy_xception of section 3)."
    real = count_parameters(model)
    as_separable = sum(count_parameters(m) for m in separables)
    as_standard = sum(_standard_weights(m) for m in separables)
    truth = real - as_separable + as_standard
    if value == truth:
        return None
    if close(value, truth / real, rel=1e-3):
        return "that is the ratio to the real count; give the parameter count."
    if value == real:
        return "that is Xception's real count, separable convolutions and all."
    if value == as_standard:
        return (
            "that counts only the standard convolutions; the rest of the network (the two plain "
            "convolutions, BatchNorms, shortcuts, classifier) stays."
        )
    if value == real + as_standard:
        return "you added the standard convolutions but kept the separable ones they replace."
    if value == truth + sum(m.pointwise.out_channels for m in separables):
        return "the separable convolutions have no bias: count the standard ones without it too."
    return (
        "for every SeparableConv2d, subtract its parameters and add k x k x C_in x C_out "
        "(C_in of its conv1, C_out of its pointwise)."
    )


@exercise(
    "06-any-order",
    "With consensus='logit_mean', does the tiny Xception give the same scores for a clip and "
    "for every permutation of its frames? Give True or False.",
)
def _any_order(
    answer: object, *, model: nn.Module | None = None, clip: torch.Tensor | None = None
) -> str | None:
    if model is None or clip is None:
        return "run the cells of section 4 first: the check needs model=tiny and a clip."
    flag = as_flag(answer, "The answer")
    if isinstance(flag, str):
        return flag
    kept = model.consensus
    generator = torch.Generator().manual_seed(0)
    try:
        model.consensus = "logit_mean"
        with torch.no_grad():
            reference = model(clip)
            truth = all(
                torch.allclose(
                    model(clip[:, :, torch.randperm(clip.shape[2], generator=generator)]),
                    reference,
                    atol=1e-5,
                )
                for _ in range(3)
            )
    finally:
        model.consensus = kept
    if flag == truth:
        return None
    return (
        "try it: set tiny.consensus = 'logit_mean', compare tiny(clip) with "
        "tiny(clip[:, :, torch.randperm(clip.shape[2])]) for a few orders, then set it back."
    )
