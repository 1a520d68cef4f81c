"""Checkers for notebook 08 (what each stream attends to)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from hartutor.course import exercise
from hartutor.exercises._common import as_mapping, as_number, close


def _stream_clip(model: Any, inputs: Mapping[str, torch.Tensor], stream: str) -> torch.Tensor:
    video = inputs["video"]
    x = model.stream_input(stream, video[None] if video.dim() == 4 else video)
    return x["video"] if isinstance(x, dict) else x


@exercise(
    "08-ig-completeness",
    "Give score(clip) - score(all-zero baseline) for the I3D stream's logit of the target: "
    "what Integrated Gradients' attributions should add up to.",
)
def _completeness(
    answer: object, *, model: Any, inputs: Mapping[str, torch.Tensor], target: int
) -> str | None:
    value = as_number(answer, "The difference of scores")
    if isinstance(value, str):
        return value
    x = _stream_clip(model, inputs, "i3d")
    stream = model.streams["i3d"].eval()
    with torch.no_grad():
        score = float(stream(x)[0, target])
        baseline = float(stream(torch.zeros_like(x))[0, target])
    if close(value, score - baseline, rel=1e-4):
        return None
    if close(value, score, rel=1e-4):
        return "That is the clip's score alone; subtract the score of the all-zero baseline."
    if close(value, baseline - score, rel=1e-4):
        return "The sign is reversed: score(clip) minus score(baseline)."
    return (
        "Run model.streams['i3d'] on its input (ig.inputs['video'][None]) and on "
        "torch.zeros_like of it, and subtract the two logits of the target class."
    )


_CONTROLS: dict[tuple[int, int], dict[str, float]] = {}


def motion_and_hump(model: Any, seeds: tuple[int, ...] = (0, 1)) -> dict[str, float]:
    """Mean correlation of the I3D stream's Saliency curve with the motion and with the centre
    hump, over the reversal-pair classes and ``seeds`` (clips without camera motion)."""
    from hartutor.explain import centre_hump, curve_correlation, explain, motion_per_frame
    from hartutor.synth import REVERSAL_PAIRS, render_clip
    from hartutor.widgets import Clip, clip_inputs

    key = (id(model), hash(seeds))
    if key not in _CONTROLS:
        spec = model.input_spec
        hump = centre_hump(spec.num_frames)
        motion, centre = [], []
        for action in [name for pair in REVERSAL_PAIRS for name in pair]:
            for seed in seeds:
                clip = render_clip(
                    action,
                    seed,
                    num_frames=spec.num_frames,
                    size=spec.size,
                    with_flow=True,
                    camera_motion=False,
                )
                x = clip_inputs(model, Clip(action, clip.frames))
                a = explain(model, x, target=clip.label, method="saliency", stream="i3d")
                motion.append(curve_correlation(a, motion_per_frame(clip.flow)))
                centre.append(curve_correlation(a, hump))
        _CONTROLS[key] = {"motion": float(np.mean(motion)), "hump": float(np.mean(centre))}
    return _CONTROLS[key]


@exercise(
    "08-motion-or-hump",
    "Over the 12 clips of the reversal-pair classes (seeds 0 and 1), give the I3D stream's mean "
    "Saliency correlation with the motion and with the centre hump: {'motion': ..., 'hump': ...}.",
)
def _motion_or_hump(answer: object, *, model: Any) -> str | None:
    values = as_mapping(answer, ("motion", "hump"), "Your answer")
    if isinstance(values, str):
        return values
    truth = motion_and_hump(model)
    if all(abs(values[k] - truth[k]) < 1e-3 for k in truth):
        return None
    if (
        abs(values["motion"] - truth["hump"]) < 1e-3
        and abs(values["hump"] - truth["motion"]) < 1e-3
    ):
        return "You swapped the two correlations."
    wrong = [k for k in truth if abs(values[k] - truth[k]) >= 1e-3]
    return (
        f"{wrong} differ. For each clip (render_clip(action, seed, with_flow=True, "
        "camera_motion=False)), explain the I3D stream with Saliency and take curve_correlation "
        "with motion_per_frame(clip.flow) and with centre_hump(16); average over the 12 clips."
    )


@exercise(
    "08-weighted-share",
    "Predict I3D's share of the fused score with weights 3 (I3D) : 1 (Xception) from the two "
    "streams' probabilities of the target.",
)
def _weighted(
    answer: object, *, model: Any, inputs: Mapping[str, torch.Tensor], target: int
) -> str | None:
    value = as_number(answer, "The share")
    if isinstance(value, str):
        return value
    video = inputs["video"]
    with torch.no_grad():
        logits = model.forward_features(video[None] if video.dim() == 4 else video)
    p = {name: float(z.softmax(-1)[0, target]) for name, z in logits.items()}
    truth = 3 * p["i3d"] / (3 * p["i3d"] + p["xception"])
    if close(value, truth, rel=1e-4):
        return None
    if close(value / 100, truth, rel=1e-4):
        return "Give the share as a fraction, not in percent."
    if close(value, p["i3d"] / (p["i3d"] + p["xception"]), rel=1e-4):
        return "That is the share with equal weights; weigh I3D's probability 3 times."
    if close(value, 0.75, rel=1e-4):
        return (
            "3 / (3 + 1) is the weight's share, not the score's: weigh each stream's probability."
        )
    return (
        "A stream's share is w_s p_s / (w_i3d p_i3d + w_x p_x), with p the softmax "
        "probability of the target."
    )


def object_mass_truth(model: Any, class_names: list[str]) -> dict[str, float]:
    """The frame stream's IG mass and enrichment on the object of the world's ``drink`` clip of
    seed 0, and the temporal stream's enrichment (what a wrong answer may have used)."""
    from hartutor import transfer

    rows = transfer.region_masses(
        model,
        class_names,
        ["drink"],
        (0,),
        method="integrated_gradients",
        n_steps=16,
        still=False,
        memory_budget_mb=150,
    )
    by = {r.stream: r for r in rows}
    return {
        "enrichment": by["frame"].enrichment("object"),
        "mass": by["frame"].mass("object"),
        "area": by["frame"].area("object"),
        "temporal": by["temporal"].enrichment("object"),
    }


@exercise(
    "08-object-mass",
    "Give the frame stream's enrichment on the held object (mass / area) for the transfer "
    "world's drink clip of seed 0, with Integrated Gradients (n_steps=16).",
)
def _object_mass(answer: object, *, model: Any, class_names: list[str]) -> str | None:
    value = as_number(answer, "The enrichment")
    if isinstance(value, str):
        return value
    truth = object_mass_truth(model, list(class_names))
    if close(value, truth["enrichment"], rel=2e-3):
        return None
    if close(value, truth["mass"], rel=2e-3) or close(value / 100, truth["mass"], rel=2e-3):
        return "That is the mass alone; divide it by the object's area (the mask's mean)."
    if close(value, truth["area"], rel=2e-3):
        return "That is the object's area; the enrichment is the mass on it divided by it."
    if close(value, truth["temporal"], rel=2e-3):
        return "That is the temporal stream's; explain the frame stream (stream='frame')."
    return (
        "Explain the frame stream's score of 'drink' with Integrated Gradients (n_steps=16), "
        "take transfer.mass_on(a.reduced(), mask) with mask = transfer.stream_mask('frame', "
        "object_mask(clip)), and divide by float(mask.mean())."
    )
