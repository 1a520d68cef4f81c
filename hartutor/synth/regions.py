"""Where things are in a rendered clip: the held object's pixels and the moving limbs' pixels.

The renderer knows, for every pixel of every frame, which capsule it shows
(:attr:`~hartutor.synth.render.SynthClip.parts`) and, with ``with_flow=True``, how far it moves.
These masks are the ground truth an attribution can be scored against: how much of a stream's
attribution lies on the object, or on the limbs that move, against the share of the frame
those pixels cover (what an attribution spread evenly would give).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hartutor.synth.objects import OBJECT_NAMES
from hartutor.synth.render import SynthClip

#: Mean speed (pixels per frame, at the clip's size) above which a body part counts as moving.
MOVING_SPEED = 0.5


def _is_object_part(name: str) -> bool:
    base, _, index = name.rpartition("_")
    return base in OBJECT_NAMES and index.isdigit()


def _is_body_part(name: str) -> bool:
    return not _is_object_part(name) and not name.startswith("stool_")


def part_mask(clip: SynthClip, names: Iterable[str]) -> np.ndarray:
    """``(T, H, W)`` bool: the pixels showing any capsule named in ``names``."""
    wanted = set(names)
    indices = [i for i, name in enumerate(clip.part_names) if name in wanted]
    return np.isin(clip.parts, np.asarray(indices, dtype=np.int16))


def object_parts(clip: SynthClip) -> tuple[str, ...]:
    """The capsules of the held object (empty when the figure holds nothing)."""
    return tuple(name for name in clip.part_names if _is_object_part(name))


def object_mask(clip: SynthClip) -> np.ndarray:
    """``(T, H, W)`` bool: the held object's pixels in every frame."""
    return part_mask(clip, object_parts(clip))


def part_speeds(clip: SynthClip) -> dict[str, float]:
    """Each body part's mean speed in pixels per frame: its visible pixels' flow speed,
    averaged per frame, then over the frames it is seen in. Needs ``with_flow=True``."""
    if clip.flow is None:
        raise ValueError("part speeds need the clip's flow: render it with with_flow=True")
    speed = np.hypot(clip.flow[0], clip.flow[1])  # (T-1, H, W), at the pixels of frame t
    parts = clip.parts[:-1]
    result = {}
    for index, name in enumerate(clip.part_names):
        if not _is_body_part(name):
            continue
        means = [
            float(speed[t][parts[t] == index].mean())
            for t in range(len(parts))
            if (parts[t] == index).any()
        ]
        result[name] = float(np.mean(means)) if means else 0.0
    return result


def moving_parts(clip: SynthClip, *, min_speed: float = MOVING_SPEED) -> tuple[str, ...]:
    """The body parts (no object, no stool) whose mean speed is at least ``min_speed``
    pixels per frame (:func:`part_speeds`); render the clip without camera motion, so that
    what moves is the figure."""
    return tuple(name for name, v in part_speeds(clip).items() if v >= min_speed)


def limb_mask(clip: SynthClip, parts: Iterable[str] | None = None) -> np.ndarray:
    """``(T, H, W)`` bool: the pixels of ``parts`` (default: :func:`moving_parts`). Pass the
    moving clip's parts to mask the same limbs in its still twin (``still=True``)."""
    return part_mask(clip, moving_parts(clip) if parts is None else parts)
