"""Objects a figure can hold: capsule drawings small enough that only a sharp frame shows them.

Each object is a few capsules in the frame of the near hand: the object's axis is the forearm's
direction (elbow to hand) turned by the object's own angle plus a random tilt, and every part is
placed along that axis (``along``) and across it (``across``), in body heights. Parts are drawn
in the object's main colour (0) or its second colour (1); both are drawn at random for every
clip from the *same* distribution for every object, so colour never names the object, only its
shape does. At 96x96 (a body about 60 pixels tall) a toothbrush, a cup and a phone are
distinct shapes several pixels across; reduced to 32x32 they become blobs of two or three
pixels. That is what makes the appearance-defined classes need the frame stream's resolution.

The drawing keeps the renderer's exact flow: every part is a capsule that moves rigidly with the
hand, so the flow of its pixels is computed like any body part's.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from hartutor.synth.skeleton import Segments


@dataclass(frozen=True)
class Part:
    """One capsule of an object, in body heights in the object's frame."""

    along: float  # start, along the object axis
    across: float  # start, across it
    angle: float  # direction in degrees relative to the object axis
    length: float
    radius: float
    colour: int  # 0: main colour, 1: second colour


@dataclass(frozen=True)
class HeldObject:
    """An object's drawing and how it sits in the hand."""

    name: str
    description: str
    angle: float  # object axis relative to the forearm, degrees
    parts: tuple[Part, ...]


_OBJECTS: tuple[HeldObject, ...] = (
    HeldObject(
        "toothbrush",
        "a thin handle with a short bristle head across its tip",
        80.0,
        (Part(-0.02, 0.0, 0.0, 0.13, 0.007, 0), Part(0.10, -0.005, 90.0, 0.02, 0.011, 1)),
    ),
    HeldObject(
        "cup",
        "a short, wide body with a band around it",
        80.0,
        (Part(-0.01, 0.0, 0.0, 0.04, 0.027, 0), Part(0.015, -0.026, 90.0, 0.052, 0.006, 1)),
    ),
    HeldObject(
        "phone",
        "a flat slab with a screen inset along it",
        10.0,
        (Part(-0.01, 0.0, 0.0, 0.075, 0.02, 0), Part(0.0, 0.0, 0.0, 0.055, 0.01, 1)),
    ),
    HeldObject(
        "ball",
        "a round ball with a seam",
        0.0,
        (Part(0.035, 0.0, 0.0, 0.0, 0.035, 0), Part(0.035, -0.028, 90.0, 0.056, 0.005, 1)),
    ),
    HeldObject(
        "book",
        "a wide block with a row of pages along one side",
        0.0,
        (Part(0.0, 0.0, 0.0, 0.05, 0.035, 0), Part(0.0, 0.03, 0.0, 0.05, 0.008, 1)),
    ),
    HeldObject(
        "bottle",
        "a long body and a narrow neck",
        80.0,
        (Part(-0.02, 0.0, 0.0, 0.08, 0.018, 0), Part(0.07, 0.0, 0.0, 0.035, 0.007, 1)),
    ),
    HeldObject(
        "hammer",
        "a handle with a heavy head across its end",
        80.0,
        (Part(-0.02, 0.0, 0.0, 0.13, 0.008, 0), Part(0.11, -0.03, 90.0, 0.06, 0.015, 1)),
    ),
    HeldObject(
        "racket",
        "a short handle and a large round head",
        10.0,
        (Part(0.0, 0.0, 0.0, 0.07, 0.008, 0), Part(0.12, 0.0, 0.0, 0.0, 0.045, 1)),
    ),
    HeldObject(
        "spoon",
        "a thin handle ending in a small bowl",
        80.0,
        (Part(-0.02, 0.0, 0.0, 0.1, 0.006, 0), Part(0.095, 0.0, 0.0, 0.015, 0.014, 0)),
    ),
    HeldObject(
        "flag",
        "a long pole with a cloth at its top",
        10.0,
        (Part(-0.03, 0.0, 0.0, 0.17, 0.006, 0), Part(0.1, 0.0, 90.0, 0.05, 0.026, 1)),
    ),
)

#: Every object by name, in a stable order (the image source's label order).
OBJECTS: dict[str, HeldObject] = {obj.name: obj for obj in _OBJECTS}
OBJECT_NAMES: tuple[str, ...] = tuple(OBJECTS)


def get_object(name: str) -> HeldObject:
    """A :class:`HeldObject` by name."""
    if name not in OBJECTS:
        raise ValueError(f"unknown object {name!r}; objects: {', '.join(OBJECT_NAMES)}")
    return OBJECTS[name]


def _luma(rgb: tuple[float, float, float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


@dataclass(frozen=True)
class ObjectLook:
    """A clip's held object: which, its two colours, size and tilt."""

    name: str
    colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    scale: float
    tilt: float  # degrees

    @classmethod
    def sample(
        cls, rng: np.random.Generator, name: str, avoid: tuple[tuple[float, float, float], ...]
    ) -> ObjectLook:
        """Random colours (the same distribution for every object, contrasting with the
        ``avoid`` colours: figure and head), 1.35 to 1.65 times the drawing's size (a cup is
        then about a tenth of the body tall), tilt within ±15°."""
        get_object(name)
        avoid_luma = [_luma(c) for c in avoid]
        candidates = [
            colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.2, 1.0))
            for _ in range(12)
        ]
        margin = [min(abs(_luma(c) - a) for a in avoid_luma) for c in candidates]
        main = candidates[int(np.argmax(margin))]
        second = min(candidates, key=lambda c: -abs(_luma(c) - _luma(main)))
        return cls(
            name,
            (tuple(map(float, main)), tuple(map(float, second))),  # type: ignore[arg-type]
            float(rng.uniform(1.35, 1.65)),
            float(rng.uniform(-15.0, 15.0)),
        )


def object_segments(
    look: ObjectLook, hand: np.ndarray, elbow: np.ndarray, *, scale: float
) -> Segments:
    """Capsules (pixels) of ``look``'s object held at ``hand`` (T, 2) on a forearm from
    ``elbow`` (T, 2), for a body ``scale`` pixels tall. Tones are ``-2 - colour``."""
    obj = get_object(look.name)
    forearm = hand - elbow
    base = np.arctan2(forearm[:, 0], forearm[:, 1])  # renderer's angle convention
    axis_angle = base + np.deg2rad(obj.angle + look.tilt)
    w = np.stack([np.sin(axis_angle), np.cos(axis_angle)], axis=-1)
    p = np.stack([-w[:, 1], w[:, 0]], axis=-1)
    size = scale * look.scale
    starts, angles, lengths, radii, tones = [], [], [], [], []
    for part in obj.parts:
        starts.append(hand + (part.along * w + part.across * p) * size)
        angles.append(axis_angle + np.deg2rad(part.angle))
        lengths.append(np.full(len(hand), part.length * size))
        radii.append(max(0.5, part.radius * size))
        tones.append(-2.0 - part.colour)
    return Segments(
        tuple(f"{obj.name}_{i}" for i in range(len(obj.parts))),
        np.stack(starts),
        np.stack(angles),
        np.stack(lengths),
        np.asarray(radii),
        np.asarray(tones),
    )
