"""Checkers for notebook 03 (two streams and optical flow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hartutor.course import exercise
from hartutor.exercises._common import as_mapping, as_number, as_numbers, as_pair, close


def backward_forward_gap(seed: int, k: int = 5, *, on_figure: bool = True) -> float:
    """Mean ``|backward + forward|`` (px) for stand_up's flow ``k`` and sit_down's matching one."""
    from hartutor.synth import render_clip

    sit = render_clip("sit_down", seed=seed, with_flow=True)
    stand = render_clip("stand_up", seed=seed, with_flow=True)
    last = len(sit.frames) - 1
    total = np.abs(stand.flow[:, k] + sit.flow[:, last - 1 - k])
    if not on_figure:
        return float(total.mean())
    mask = (sit.parts[last - k] >= 0) & (sit.parts[last - 1 - k] >= 0)
    return float(total[:, mask].mean())


@exercise(
    "03-backward-flow",
    "Give the mean |backward + forward| flow (px) on the figure's pixels for stand_up's frame "
    "pair k=5 and the matching pair of sit_down.",
)
def _backward(answer: object, *, seed: int = 0) -> str | None:
    value = as_number(answer, "The gap")
    if isinstance(value, str):
        return value
    if close(value, backward_forward_gap(seed), rel=1e-3):
        return None
    if close(value, backward_forward_gap(seed, on_figure=False), rel=1e-3):
        return (
            "You averaged over every pixel, mostly background; keep the pixels on the figure "
            "in both frames (parts >= 0)."
        )
    if value == 0:
        return (
            "Compute it rather than assume it: forward and backward flow are defined on "
            "different pixels."
        )
    return (
        "stand_up's pair (k, k+1) is sit_down's pair (T-2-k, T-1-k) played backwards: add "
        "stand.flow[:, k] and sit.flow[:, T-2-k] and average |sum| on the figure's pixels."
    )


@exercise(
    "03-dis-vs-tvl1",
    "Give (speed-up of DIS over TV-L1, DIS's end-point error / TV-L1's) from the table of "
    "section 1, over all pixels.",
)
def _dis(answer: object, *, scores: Sequence[Any]) -> str | None:
    by = {s.method: s for s in scores}
    speedup = by["dis"].frames_per_second / by["tvl1"].frames_per_second
    ratio = by["dis"].epe / by["tvl1"].epe
    values = as_pair(answer, "speed-up, error ratio")
    if isinstance(values, str):
        return values
    s, r = values
    if close(s, speedup, rel=1e-3) and close(r, ratio, rel=1e-3):
        return None
    if close(s, 1 / speedup, rel=1e-3):
        return "Your speed-up is inverted: divide DIS's flow fields per second by TV-L1's."
    if close(r, 1 / ratio, rel=1e-3):
        return "Your error ratio is inverted: divide DIS's end-point error by TV-L1's."
    if close(r, by["dis"].epe_figure / by["tvl1"].epe_figure, rel=1e-3):
        return (
            "That error ratio is on the figure's pixels; the question asks over all pixels (epe)."
        )
    return "Read frames_per_second and epe of the 'dis' and 'tvl1' rows of `scores`."


_TEMPORAL: dict[tuple[int, int], dict[str, float]] = {}


def temporal_perturbations(model: Any, data: Any, seed: int) -> dict[str, float]:
    """Top-1 of the temporal stream alone on original, reversed and shuffled clips (cached)."""
    from hartutor.diagnostics import reverse_batch, shuffle_batch
    from hartutor.train import evaluate

    key = (id(model), id(data))
    if key not in _TEMPORAL:
        transforms = (("original", None), ("reversed", reverse_batch))
        transforms += (("shuffled", shuffle_batch(seed)),)
        _TEMPORAL[key] = {
            name: evaluate(
                model.streams["temporal"],
                data,
                batch_size=16,
                batch_transform=transform,
                progress=False,
            ).top1
            for name, transform in transforms
        }
    return _TEMPORAL[key]


@exercise(
    "03-temporal-perturbations",
    "Give the temporal stream's own top-1 on original, reversed and shuffled clips: "
    "{'original': ..., 'reversed': ..., 'shuffled': ...} as fractions.",
)
def _temporal(answer: object, *, model: Any, data: Any, seed: int = 0) -> str | None:
    keys = ("original", "reversed", "shuffled")
    values = as_mapping(answer, keys, "Your answer")
    if isinstance(values, str):
        return values
    truth = temporal_perturbations(model, data, seed)
    if all(abs(values[k] - truth[k]) < 1e-6 for k in keys):
        return None
    if all(abs(values[k] / 100 - truth[k]) < 1e-6 for k in keys):
        return "Give fractions (0.5 for 50%), not percents."
    wrong = [k for k in keys if abs(values[k] - truth[k]) >= 1e-6]
    return (
        f"{wrong} differ from the temporal stream's own scores: evaluate model.streams['temporal'] "
        f"on the same clips, with batch_transform=reverse_batch or shuffle_batch({seed})."
    )


@exercise(
    "03-tsn-test-frames",
    "Give the frame indices (from 0) TSN scores at test time in a clip of num_frames frames "
    "cut into num_segments segments.",
)
def _tsn_frames(answer: object, *, num_frames: int = 16, num_segments: int = 5) -> str | None:
    from hartutor.models.tsn import segment_starts

    values = as_numbers(answer, num_segments, "Your answer")
    if isinstance(values, str):
        return values.replace("one per frame", "one per segment")
    truth = segment_starts(num_frames, num_segments).tolist()
    if [int(v) for v in values] == truth and all(float(v).is_integer() for v in values):
        return None
    firsts = [int(k * num_frames / num_segments) for k in range(num_segments)]
    if [int(v) for v in values] == firsts:
        return "Those are the segments' first frames; at test time TSN takes each segment's centre."
    if [int(v) - 1 for v in values] == truth:
        return "Count frames from 0, as Python indexes them."
    return (
        f"Cut {num_frames} frames into {num_segments} equal segments (each "
        f"{num_frames / num_segments:g} frames long) and take the frame at each segment's centre, "
        "rounded down."
    )


def fusion_layer_parameters(method: str, *, preset: str = "tiny") -> int:
    """Parameters a fusion ``method`` adds to the sum fusion of the same streams."""
    import torch

    from hartutor.models import build_model
    from hartutor.params import count_parameters

    with torch.device("meta"):
        counts = [
            count_parameters(build_model("conv_fusion", preset=preset, method=m))
            for m in (method, "sum")
        ]
    return counts[0] - counts[1]


@exercise(
    "03-fusion-params",
    "Give the number of parameters the 3D-conv fusion layer adds to sum fusion on the tiny "
    "streams (C channels at conv5).",
)
def _fusion_params(answer: object, *, channels: int = 64) -> str | None:
    value = as_number(answer, "The parameter count")
    if isinstance(value, str):
        return value
    truth = fusion_layer_parameters("conv3d")
    if value == truth:
        return None
    c = channels
    if value == 27 * c * c + c:
        return "The fusion convolution reads both streams' maps stacked: 2C input channels, not C."
    if value == 2 * c * c + c:
        return "That is the 1x1 concatenation fusion; the 3D one has 3x3x3 taps per weight."
    if value == 27 * 2 * c * c:
        return "Almost: the convolution has a bias too, one per output channel."
    return (
        "A 3x3x3 convolution from 2C to C channels: count its weights (out x in x taps) and its "
        "biases, or compare count_parameters of the conv3d and sum models."
    )


def tvl1_seconds_per_second(rates: Sequence[Any], fps: float = 25.0) -> float:
    """Seconds of one core per second of ``fps`` video for TV-L1 at 224x224."""
    rate = next(r for r in rates if r.method == "tvl1" and tuple(r.size) == (224, 224))
    return fps / rate.fields_per_second


@exercise(
    "03-flow-budget",
    "Give the seconds of one CPU core TV-L1 needs per second of 25 fps video at 224x224, from "
    "the rates measured in the notebook.",
)
def _flow_budget(answer: object, *, rates: Sequence[Any]) -> str | None:
    value = as_number(answer, "The time")
    if isinstance(value, str):
        return value
    truth = tvl1_seconds_per_second(rates)
    if close(value, truth, rel=1e-3):
        return None
    if close(value, 1 / truth, rel=1e-3):
        return "Inverted: that is video seconds per second of computation; divide 25 by the rate."
    small = [r for r in rates if r.method == "tvl1" and tuple(r.size) != (224, 224)]
    if any(close(value, 25 / r.fields_per_second, rel=1e-3) for r in small):
        return "That is the tiny frame size; use the 224x224 row, the networks' input size."
    if close(value, truth / 25, rel=1e-3):
        return "That is the time per flow field; a second of video needs 25 of them."
    return "25 fields per second of video, divided by TV-L1's fields per second at 224x224."
