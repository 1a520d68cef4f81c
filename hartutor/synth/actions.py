"""The action classes and their motion programs.

Every class is a *motion program*: a function of a random generator and the frame times that
returns a :class:`~hartutor.synth.skeleton.Pose` (joint angles over time). Three kinds:

- **transitions** (``sit_down``, ``bend_down``, ``raise_arms``) go from one posture to another
  with a smooth, randomly timed movement; their partners (``stand_up``, ``straighten_up``,
  ``lower_arms``) are *not* programs of their own but the exact time reversal of the same clip
  (see :data:`REVERSAL_PAIRS`). Any single frame of ``stand_up`` is a frame of ``sit_down``, so
  only the order of frames tells them apart.
- a **tempo pair** (``walk``, ``run``): one gait cycle, sampled with a uniformly random phase,
  at a slow or a fast cadence. The distribution of a single frame's pose is the same for both
  (a uniform phase makes every time step a uniform sample of the cycle), so only motion speed
  tells them apart. The camera tracks the figure, so the background also scrolls with cadence.
- **periodic** gestures (``wave``, ``clap``, ``jumping_jacks``, ``punch``, ``kick``) that a single
  frame often, but not always, reveals.

Angles are written in degrees here for readability and converted to radians.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hartutor.synth.skeleton import Pose, View


@dataclass(frozen=True)
class FrameTimes:
    """When each frame is taken: seconds from the clip start and normalised time in [0, 1]."""

    seconds: np.ndarray
    progress: np.ndarray
    fps: float

    @classmethod
    def make(cls, num_frames: int, fps: float) -> FrameTimes:
        index = np.arange(num_frames, dtype=np.float64)
        return cls(index / fps, index / max(num_frames - 1, 1), float(fps))

    @property
    def num_frames(self) -> int:
        return len(self.seconds)


@dataclass
class Motion:
    """What a motion program produces."""

    pose: Pose
    params: dict[str, float] = field(default_factory=dict)
    stool: bool = False  # draw a stool under the seated pose
    pan_speed: float = 0.0  # tracking camera: body heights per second, in the facing direction
    anchor_feet: bool = False  # keep the feet where they are; the pelvis moves instead


Program = Callable[[np.random.Generator, FrameTimes], Motion]


@dataclass(frozen=True)
class Action:
    """One class: its name, view, motion program, and how it relates to other classes."""

    name: str
    view: View
    description: str
    program: Program
    reverse_of: str | None = None  # this class is that class's clip played backwards
    periodic: bool = False
    #: the object in the near hand (a key of ``hartutor.synth.objects.OBJECTS``), ``"any"`` for
    #: one drawn per clip, or None (empty hands)
    held: str | None = None

    @property
    def camel_name(self) -> str:
        """UCF101-style class name: ``sit_down`` -> ``SitDown``."""
        return "".join(part.capitalize() for part in self.name.split("_"))


def _rad(degrees: float | np.ndarray) -> np.ndarray:
    return np.deg2rad(degrees)


def _ease(times: FrameTimes, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """A smooth 0 -> 1 movement starting and ending at random moments of the clip."""
    start = rng.uniform(0.0, 0.25)
    end = rng.uniform(0.75, 1.0)
    x = np.clip((times.progress - start) / (end - start), 0.0, 1.0)
    eased = x * x * x * (x * (6.0 * x - 15.0) + 10.0)  # quintic smootherstep
    return eased, {"start": start, "end": end}


def _rest(num_frames: int, rng: np.random.Generator, view: View) -> dict[str, np.ndarray]:
    """A relaxed standing pose with small random variations."""
    arm = 6.0 if view == "front" else 4.0
    return {
        "torso": _rad(rng.uniform(-2.0, 4.0)) * np.ones(num_frames),
        "shoulder_near": _rad(arm + rng.uniform(-3, 5)) * np.ones(num_frames),
        "shoulder_far": _rad(arm + rng.uniform(-3, 5)) * np.ones(num_frames),
        "elbow_near": _rad(rng.uniform(5, 15)) * np.ones(num_frames),
        "elbow_far": _rad(rng.uniform(5, 15)) * np.ones(num_frames),
        "hip_near": _rad(rng.uniform(1, 5) if view == "front" else rng.uniform(-3, 3))
        * np.ones(num_frames),
        "hip_far": _rad(rng.uniform(1, 5) if view == "front" else rng.uniform(-3, 3))
        * np.ones(num_frames),
        "knee_near": _rad(rng.uniform(0, 6)) * np.ones(num_frames),
        "knee_far": _rad(rng.uniform(0, 6)) * np.ones(num_frames),
    }


def _cycle(times: FrameTimes, rng: np.random.Generator, low: float, high: float):
    """Phase (radians) over time of a cycle with a random frequency in [low, high] Hz."""
    frequency = rng.uniform(low, high)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    return phase + 2.0 * np.pi * frequency * times.seconds, {"frequency": frequency, "phase": phase}


# --- transitions -----------------------------------------------------------------------------


def sit_down(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """From standing to sitting on a stool: hips and knees to ~90°, leaning forward on the way."""
    n = times.num_frames
    s, timing = _ease(times, rng)
    pose = _rest(n, rng, "side")
    hip = rng.uniform(80, 95)
    knee = rng.uniform(80, 95)
    lean = rng.uniform(25, 40)
    reach = rng.uniform(20, 45)
    for limb in ("near", "far"):
        pose[f"hip_{limb}"] = pose[f"hip_{limb}"] * (1 - s) + _rad(hip) * s
        pose[f"knee_{limb}"] = pose[f"knee_{limb}"] * (1 - s) + _rad(knee) * s
        pose[f"shoulder_{limb}"] = pose[f"shoulder_{limb}"] + _rad(
            reach * np.sin(np.pi * s) + 15 * s
        )
        pose[f"elbow_{limb}"] = pose[f"elbow_{limb}"] + _rad(30 * s)
    pose["torso"] = pose["torso"] + _rad(lean * np.sin(np.pi * s) + 8 * s)
    params = {**timing, "hip": hip, "knee": knee}
    return Motion(Pose(n, **pose), params, stool=True, anchor_feet=True)


def bend_down(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """From standing to bent over at the hips, arms hanging towards the floor."""
    n = times.num_frames
    s, timing = _ease(times, rng)
    pose = _rest(n, rng, "side")
    bend = rng.uniform(70, 95)
    knee = rng.uniform(10, 35)
    pose["torso"] = pose["torso"] * (1 - s) + _rad(bend) * s
    for limb in ("near", "far"):
        # Arms hang vertically (relative angle = torso lean) and reach slightly forwards.
        pose[f"shoulder_{limb}"] = (
            pose[f"shoulder_{limb}"] * (1 - s) + (pose["torso"] + _rad(rng.uniform(0, 15))) * s
        )
        # Knees bend forwards (thigh forwards, shin back) while the legs tilt back to balance.
        pose[f"hip_{limb}"] = pose[f"hip_{limb}"] + _rad(knee / 2 - 8) * s
        pose[f"knee_{limb}"] = pose[f"knee_{limb}"] + _rad(knee) * s
    return Motion(Pose(n, **pose), {**timing, "bend": bend}, anchor_feet=True)


def raise_arms(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Both arms from the sides to straight overhead (front view)."""
    n = times.num_frames
    s, timing = _ease(times, rng)
    pose = _rest(n, rng, "front")
    top = rng.uniform(160, 178)
    lag = rng.uniform(0.0, 0.08)  # one arm slightly behind the other
    late = np.clip((s - lag) / (1.0 - lag), 0.0, 1.0)
    for limb, amount in (("near", s), ("far", late)):
        pose[f"shoulder_{limb}"] = pose[f"shoulder_{limb}"] * (1 - amount) + _rad(top) * amount
        pose[f"elbow_{limb}"] = pose[f"elbow_{limb}"] * (1 - amount)
    return Motion(Pose(n, **pose), {**timing, "top": top})


# --- the tempo pair ---------------------------------------------------------------------------


def _gait(rng: np.random.Generator, times: FrameTimes, low: float, high: float) -> Motion:
    """One gait cycle (hips, knees, arm swing) at a cadence drawn from [low, high] Hz."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, low, high)
    pose = _rest(n, rng, "side")
    swing = rng.uniform(22, 30)
    knee = rng.uniform(45, 60)
    arm = rng.uniform(18, 30)
    for limb, offset in (("near", 0.0), ("far", np.pi)):
        phase = psi + offset
        pose[f"hip_{limb}"] = _rad(swing * np.sin(phase))
        pose[f"knee_{limb}"] = _rad(6 + knee * np.maximum(0.0, np.cos(phase + 0.5)) ** 2)
        pose[f"shoulder_{limb}"] = _rad(-arm * np.sin(phase))
        pose[f"elbow_{limb}"] = _rad(20 + 10 * np.sin(phase))
    pose["torso"] = pose["torso"] + _rad(4.0)
    # The camera follows the figure: about 0.75 body heights per gait cycle.
    pan = 0.75 * cycle["frequency"]
    return Motion(Pose(n, **pose), {**cycle, "swing": swing}, pan_speed=pan)


#: Cadences (Hz) of the tempo pair: same gait, same phase distribution, different speed.
WALK_HZ = (0.7, 1.1)
RUN_HZ = (1.9, 2.6)


def walk(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Gait at 0.7-1.1 cycles per second (the camera tracks the walker)."""
    return _gait(rng, times, *WALK_HZ)


def run(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """The same gait at 1.9-2.6 cycles per second: only the tempo differs from walk."""
    return _gait(rng, times, *RUN_HZ)


# --- periodic gestures -----------------------------------------------------------------------


def wave(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """One arm raised, the forearm swinging side to side (front view)."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 1.5, 2.5)
    pose = _rest(n, rng, "front")
    limb = "near" if rng.random() < 0.5 else "far"
    raise_to = rng.uniform(125, 150)
    amplitude = rng.uniform(25, 40)
    pose[f"shoulder_{limb}"] = _rad(raise_to + 5 * np.sin(psi))
    pose[f"elbow_{limb}"] = _rad(15 + amplitude * np.sin(psi))
    return Motion(Pose(n, **pose), {**cycle, "raised": float(limb == "near")})


def clap(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Hands meeting in front of the chest and parting (front view)."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 1.5, 3.0)
    pose = _rest(n, rng, "front")
    together = 0.5 + 0.5 * np.cos(psi)  # 1 when the hands meet
    for limb in ("near", "far"):
        pose[f"shoulder_{limb}"] = _rad(25 + 30 * (1 - together))
        pose[f"elbow_{limb}"] = -_rad(120 - 45 * (1 - together))  # bends inwards
    return Motion(Pose(n, **pose), cycle)


def jumping_jacks(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Arms from the sides to overhead and legs apart, with a hop each half cycle."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 0.8, 1.3)
    pose = _rest(n, rng, "front")
    spread = 0.5 - 0.5 * np.cos(psi)
    for limb in ("near", "far"):
        pose[f"shoulder_{limb}"] = _rad(10 + rng.uniform(150, 165) * spread)
        pose[f"elbow_{limb}"] = _rad(8 * (1 - spread))
        pose[f"hip_{limb}"] = _rad(3 + rng.uniform(18, 26) * spread)
        pose[f"knee_{limb}"] = _rad(5 * np.ones(n))
    lift = 0.05 * np.abs(np.sin(psi))
    return Motion(Pose(n, lift=lift, **pose), cycle)


def punch(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Alternating straight punches from a guard (side view, legs in a stance)."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 1.0, 1.8)
    pose = _rest(n, rng, "side")
    stance = rng.uniform(10, 18)
    for limb, offset, hip in (("near", 0.0, stance), ("far", np.pi, -stance)):
        extend = np.maximum(0.0, np.sin(psi + offset)) ** 2
        pose[f"shoulder_{limb}"] = _rad(50 + 40 * extend)
        pose[f"elbow_{limb}"] = _rad(115 * (1 - extend))
        pose[f"hip_{limb}"] = _rad(hip * np.ones(n))
        pose[f"knee_{limb}"] = _rad(12 * np.ones(n))
    pose["torso"] = pose["torso"] + _rad(6.0)
    return Motion(Pose(n, **pose), cycle)


def kick(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """Front kicks with one leg: knee up, shin snaps out, back down (side view)."""
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 0.8, 1.3)
    pose = _rest(n, rng, "side")
    height = rng.uniform(65, 90)
    lift = np.maximum(0.0, np.sin(psi)) ** 2  # 0 standing, 1 leg fully up
    snap = np.maximum(0.0, np.sin(psi + 0.6)) ** 2  # the shin extends slightly after the thigh
    pose["hip_near"] = _rad(height * lift)
    pose["knee_near"] = _rad(8 + 95 * lift * (1 - snap) + 20 * lift * (1 - lift))
    pose["hip_far"] = _rad(-4 - 6 * lift)
    pose["knee_far"] = _rad(6 * np.ones(n))
    for limb in ("near", "far"):
        pose[f"shoulder_{limb}"] = _rad(35 + 10 * (limb == "far")) * np.ones(n)
        pose[f"elbow_{limb}"] = _rad(100 * np.ones(n))
    pose["torso"] = pose["torso"] - _rad(10 * lift)
    return Motion(Pose(n, **pose), {**cycle, "height": height})


# --- hand-to-face movements (the appearance-defined and object x direction classes) ----------


def _face_pose(rng: np.random.Generator, n: int) -> tuple[float, float]:
    """Shoulder and elbow angles (degrees) that bring the near hand in front of the chin."""
    return rng.uniform(52, 62), rng.uniform(128, 140)


def hand_at_face(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """The near hand held in front of the mouth, moving a little back and forth (side view).

    Every appearance-defined class (``brush_teeth``, ``drink``, ``phone_call``) uses exactly
    this program: only the object in the hand differs, so motion cannot tell them apart.
    """
    n = times.num_frames
    psi, cycle = _cycle(times, rng, 1.5, 3.0)
    pose = _rest(n, rng, "side")
    shoulder, elbow = _face_pose(rng, n)
    amplitude = rng.uniform(3, 7)
    pose["shoulder_near"] = _rad(shoulder + 0.6 * amplitude * np.sin(psi))
    pose["elbow_near"] = _rad(elbow + amplitude * np.sin(psi + 0.8))
    return Motion(Pose(n, **pose), {**cycle, "shoulder": shoulder, "elbow": elbow})


def raise_to_face(rng: np.random.Generator, times: FrameTimes) -> Motion:
    """The near hand from the side up to the mouth with a smooth, randomly timed movement."""
    n = times.num_frames
    s, timing = _ease(times, rng)
    pose = _rest(n, rng, "side")
    shoulder, elbow = _face_pose(rng, n)
    pose["shoulder_near"] = pose["shoulder_near"] * (1 - s) + _rad(shoulder) * s
    pose["elbow_near"] = pose["elbow_near"] * (1 - s) + _rad(elbow) * s
    return Motion(Pose(n, **pose), {**timing, "shoulder": shoulder, "elbow": elbow})


_DEFINITIONS: tuple[Action, ...] = (
    Action("walk", "side", "walking (slow cadence, tracking camera)", walk, periodic=True),
    Action("run", "side", "the walk's gait at a fast cadence", run, periodic=True),
    Action("sit_down", "side", "standing -> sitting on a stool", sit_down),
    Action("stand_up", "side", "sit_down played backwards", sit_down, reverse_of="sit_down"),
    Action("bend_down", "side", "standing -> bent over at the hips", bend_down),
    Action(
        "straighten_up", "side", "bend_down played backwards", bend_down, reverse_of="bend_down"
    ),
    Action("raise_arms", "front", "arms from the sides to overhead", raise_arms),
    Action(
        "lower_arms", "front", "raise_arms played backwards", raise_arms, reverse_of="raise_arms"
    ),
    Action("wave", "front", "one raised arm waving", wave, periodic=True),
    Action("clap", "front", "clapping in front of the chest", clap, periodic=True),
    Action("jumping_jacks", "front", "jumping jacks", jumping_jacks, periodic=True),
    Action("punch", "side", "alternating punches from a guard", punch, periodic=True),
    Action("kick", "side", "repeated front kicks", kick, periodic=True),
)

#: The classes of the original motion-only set, by name, in the stable label order.
ACTIONS: dict[str, Action] = {action.name: action for action in _DEFINITIONS}
#: Class names in label order (label ``i`` is ``CLASS_NAMES[i]``).
CLASS_NAMES: tuple[str, ...] = tuple(ACTIONS)

#: Classes added for the transfer world (``hartutor.synth.world``): the same movement with a
#: different object in the hand, an object x direction grid, and the video source's classes.
_WORLD_DEFINITIONS: tuple[Action, ...] = (
    Action(
        "brush_teeth",
        "side",
        "hand at the mouth holding a toothbrush",
        hand_at_face,
        periodic=True,
        held="toothbrush",
    ),
    Action(
        "drink", "side", "hand at the mouth holding a cup", hand_at_face, periodic=True, held="cup"
    ),
    Action(
        "phone_call",
        "side",
        "hand at the mouth holding a phone",
        hand_at_face,
        periodic=True,
        held="phone",
    ),
    Action(
        "raise_cup", "side", "a cup lifted from the side to the mouth", raise_to_face, held="cup"
    ),
    Action(
        "lower_cup",
        "side",
        "raise_cup played backwards",
        raise_to_face,
        reverse_of="raise_cup",
        held="cup",
    ),
    Action(
        "raise_phone",
        "side",
        "a phone lifted from the side to the mouth",
        raise_to_face,
        held="phone",
    ),
    Action(
        "lower_phone",
        "side",
        "raise_phone played backwards",
        raise_to_face,
        reverse_of="raise_phone",
        held="phone",
    ),
    Action(
        "raise_to_face",
        "side",
        "any object lifted from the side to the mouth",
        raise_to_face,
        held="any",
    ),
    Action(
        "lower_from_face",
        "side",
        "raise_to_face played backwards",
        raise_to_face,
        reverse_of="raise_to_face",
        held="any",
    ),
)
#: Every class that :func:`render_clip` can draw: :data:`ACTIONS` first, then the world's.
WORLD_ACTIONS: dict[str, Action] = {
    action.name: action for action in (*_DEFINITIONS, *_WORLD_DEFINITIONS)
}
#: Names of :data:`WORLD_ACTIONS`; a class's index here is its ``ClipParams.label`` (the
#: original classes keep their labels).
WORLD_CLASS_NAMES: tuple[str, ...] = tuple(WORLD_ACTIONS)
#: (forward, backward) pairs: the backward clip is the forward clip of the same seed reversed.
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (action.reverse_of, action.name) for action in _DEFINITIONS if action.reverse_of
)
#: The reversal pairs of the world's classes (same guarantee as :data:`REVERSAL_PAIRS`).
WORLD_REVERSAL_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (action.reverse_of, action.name) for action in _WORLD_DEFINITIONS if action.reverse_of
)
#: (slow, fast) pairs sharing one pose cycle and phase distribution, differing only in tempo.
TEMPO_PAIRS: tuple[tuple[str, str], ...] = (("walk", "run"),)


def get_action(action: str | int) -> Action:
    """An :class:`Action` by snake_case name, CamelCase name or label index.

    Label indices address :data:`CLASS_NAMES` (the original set); the transfer world's classes
    (:data:`WORLD_ACTIONS`) are reached by name.
    """
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        if not 0 <= int(action) < len(CLASS_NAMES):
            raise ValueError(
                f"action label {int(action)} is out of range: there are {len(CLASS_NAMES)} "
                f"classes (0..{len(CLASS_NAMES) - 1})"
            )
        return ACTIONS[CLASS_NAMES[int(action)]]
    if isinstance(action, str):
        if action in WORLD_ACTIONS:
            return WORLD_ACTIONS[action]
        for candidate in WORLD_ACTIONS.values():
            if candidate.camel_name == action:
                return candidate
        import difflib

        close = difflib.get_close_matches(action, WORLD_CLASS_NAMES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown synthetic action {action!r}.{hint} Classes: {', '.join(WORLD_CLASS_NAMES)}"
        )
    raise TypeError(f"action must be a class name or label index, got {type(action).__name__}")


def label_of(action: str | int) -> int:
    """The label index of a class (its position in :data:`WORLD_CLASS_NAMES`)."""
    return WORLD_CLASS_NAMES.index(get_action(action).name)
