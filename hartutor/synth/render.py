"""Rendering a clip: random appearance, background, camera, the capsule rasteriser and exact flow.

Everything is drawn from ``numpy.random.Generator`` streams derived from the clip's seed (with
:class:`numpy.random.SeedSequence` spawn keys, one stream per concern: appearance, camera,
motion, noise), so the same seed always gives the bit-identical clip, and a class's motion
program can draw as many numbers as it likes without changing the figure or the background.

Coordinates are pixels with pixel ``(row i, column j)`` centred at ``(x=j, y=i)``.

The rasteriser is vectorised over all frames at once: for each capsule it evaluates the
distance from every pixel of the capsule's bounding box (over the whole clip) to its axis, turns
it into coverage with a one-pixel smooth edge (anti-aliasing), and keeps per pixel the front-most
capsule together with the pixel's coordinates in that capsule's frame (distance ``a`` along the
axis from the start point, signed offset ``v`` across it). Those coordinates are what make the
optical flow exact: the same body point in another frame is the point with the same
``(a, v)`` on the same capsule there (with ``a`` stretched proportionally if the capsule changed
length, and the rounded caps carried rigidly with their end points).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hartutor.synth.actions import (
    WORLD_ACTIONS,
    Action,
    FrameTimes,
    Motion,
    get_action,
    label_of,
)
from hartutor.synth.objects import OBJECT_NAMES, ObjectLook, get_object, object_segments
from hartutor.synth.skeleton import (
    BodyShape,
    Segments,
    body_segments,
    direction,
    forward_kinematics,
)

#: Default frame rate of synthetic clips: 16 frames cover 1.33 s, one or two walk cycles.
DEFAULT_FPS = 12.0
#: Limits on what one call may render (a guard against accidental gigabyte requests).
MAX_SIZE = 1024
MAX_FRAMES = 1024
MAX_PIXELS = 64 * 1024 * 1024  # frames x height x width

_STREAMS = {"appearance": 0, "camera": 1, "motion": 2, "noise": 3, "held": 4}


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[name],)))


@dataclass(frozen=True)
class Appearance:
    """Everything about a clip's look that does not depend on the action."""

    body: BodyShape
    body_height: float  # fraction of the frame height
    ground: float  # ground line, fraction of the frame height from the top
    center_x: float  # figure position, fraction of the frame width
    facing: float  # +1 faces right, -1 faces left (side view)
    figure_rgb: tuple[float, float, float]
    head_rgb: tuple[float, float, float]
    prop_rgb: tuple[float, float, float]
    wall_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    floor_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    wall_waves: tuple[tuple[float, float, float, float], ...]  # (fx, fy, phase, weight)
    floor_waves: tuple[tuple[float, float, float, float], ...]
    noise_sigma: float  # grey levels (of 255)
    jitter: float  # camera shake amplitude, fraction of the frame height

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Appearance:
        """Random appearance; the figure's brightness always contrasts with the background."""
        body = BodyShape.sample(rng)
        wall_h, floor_h = rng.uniform(0, 1, size=2)
        wall = _hsv(wall_h, rng.uniform(0.05, 0.45), rng.uniform(0.35, 0.9))
        wall2 = _hsv(
            wall_h + rng.uniform(-0.08, 0.08), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9)
        )
        floor = _hsv(floor_h, rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.7))
        floor2 = _hsv(
            floor_h + rng.uniform(-0.05, 0.05), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.7)
        )
        background_luma = np.mean([_luma(c) for c in (wall, wall2, floor, floor2)])
        candidates = [
            _hsv(rng.uniform(0, 1), rng.uniform(0.4, 1.0), rng.uniform(0.15, 1.0))
            for _ in range(12)
        ]
        contrast = [abs(_luma(c) - background_luma) for c in candidates]
        good = [c for c, k in zip(candidates, contrast, strict=True) if k >= 0.25]
        figure = good[0] if good else candidates[int(np.argmax(contrast))]
        skin = _hsv(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.65), rng.uniform(0.3, 0.95))
        head = tuple(float(x) for x in 0.5 * np.add(skin, figure))
        prop = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.4, 0.8), rng.uniform(0.25, 0.55))

        def waves(count: int) -> tuple[tuple[float, float, float, float], ...]:
            # Spatial frequencies in cycles per frame height: 0.5 to 5 (wavelength >= 12 px at 64).
            radius = rng.uniform(0.5, 5.0, size=count)
            angle = rng.uniform(0, np.pi, size=count)
            phase = rng.uniform(0, 2 * np.pi, size=count)
            weight = rng.uniform(0.2, 1.0, size=count)
            return tuple(
                (float(r * np.cos(t)), float(r * np.sin(t)), float(p), float(w))
                for r, t, p, w in zip(radius, angle, phase, weight, strict=True)
            )

        return cls(
            body=body,
            body_height=float(rng.uniform(0.55, 0.72)),
            ground=float(rng.uniform(0.88, 0.96)),
            center_x=float(rng.uniform(0.36, 0.64)),
            facing=1.0 if rng.random() < 0.5 else -1.0,
            figure_rgb=figure,
            head_rgb=head,  # type: ignore[arg-type]
            prop_rgb=prop,
            wall_rgb=(wall, wall2),
            floor_rgb=(floor, floor2),
            wall_waves=waves(3),
            floor_waves=waves(2),
            noise_sigma=float(rng.uniform(1.0, 6.0)),
            jitter=float(rng.uniform(0.0, 0.025)),
        )


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(float(h) % 1.0, float(s), float(v))
    return (r, g, b)


def _luma(rgb: tuple[float, float, float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


@dataclass(frozen=True)
class ClipParams:
    """How a clip was made: enough to render it again and to describe it."""

    action: str
    label: int
    seed: int
    appearance_seed: int
    num_frames: int
    height: int
    width: int
    fps: float
    noise: bool
    camera_motion: bool
    still: bool
    reversed: bool  # the canonical clip of ``reverse_of`` played backwards
    view: str
    appearance: Appearance
    motion: dict[str, float] = field(default_factory=dict)
    pan_speed: float = 0.0  # tracking camera speed, pixels per second
    held: str | None = None  # the object in the near hand (``hartutor.synth.objects``)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data version (nested dicts and tuples)."""
        return asdict(self)


@dataclass
class SynthClip:
    """A rendered clip and its ground truth.

    ``frames``: uint8 ``(T, H, W, 3)``. ``flow``: float32 ``(2, T-1, H, W)`` forward flow in
    pixels per frame (x then y), or None when not asked for. ``parts``: int8 ``(T, H, W)``, the
    index (into ``part_names``) of the visible body part or prop at each pixel, -1 for background.
    ``camera``: where the camera is in each frame: background pixel ``(x, y)`` shows the world
    point ``(x, y) + camera[t]`` (shake plus tracking); the ground line is at image row
    ``params.appearance.ground * height - camera[t, 1]``.
    """

    frames: np.ndarray
    flow: np.ndarray | None
    label: int
    action: str
    seed: int
    params: ClipParams
    parts: np.ndarray
    part_names: tuple[str, ...]
    camera: np.ndarray | None = None  # float64 (T, 2): background offset (x, y) in pixels
    clean: np.ndarray | None = None  # float32 (T, H, W, 3) in [0, 1] before noise, if kept


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    height, width = int(height), int(width)
    if not (8 <= height <= MAX_SIZE and 8 <= width <= MAX_SIZE):
        raise ValueError(f"frame size {size!r} is out of range: use 8 to {MAX_SIZE} pixels")
    return height, width


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def render_clip(
    action: str | int,
    seed: int,
    *,
    num_frames: int = 16,
    size: int | tuple[int, int] = 64,
    fps: float = DEFAULT_FPS,
    with_flow: bool = False,
    noise: bool = True,
    camera_motion: bool = True,
    still: bool = False,
    appearance_seed: int | None = None,
    keep_clean: bool = False,
    held: str | None = None,
) -> SynthClip:
    """Render one clip of ``action`` (a class name or label), fully determined by ``seed``.

    ``size`` is the frame side (or ``(height, width)``). ``with_flow`` adds the exact forward
    optical flow. ``noise=False`` skips the sensor noise; ``camera_motion=False`` removes camera
    shake and tracking; ``still=True`` freezes the figure in its first pose (a still clip: with
    no camera motion its flow is exactly zero). ``appearance_seed`` (default: ``seed``) chooses
    the figure and background separately from the motion, as UCF101's groups share an actor and
    a scene. ``keep_clean`` also returns the float frames before noise and quantisation.
    ``held`` puts that object (``hartutor.synth.objects.OBJECT_NAMES``) in the near hand
    instead of the class's own (the image source draws every object in every pose); the
    object's colours, size and tilt come from the appearance seed.

    For a class of :data:`~hartutor.synth.actions.REVERSAL_PAIRS` played backwards (e.g.
    ``stand_up``), the result is exactly the forward class's clip of the same seed with time
    reversed: frames, parts and camera path; its flow is the true forward flow of the reversed
    clip.
    """
    act = get_action(action)
    seed = _check_seed(seed)
    appearance_seed = (
        seed if appearance_seed is None else _check_seed(appearance_seed, "appearance_seed")
    )
    height, width = _check_size(size)
    if not 1 <= num_frames <= MAX_FRAMES:
        raise ValueError(f"num_frames={num_frames} is out of range: use 1 to {MAX_FRAMES}")
    if with_flow and num_frames < 2:
        raise ValueError("optical flow needs at least 2 frames (num_frames >= 2)")
    if num_frames * height * width > MAX_PIXELS:
        raise ValueError(
            f"{num_frames} frames of {height}x{width} is too large to render at once "
            f"(limit {MAX_PIXELS} pixels); use fewer frames or a smaller size"
        )
    if not 0 < fps <= 1000:
        raise ValueError(f"fps={fps} is out of range: use a positive rate up to 1000")

    canonical = WORLD_ACTIONS[act.reverse_of] if act.reverse_of else act
    appearance = Appearance.sample(_stream(appearance_seed, "appearance"))
    held_name = canonical.held if held is None else get_object(held).name
    held_look = None
    if held_name is not None:
        rng = _stream(appearance_seed, "held")
        if held_name == "any":
            held_name = OBJECT_NAMES[int(rng.integers(len(OBJECT_NAMES)))]
        held_look = ObjectLook.sample(rng, held_name, (appearance.figure_rgb, appearance.head_rgb))
    times = FrameTimes.make(num_frames, fps)
    motion = canonical.program(_stream(seed, "motion"), times)
    if still:
        motion.pose = motion.pose.frozen(0)
        motion.pan_speed = 0.0
    scene = _Scene.build(
        canonical, motion, appearance, times, height, width, seed, camera_motion, held_look
    )

    raster = _rasterize(scene.segments, height, width, with_coords=with_flow)
    planes = _compose(scene, raster, appearance, height, width)
    frames = _quantize(planes, appearance.noise_sigma if noise else 0.0, seed)
    clean = np.moveaxis(planes, 0, -1)  # (T, H, W, 3)
    parts = np.where(raster.alpha >= 0.5, raster.part, -1).astype(np.int8)

    flow = None
    reverse = act.reverse_of is not None
    if with_flow:
        if reverse:
            flow = _flow(scene, raster, np.arange(1, num_frames), np.arange(num_frames - 1))
            flow = np.ascontiguousarray(flow[:, ::-1])
        else:
            flow = _flow(scene, raster, np.arange(num_frames - 1), np.arange(1, num_frames))
    if reverse:
        frames = np.ascontiguousarray(frames[::-1])
        parts = np.ascontiguousarray(parts[::-1])
        clean = clean[::-1]

    params = ClipParams(
        action=act.name,
        label=label_of(act.name),
        seed=seed,
        appearance_seed=appearance_seed,
        num_frames=num_frames,
        height=height,
        width=width,
        fps=float(fps),
        noise=noise,
        camera_motion=camera_motion,
        still=still,
        reversed=reverse,
        view=act.view,
        appearance=appearance,
        motion={k: float(v) for k, v in motion.params.items()},
        pan_speed=scene.pan_speed,
        held=held_name,
    )
    return SynthClip(
        frames=frames,
        flow=flow,
        label=params.label,
        action=act.name,
        seed=seed,
        params=params,
        parts=parts,
        part_names=scene.segments.names,
        camera=np.ascontiguousarray(scene.offset[::-1] if reverse else scene.offset),
        clean=np.ascontiguousarray(clean) if keep_clean else None,
    )


@dataclass
class _Scene:
    """Capsules in image coordinates and the background's offset for every frame."""

    segments: Segments
    offset: np.ndarray  # (T, 2): background pixel (x, y) shows world point (x, y) + offset
    ground: float  # ground line y in world pixels
    pan_speed: float
    held_rgb: tuple[tuple[float, float, float], ...] = ()  # colours of tones -2, -3, ...

    @classmethod
    def build(
        cls,
        action: Action,
        motion: Motion,
        look: Appearance,
        times: FrameTimes,
        height: int,
        width: int,
        seed: int,
        camera_motion: bool,
        held: ObjectLook | None = None,
    ) -> _Scene:
        scale = look.body_height * height
        origin = (look.center_x * width, look.ground * height)
        joints = forward_kinematics(
            motion.pose, look.body, action.view, anchor_feet=motion.anchor_feet
        )
        segments = body_segments(
            joints,
            look.body,
            action.view,
            torso_angle=motion.pose.torso,
            origin=origin,
            scale=scale,
            facing=look.facing,
        )
        if held is not None:  # the object in the near hand, drawn in front of everything
            flip = np.array([look.facing, 1.0])
            hand = joints["hand_near"] * flip * scale + origin
            elbow = joints["elbow_near"] * flip * scale + origin
            segments = segments.concatenate(object_segments(held, hand, elbow, scale=scale))
        num_frames = times.num_frames
        jitter = np.zeros((num_frames, 2))
        pan = np.zeros((num_frames, 2))
        pan_speed = 0.0
        rng = _stream(seed, "camera")
        # Camera shake: two random sinusoids per axis (drawn even when unused, for stability).
        freqs = rng.uniform(0.3, 2.5, size=(2, 2))
        phases = rng.uniform(0, 2 * np.pi, size=(2, 2))
        if camera_motion:
            wave = np.sin(2 * np.pi * freqs[None] * times.seconds[:, None, None] + phases[None])
            jitter = look.jitter * height * wave.sum(axis=-1) / np.sqrt(2.0)
            pan_speed = motion.pan_speed * scale
            pan[:, 0] = look.facing * pan_speed * times.seconds
        # The figure moves against the shaking camera; the tracking pan keeps it in place.
        segments = Segments(
            segments.names,
            segments.start - jitter[None],
            segments.angle,
            segments.length,
            segments.radius,
            segments.tone,
        )
        offset = jitter + pan
        if motion.stool:
            segments = _stool(joints, look, scale, origin, offset).concatenate(segments)
        held_rgb = held.colours if held is not None else ()
        return cls(segments, offset, look.ground * height, pan_speed, held_rgb)


def _stool(
    joints: dict[str, np.ndarray],
    look: Appearance,
    scale: float,
    origin: tuple[float, float],
    offset: np.ndarray,
) -> Segments:
    """A stool under the last frame's pelvis (the seated pose), static in the world."""
    body = look.body
    pelvis = joints["pelvis"][-1]
    seat_y = pelvis[1] + body.torso_radius + body.limb_radius * 1.5
    left, right = pelvis[0] - 0.13, pelvis[0] + 0.09
    points = [  # (start, end) in body heights, ground at y = 0
        ((left, seat_y), (right, seat_y)),
        ((left + 0.02, seat_y), (left + 0.02, -body.limb_radius)),
        ((right - 0.02, seat_y), (right - 0.02, -body.limb_radius)),
    ]
    num_frames = len(offset)
    starts, angles, lengths = [], [], []
    for (ax, ay), (bx, by) in points:
        a = np.array([ax * look.facing, ay]) * scale + origin
        b = np.array([bx * look.facing, by]) * scale + origin
        delta = b - a
        starts.append(a[None] - offset)
        angles.append(np.full(num_frames, np.arctan2(delta[0], delta[1])))
        lengths.append(np.full(num_frames, np.hypot(*delta)))
    radius = max(0.9, body.limb_radius * scale * 1.1)
    return Segments(
        ("stool_seat", "stool_leg_back", "stool_leg_front"),
        np.stack(starts),
        np.stack(angles),
        np.stack(lengths),
        np.full(3, radius),
        np.full(3, -1.0),  # tone -1 marks a prop: drawn in the prop colour
    )


@dataclass
class _Raster:
    alpha: np.ndarray  # (T, H, W) coverage of the figure, max over capsules
    part: np.ndarray  # (T, H, W) int16 capsule drawn at each pixel (-1 none)
    shade: np.ndarray  # (T, H, W) brightness factor of that capsule at the pixel
    along: np.ndarray | None  # (T, H, W) distance along the capsule's axis (flow only)
    across: np.ndarray | None  # (T, H, W) signed offset across it (flow only)
    box: tuple[int, int, int, int]  # (y0, y1, x0, x1) bounding every capsule in every frame


def _rasterize(segments: Segments, height: int, width: int, *, with_coords: bool) -> _Raster:
    """Coverage, front-most capsule, shading and capsule coordinates for every pixel.

    Capsules are drawn back to front; a capsule takes a pixel if it covers at least half of it
    (later ones win), or if no capsule covers half of it yet and this one covers more than the
    best so far (so anti-aliased edges take the colour of the capsule they belong to).
    """
    num_frames = segments.start.shape[1]
    alpha = np.zeros((num_frames, height, width), np.float32)
    part = np.full((num_frames, height, width), -1, np.int16)
    shade = np.zeros((num_frames, height, width), np.float32)
    along = np.zeros_like(alpha) if with_coords else None
    across = np.zeros_like(alpha) if with_coords else None
    start = segments.start.astype(np.float32)
    axis = segments.axis.astype(np.float32)
    length = segments.length.astype(np.float32)
    end = start + axis * length[..., None]
    box = [height, 0, width, 0]
    for s in range(len(segments.names)):
        radius = np.float32(segments.radius[s])
        reach = float(radius) + 1.0
        lo = np.minimum(start[s], end[s]).min(axis=0) - reach
        hi = np.maximum(start[s], end[s]).max(axis=0) + reach
        x0, y0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 1, width), min(int(np.ceil(hi[1])) + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        box = [min(box[0], y0), max(box[1], y1), min(box[2], x0), max(box[3], x1)]
        dx = np.arange(x0, x1, dtype=np.float32)[None, None, :] - start[s, :, 0, None, None]
        dy = np.arange(y0, y1, dtype=np.float32)[None, :, None] - start[s, :, 1, None, None]
        ex = axis[s, :, 0, None, None]
        ey = axis[s, :, 1, None, None]
        a = dx * ex + dy * ey
        v = dy * ex - dx * ey
        seg_len = length[s, :, None, None]
        a_clamped = np.clip(a, np.float32(0), seg_len)
        beyond = a - a_clamped
        dist = np.sqrt(beyond * beyond + v * v)
        cover = np.clip(radius + np.float32(0.5) - dist, np.float32(0), np.float32(1))
        current = alpha[:, y0:y1, x0:x1]
        take = (cover >= 0.5) | ((cover > current) & (current < 0.5))
        # Shading: a lit cylinder across the capsule, slightly darker towards its end.
        rel = np.minimum(dist / radius, np.float32(1))
        lit = np.float32(0.72) + np.float32(0.28) * np.sqrt(np.float32(1) - rel * rel)
        fraction = a_clamped / np.maximum(seg_len, np.float32(1e-6))
        brightness = lit * (np.float32(1) - np.float32(0.2) * fraction)
        np.copyto(part[:, y0:y1, x0:x1], np.int16(s), where=take)
        np.copyto(shade[:, y0:y1, x0:x1], brightness, where=take)
        if with_coords:
            np.copyto(along[:, y0:y1, x0:x1], a, where=take)
            np.copyto(across[:, y0:y1, x0:x1], v, where=take)
        np.maximum(current, cover, out=current)
    return _Raster(alpha, part, shade, along, across, tuple(box))  # type: ignore[arg-type]


def _background(look: Appearance, offset: np.ndarray, ground: float, height: int, width: int):
    """Textured wall and floor seen through the camera: float32 (3, T, H, W) in [0, 1].

    Each texture is a weighted sum of plane waves evaluated at world coordinates, so a
    sub-pixel camera shift moves it exactly (the background's flow is the camera's motion).
    ``sin(a + b) = sin a cos b + cos a sin b`` splits each wave into row and column factors, and
    one batched matrix product per texture sums the waves for every frame. Colour planes are
    computed one at a time (see :func:`_compose`).
    """
    xs = np.arange(width, dtype=np.float64)[None, :] + offset[:, 0, None]  # (T, W)
    ys = np.arange(height, dtype=np.float64)[None, :] + offset[:, 1, None]  # (T, H)

    def texture(waves: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
        fx = np.array([w[0] for w in waves]) * (2 * np.pi / height)
        fy = np.array([w[1] for w in waves]) * (2 * np.pi / height)
        phase = np.array([w[2] for w in waves])
        weight = np.array([w[3] for w in waves])
        weight = 0.5 * weight / weight.sum()
        col = xs[:, None, :] * fx[None, :, None]  # (T, K, W)
        row = ys[:, :, None] * fy[None, None, :] + phase  # (T, H, K)
        rows = np.concatenate([np.cos(row) * weight, np.sin(row) * weight], axis=2)
        cols = np.concatenate([np.sin(col), np.cos(col)], axis=1)
        return (np.matmul(rows, cols) + 0.5).astype(np.float32)  # (T, H, W) in [0, 1]

    wall_value = texture(look.wall_waves)
    floor_value = texture(look.floor_waves)
    on_floor = np.clip(ys - ground + 0.5, 0.0, 1.0).astype(np.float32)[:, :, None]  # (T, H, 1)
    wall_base, wall_step = _colour_ramp(look.wall_rgb)
    floor_base, floor_step = _colour_ramp(look.floor_rgb)
    image = np.empty((3, *wall_value.shape), np.float32)
    for c in range(3):
        wall = wall_base[c] + wall_value * wall_step[c]
        floor = floor_base[c] + floor_value * floor_step[c]
        np.add(wall, on_floor * (floor - wall), out=image[c])
    return image


def _colour_ramp(colours: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """``(c0, c1 - c0)`` in float32: a texture value ``v`` in [0, 1] paints ``c0 + v * (c1 -
    c0)``."""
    c0 = np.asarray(colours[0], np.float32)
    return c0, np.asarray(colours[1], np.float32) - c0


def _compose(
    scene: _Scene, raster: _Raster, look: Appearance, height: int, width: int
) -> np.ndarray:
    """Figure over background: float32 (3, T, H, W) in [0, 1].

    Colour planes are kept apart until :func:`_quantize` interleaves them: numpy runs the same
    float32 arithmetic about ten times faster on whole planes than on a trailing axis of 3.
    """
    image = _background(look, scene.offset, scene.ground, height, width)
    y0, y1, x0, x1 = raster.box
    if y0 >= y1 or x0 >= x1:
        return image
    figure = np.asarray(look.figure_rgb, np.float32)
    colours = np.empty((len(scene.segments.names) + 1, 3), np.float32)
    for s, (name, tone) in enumerate(zip(scene.segments.names, scene.segments.tone, strict=True)):
        if tone <= -2:
            colours[s] = scene.held_rgb[round(-tone) - 2]
        elif tone < 0:
            colours[s] = look.prop_rgb
        elif name == "head":
            colours[s] = look.head_rgb
        else:
            colours[s] = figure * np.float32(tone)
    colours[-1] = 0.0  # part -1: no capsule (alpha is 0 there anyway)
    part = raster.part[:, y0:y1, x0:x1]
    shade = raster.shade[:, y0:y1, x0:x1]
    alpha = raster.alpha[:, y0:y1, x0:x1]
    for c in range(3):
        paint = colours[:, c][part] * shade
        window = image[c, :, y0:y1, x0:x1]
        window += alpha * (paint - window)
    return image


def _quantize(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add Gaussian sensor noise of ``sigma`` grey levels to the planar ``clean`` (3, T, H, W)
    and round to uint8 frames (T, H, W, 3)."""
    levels = clean * np.float32(255.0)
    if sigma > 0:
        rng = _stream(seed, "noise")
        noise = rng.standard_normal((*clean.shape[1:], 3), dtype=np.float32)  # frame order
        levels += np.moveaxis(noise, -1, 0) * np.float32(sigma)
    levels += np.float32(0.5)
    np.clip(levels, 0.0, 255.0, out=levels)
    return np.ascontiguousarray(np.moveaxis(levels.astype(np.uint8), 0, -1))


def _flow(scene: _Scene, raster: _Raster, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Exact flow from frames ``source`` to frames ``target`` (of the canonical clip).

    Background pixels move with the camera; a figure pixel (coverage >= 0.5) moves to where the
    same point of its capsule (same ``along``/``across`` coordinates) is in the target frame.
    Displacements are computed as differences of like terms, so a capsule that does not move has
    exactly zero flow.
    """
    height, width = raster.alpha.shape[1:]
    camera = -(scene.offset[target] - scene.offset[source]).astype(np.float32)  # (N, 2)
    flow = np.empty((2, len(source), height, width), np.float32)
    flow[0] = camera[:, 0, None, None]
    flow[1] = camera[:, 1, None, None]
    visible = raster.alpha[source] >= 0.5
    n, ys, xs = np.nonzero(visible)
    if len(n) == 0:
        return flow
    t_src = source[n]
    t_dst = target[n]
    s = raster.part[t_src, ys, xs].astype(np.intp)
    a = raster.along[t_src, ys, xs].astype(np.float64)  # type: ignore[index]
    v = raster.across[t_src, ys, xs].astype(np.float64)  # type: ignore[index]
    segs = scene.segments
    start = segs.start.astype(np.float32).astype(np.float64)
    axis = direction(segs.angle).astype(np.float32).astype(np.float64)
    length = segs.length.astype(np.float32).astype(np.float64)
    len_src, len_dst = length[s, t_src], length[s, t_dst]
    ratio = np.where(len_src > 0, len_dst / np.where(len_src > 0, len_src, 1.0), 1.0)
    a_dst = np.where(a < 0, a, np.where(a > len_src, a + (len_dst - len_src), a * ratio))
    e_src, e_dst = axis[s, t_src], axis[s, t_dst]
    n_src = np.stack([-e_src[:, 1], e_src[:, 0]], axis=-1)
    n_dst = np.stack([-e_dst[:, 1], e_dst[:, 0]], axis=-1)
    move = (
        (start[s, t_dst] - start[s, t_src])
        + (a_dst[:, None] * e_dst - a[:, None] * e_src)
        + v[:, None] * (n_dst - n_src)
    )
    flow[0, n, ys, xs] = move[:, 0]
    flow[1, n, ys, xs] = move[:, 1]
    return flow
