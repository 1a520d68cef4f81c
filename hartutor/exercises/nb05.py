"""Checkers of notebook 05 (I3D, and its pretraining on the transfer world's video source)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from hartutor.course import exercise
from hartutor.models.inflate import inflate_conv2d
from hartutor.models.layers import SamePadConv3d, tf_same_padding


@exercise(
    "05-within-pair",
    "Of the held-out raise_to_face and lower_from_face clips that the source I3D puts in one "
    "of those two classes, give the fraction it puts in the right one.",
)
def _within_pair(
    answer: Any, *, predicted: Any = None, labels: Any = None, names: Any = None
) -> str | None:
    if predicted is None or labels is None or names is None:
        return "run the cells of section 7 first: the check needs predicted, the labels and names."
    pair = [list(names).index("raise_to_face"), list(names).index("lower_from_face")]
    in_pair = [(int(p), int(y)) for p, y in zip(predicted, labels, strict=True) if int(y) in pair]
    landed = [(p, y) for p, y in in_pair if p in pair]
    if not landed:
        return "no clip of the pair was predicted inside the pair; nothing to measure."
    truth = sum(p == y for p, y in landed) / len(landed)
    value = float(answer)
    if abs(value - truth) < 1e-6:
        return None
    if abs(value - 100 * truth) < 1e-4:
        return "give a fraction between 0 and 1, not a percentage."
    every = sum(p == y for p, y in in_pair) / len(in_pair)
    if abs(value - every) < 1e-6:
        return "keep only the clips predicted as one of the two classes before counting."
    return "keep the pair's clips predicted inside the pair, then the share predicted right."


def _as_indices(answer: object, what: str) -> set[int] | str:
    """``answer`` (a set, list or range of whole numbers) as a set of ints, or why it is not."""
    if isinstance(answer, str | bytes) or not isinstance(answer, Iterable):
        return f"Give {what} as a set of whole numbers, such as {{1, 2}}; got {answer!r}."
    values = set()
    for value in answer:
        if isinstance(value, bool) or not float(value).is_integer():
            return f"Give {what} as whole numbers; {value!r} is not one."
        values.add(int(value))
    return values


def _boring(frame: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(N, C, H, W) frame -> (N, C, T, H, W) video of that frame repeated."""
    return frame.unsqueeze(2).expand(-1, -1, num_frames, -1, -1)


def _exact_steps(conv2d: nn.Conv2d, frame: torch.Tensor, *, center: bool) -> set[int]:
    """Time steps at which the inflated layer (zero time padding) equals ``conv2d`` on a boring
    video of 16 copies of ``frame`` (relative to the 2D output's largest value)."""
    layer = inflate_conv2d(conv2d, time_kernel=3, center=center)
    with torch.no_grad():
        out2d = conv2d(frame)
        error = (layer(_boring(frame, 16)) - out2d.unsqueeze(2)).abs().amax(dim=(0, 1, 3, 4))
    return {t for t, e in enumerate((error / out2d.abs().max()).tolist()) if e < 1e-5}


@exercise(
    "05-centre-exact",
    "With center=True and zero time padding, give the set of time steps (0-15) of the boring "
    "video boring(frame, 16) at which the inflated layer equals conv2d on the frame.",
)
def _centre_exact(
    answer: object, *, conv2d: nn.Conv2d | None = None, frame: torch.Tensor | None = None
) -> str | None:
    if conv2d is None or frame is None:
        return "run the cells of section 2 first: the check needs conv2d and frame."
    steps = _as_indices(answer, "the time steps")
    if isinstance(steps, str):
        return steps
    truth = _exact_steps(conv2d, frame, center=True)
    if steps == truth:
        return None
    if any(t < 0 or t > 15 for t in steps):
        return "time steps count from 0: the 16 steps are 0 to 15."
    if steps == _exact_steps(conv2d, frame, center=False):
        return (
            "that is where repeat-and-divide (center=False) is exact. With center=True, look at "
            "which time taps carry weight, and what the padded zero frames meet."
        )
    return (
        "build inflate_conv2d(conv2d, time_kernel=3, center=True), run it on boring(frame, 16) "
        "and compare each time step with conv2d(frame), as per_step_error does in section 2."
    )


def _frames_read(conv2d: nn.Conv2d, *, center: bool, step: int = 8) -> set[int]:
    """Input frames whose values reach output ``step`` of the inflated layer (by autograd)."""
    layer = inflate_conv2d(conv2d, time_kernel=3, center=center)
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(1, conv2d.in_channels, 16, 8, 8, generator=generator, requires_grad=True)
    layer(video)[:, :, step].abs().sum().backward()
    assert video.grad is not None
    reach = video.grad.abs().sum(dim=(0, 1, 3, 4))
    return {t for t, g in enumerate(reach.tolist()) if g > 1e-6 * float(reach.max())}


@exercise(
    "05-centre-reads",
    "Give the set of input frames (0-15) that output step 8 of the centre-initialised layer "
    "depends on: the frames whose change changes it.",
)
def _centre_reads(answer: object, *, conv2d: nn.Conv2d | None = None) -> str | None:
    if conv2d is None:
        return "run the cells of section 2 first: the check needs conv2d."
    frames = _as_indices(answer, "the frames")
    if isinstance(frames, str):
        return frames
    truth = _frames_read(conv2d, center=True)
    if frames == truth:
        return None
    if frames == _frames_read(conv2d, center=False):
        return (
            "that is the window of repeat-and-divide (center=False). With center=True some taps "
            "are zero: print the layer's weight along time (weight[0, 0, :, 1, 1])."
        )
    return (
        "change one input frame at a time (video.clone(), then add 1 to frame t) and see whether "
        "output step 8 of the centred layer changes."
    )


@exercise(
    "05-same-sides",
    "Give the set of frame sides from 200 to 240 (both included) at which TensorFlow's SAME "
    "padding of I3D's 7x7, stride-2 stem equals PyTorch's symmetric padding=3.",
)
def _same_sides(answer: object) -> str | None:
    sides = _as_indices(answer, "the sides")
    if isinstance(sides, str):
        return sides
    every = set(range(200, 241))
    truth = {side for side in every if tf_same_padding(side, 7, 2) == (3, 3)}
    if sides == truth:
        return None
    if sides - every:
        return "give only sides from 200 to 240, both included."
    if sides == every:
        return (
            "the output sizes agree at every side (ceil(side / 2)); the question is whether "
            "SAME pads (3, 3), as padding=3 does."
        )
    wrong = sorted(sides ^ truth)[:2]
    return (
        f"your set is wrong at side(s) {wrong}: print tf_same_padding(side, 7, 2) for them and "
        "for their neighbours, and find the rule."
    )


@exercise(
    "05-stem-exact",
    "With zero time padding, give the set of output time steps of I3D's stem (7 frames, "
    "stride 2, TensorFlow SAME) that equal the 2D output on a boring video of 16 frames.",
)
def _stem_exact(answer: object) -> str | None:
    steps = _as_indices(answer, "the output steps")
    if isinstance(steps, str):
        return steps
    stem = SamePadConv3d(1, 1, kernel_size=(7, 1, 1), stride=(2, 1, 1), bias=False)
    with torch.no_grad():
        stem.weight.fill_(1 / 7)  # a 1x1 kernel inflated to 7 taps: 1 on a boring video of ones
        out = stem(torch.ones(1, 1, 16, 1, 1)).flatten().tolist()
    truth = {j for j, v in enumerate(out) if abs(v - 1) < 1e-6}
    if steps == truth:
        return None
    if any(j < 0 or j >= len(out) for j in steps):
        return (
            f"give output steps, not frames: with stride 2 the 16 frames give {len(out)} "
            f"output steps, 0 to {len(out) - 1}."
        )
    symmetric = {j for j in range(len(out)) if 2 * j - 3 >= 0 and 2 * j - 3 + 6 <= 15}
    if steps == symmetric:
        return (
            "that is PyTorch's symmetric padding (3 frames each side); SAME pads as "
            "tf_same_padding(16, 7, 2) says."
        )
    return (
        "output step j reads the 7 frames from 2*j - pad_before on; it is exact when all 7 lie "
        "inside the clip (frames 0 to 15). Then check with a SamePadConv3d."
    )
