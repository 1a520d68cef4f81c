"""The stick figure: body proportions, a pose (joint angles over time) and forward kinematics.

The figure lives in the image plane (x right, y down) and is measured in *body heights*: a
standing figure is about 0.93 tall. Angles are in radians and follow one rule everywhere: a
direction of angle ``θ`` is ``(sin θ, cos θ)``, so ``θ = 0`` points straight down and a positive
angle turns towards +x, which is where the figure faces in the side view (it is mirrored later
when it faces left). In the front view the two arms and legs are mirror images, so the same
angle opens both limbs outwards.

Forward kinematics turns a :class:`Pose` (arrays of angles over ``T`` frames) into capsule
segments: start point, axis angle, length and radius for every body part and frame. The renderer
only ever sees those segments, which is what makes the exact optical flow possible: every pixel
of the figure belongs to one segment, at a known position along and across it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

View = Literal["front", "side"]


@dataclass(frozen=True)
class BodyShape:
    """Limb lengths in body heights and thickness factors, randomised per clip."""

    torso: float = 0.30
    neck: float = 0.10  # shoulder line to head centre
    head_radius: float = 0.074
    upper_arm: float = 0.16
    forearm: float = 0.15
    thigh: float = 0.23
    shin: float = 0.23
    foot: float = 0.065
    shoulder_half_width: float = 0.085
    hip_half_width: float = 0.05
    limb_radius: float = 0.028  # radii in body heights
    torso_radius: float = 0.05

    @classmethod
    def sample(cls, rng: np.random.Generator) -> BodyShape:
        """Proportions within about ±8% of the defaults, thickness within ±20%."""
        base = cls()
        scales = rng.uniform(0.92, 1.08, size=len(fields(cls)))
        thickness = rng.uniform(0.85, 1.25)
        values = {}
        for f, scale in zip(fields(cls), scales, strict=True):
            value = getattr(base, f.name) * float(scale)
            if f.name.endswith("_radius") and f.name != "head_radius":
                value *= thickness
            values[f.name] = value
        return cls(**values)


def _zeros(num_frames: int) -> np.ndarray:
    return np.zeros(num_frames, dtype=np.float64)


@dataclass
class Pose:
    """Joint angles (radians) and root offsets (body heights) over ``T`` frames.

    ``torso``: lean of the torso from vertical (positive: forwards). ``shoulder_*``: upper arm
    relative to the torso's downward axis. ``elbow_*``: forearm relative to the upper arm.
    ``hip_*``: thigh from vertical (world frame, so sitting is ``hip = 90°``). ``knee_*``: shin
    bends *back* from the thigh by this much. ``lift``: how far the figure is off the ground
    (jumps). ``shift``: horizontal root offset. In the side view ``*_near`` limbs face the camera
    and ``*_far`` limbs are behind the body; in the front view they are the image-right and
    image-left limbs.
    """

    num_frames: int
    torso: np.ndarray = field(default=None)  # type: ignore[assignment]
    shoulder_near: np.ndarray = field(default=None)  # type: ignore[assignment]
    elbow_near: np.ndarray = field(default=None)  # type: ignore[assignment]
    shoulder_far: np.ndarray = field(default=None)  # type: ignore[assignment]
    elbow_far: np.ndarray = field(default=None)  # type: ignore[assignment]
    hip_near: np.ndarray = field(default=None)  # type: ignore[assignment]
    knee_near: np.ndarray = field(default=None)  # type: ignore[assignment]
    hip_far: np.ndarray = field(default=None)  # type: ignore[assignment]
    knee_far: np.ndarray = field(default=None)  # type: ignore[assignment]
    lift: np.ndarray = field(default=None)  # type: ignore[assignment]
    shift: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "num_frames":
                continue
            value = getattr(self, f.name)
            array = _zeros(self.num_frames) if value is None else np.asarray(value, np.float64)
            setattr(self, f.name, np.broadcast_to(array, (self.num_frames,)).copy())

    def angles(self) -> dict[str, np.ndarray]:
        """Every per-frame array by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "num_frames"}

    def reversed(self) -> Pose:
        """The same pose sequence played backwards."""
        return Pose(self.num_frames, **{k: v[::-1] for k, v in self.angles().items()})

    def frozen(self, frame: int = 0) -> Pose:
        """Every frame holds the pose of ``frame`` (a still figure)."""
        return Pose(self.num_frames, **{k: v[frame] for k, v in self.angles().items()})


@dataclass(frozen=True)
class Segment:
    """One drawable body part: a capsule from joint ``start`` to joint ``end``."""

    name: str
    start: str
    end: str
    radius: str  # a BodyShape attribute
    tone: float  # brightness factor: far limbs are drawn darker


#: Draw order (back to front) for each view. The head is a capsule of zero length.
SEGMENTS: dict[View, tuple[Segment, ...]] = {
    "side": (
        Segment("upper_arm_far", "shoulder_far", "elbow_far", "limb_radius", 0.62),
        Segment("forearm_far", "elbow_far", "hand_far", "limb_radius", 0.62),
        Segment("thigh_far", "hip_far", "knee_far", "limb_radius", 0.62),
        Segment("shin_far", "knee_far", "ankle_far", "limb_radius", 0.62),
        Segment("foot_far", "ankle_far", "toe_far", "limb_radius", 0.62),
        Segment("torso", "pelvis", "neck", "torso_radius", 0.9),
        Segment("head", "head", "head", "head_radius", 1.0),
        Segment("thigh_near", "hip_near", "knee_near", "limb_radius", 1.0),
        Segment("shin_near", "knee_near", "ankle_near", "limb_radius", 1.0),
        Segment("foot_near", "ankle_near", "toe_near", "limb_radius", 1.0),
        Segment("upper_arm_near", "shoulder_near", "elbow_near", "limb_radius", 1.0),
        Segment("forearm_near", "elbow_near", "hand_near", "limb_radius", 1.0),
    ),
    "front": (
        Segment("hips", "hip_far", "hip_near", "limb_radius", 0.9),
        Segment("thigh_far", "hip_far", "knee_far", "limb_radius", 0.8),
        Segment("shin_far", "knee_far", "ankle_far", "limb_radius", 0.8),
        Segment("thigh_near", "hip_near", "knee_near", "limb_radius", 1.0),
        Segment("shin_near", "knee_near", "ankle_near", "limb_radius", 1.0),
        Segment("torso", "pelvis", "neck", "torso_radius", 0.9),
        Segment("shoulders", "shoulder_far", "shoulder_near", "limb_radius", 0.9),
        Segment("head", "head", "head", "head_radius", 1.0),
        Segment("upper_arm_far", "shoulder_far", "elbow_far", "limb_radius", 0.8),
        Segment("forearm_far", "elbow_far", "hand_far", "limb_radius", 0.8),
        Segment("upper_arm_near", "shoulder_near", "elbow_near", "limb_radius", 1.0),
        Segment("forearm_near", "elbow_near", "hand_near", "limb_radius", 1.0),
    ),
}


def direction(angle: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 2)`` for angles measured from straight down towards +x."""
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def forward_kinematics(
    pose: Pose, shape: BodyShape, view: View, *, anchor_feet: bool = False
) -> dict[str, np.ndarray]:
    """Joint positions ``(T, 2)`` in body heights, pelvis at the origin before grounding.

    The figure is then grounded: it is moved vertically so that its lowest point (feet, knees
    or hands, plus the limb thickness) touches ``y = 0`` when ``lift`` is zero, and shifted by
    ``shift`` horizontally. With ``anchor_feet`` the figure is also shifted so that the feet stay
    where they are in the first frame (sitting down moves the hips back, not the feet forward).
    """
    joints: dict[str, np.ndarray] = {}
    zero = np.zeros((pose.num_frames, 2))
    joints["pelvis"] = zero
    up = -direction(-pose.torso)  # torso axis, pointing up
    joints["neck"] = up * shape.torso
    joints["head"] = joints["neck"] + up * shape.neck
    side = np.stack([np.cos(pose.torso), np.sin(pose.torso)], axis=-1)  # +x across the torso
    front = view == "front"
    shoulder_line = joints["neck"] - up * 0.02
    for limb, sign in (("near", 1.0), ("far", -1.0)):
        mirror = sign if front else 1.0
        across_shoulder = side * (shape.shoulder_half_width * sign if front else 0.0)
        across_hip = side * (shape.hip_half_width * sign if front else 0.0)
        shoulder = shoulder_line + across_shoulder
        upper = -pose.torso + getattr(pose, f"shoulder_{limb}")
        fore = upper + getattr(pose, f"elbow_{limb}")
        elbow = shoulder + _mirrored(direction(upper), mirror) * shape.upper_arm
        hand = elbow + _mirrored(direction(fore), mirror) * shape.forearm
        hip = across_hip
        thigh_angle = getattr(pose, f"hip_{limb}")
        shin_angle = thigh_angle - getattr(pose, f"knee_{limb}")
        knee = hip + _mirrored(direction(thigh_angle), mirror) * shape.thigh
        ankle = knee + _mirrored(direction(shin_angle), mirror) * shape.shin
        toe = ankle + direction(shin_angle + np.pi / 2) * shape.foot
        joints.update(
            {
                f"shoulder_{limb}": shoulder,
                f"elbow_{limb}": elbow,
                f"hand_{limb}": hand,
                f"hip_{limb}": hip,
                f"knee_{limb}": knee,
                f"ankle_{limb}": ankle,
                f"toe_{limb}": toe,
            }
        )
    # Ground: the lowest point of the lower body or hands touches y = 0 (y grows downwards).
    contacts = ["knee_near", "knee_far", "ankle_near", "ankle_far", "hand_near", "hand_far"]
    if view == "side":
        contacts += ["toe_near", "toe_far"]
    lowest = np.max(np.stack([joints[name][:, 1] for name in contacts]), axis=0)
    shift = pose.shift
    if anchor_feet:
        feet_x = 0.5 * (joints["ankle_near"][:, 0] + joints["ankle_far"][:, 0])
        shift = shift - (feet_x - feet_x[0])
    offset = np.stack([shift, -(lowest + shape.limb_radius) - pose.lift], axis=-1)
    return {name: position + offset for name, position in joints.items()}


def _mirrored(vectors: np.ndarray, sign: float) -> np.ndarray:
    if sign == 1.0:
        return vectors
    return vectors * np.array([sign, 1.0])


@dataclass(frozen=True)
class Segments:
    """Capsules over time, in pixels: ``start (S, T, 2)``, ``angle (S, T)``, ``length (S, T)``.

    ``angle`` is the axis direction (same convention as :func:`direction`); for the head, a
    capsule of zero length, it is the torso's axis so that the head turns with the body.
    """

    names: tuple[str, ...]
    start: np.ndarray
    angle: np.ndarray
    length: np.ndarray
    radius: np.ndarray  # (S,) pixels
    tone: np.ndarray  # (S,)

    @property
    def axis(self) -> np.ndarray:
        """Unit axis vectors ``(S, T, 2)``."""
        return direction(self.angle)

    def reversed(self) -> Segments:
        """The same capsules with time reversed."""
        return Segments(
            self.names,
            self.start[:, ::-1].copy(),
            self.angle[:, ::-1].copy(),
            self.length[:, ::-1].copy(),
            self.radius,
            self.tone,
        )

    def concatenate(self, other: Segments) -> Segments:
        """``other`` drawn in front of these segments."""
        return Segments(
            self.names + other.names,
            np.concatenate([self.start, other.start]),
            np.concatenate([self.angle, other.angle]),
            np.concatenate([self.length, other.length]),
            np.concatenate([self.radius, other.radius]),
            np.concatenate([self.tone, other.tone]),
        )


def body_segments(
    joints: dict[str, np.ndarray],
    shape: BodyShape,
    view: View,
    *,
    torso_angle: np.ndarray,
    origin: tuple[float, float],
    scale: float,
    facing: float,
    min_radius: float = 0.9,
) -> Segments:
    """Capsules in pixels: joints scaled by ``scale`` (body height in pixels), placed with the
    figure's ground point at ``origin`` and mirrored when ``facing`` is -1."""
    starts, angles, lengths, radii, tones = [], [], [], [], []
    flip = np.array([facing, 1.0])
    for seg in SEGMENTS[view]:
        a = joints[seg.start] * flip * scale + origin
        b = joints[seg.end] * flip * scale + origin
        delta = b - a
        length = np.hypot(delta[:, 0], delta[:, 1])
        if seg.start == seg.end:
            angle = np.pi - torso_angle * facing  # head: follow the torso (pointing up)
        else:
            angle = np.arctan2(delta[:, 0], delta[:, 1])
        starts.append(a)
        angles.append(angle)
        lengths.append(length)
        radii.append(max(min_radius, getattr(shape, seg.radius) * scale))
        tones.append(seg.tone)
    return Segments(
        tuple(seg.name for seg in SEGMENTS[view]),
        np.stack(starts),
        np.stack(angles),
        np.stack(lengths),
        np.asarray(radii),
        np.asarray(tones),
    )
