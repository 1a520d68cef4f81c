"""The transfer world: a target set where space and time are complementary, and two sources.

The poster (S. Bose, "A general overview of SpatioTemporal Fusion Techniques for Human Activity
Recognition") fuses an I3D pretrained on Kinetics with an Xception pretrained on ImageNet and
carries both to UCF101. This module builds the same situation in the synthetic world:

- :data:`TARGET_CLASSES` (UCF101's role), in three :data:`FAMILIES`:
  ``motion`` (reversal and tempo pairs: no single frame tells them apart), ``appearance``
  (one hand-to-face movement with a toothbrush, a cup or a phone: motion cannot tell them
  apart, a sharp frame can) and ``both`` (a cup or a phone x lifted or lowered);
- :data:`VIDEO_SOURCE_CLASSES` (Kinetics' role): more action classes, overlapping the target
  only in part, with :data:`TARGET_TO_VIDEO_SOURCE` in the form of
  ``hartutor.labels.ucf101.UCF101_TO_KINETICS600``;
- :class:`SyntheticImages` (ImageNet's role): still images, one class per held object
  (:data:`IMAGE_CLASSES`), every object seen in many poses, scenes and looks, no motion.

Each stream gets its poster input (:data:`TEMPORAL_INPUT`, :data:`FRAME_INPUT`): the temporal
stream many frames at low resolution, the frame stream few frames at a higher one, both taken
from one :data:`CLIP_SIZE` clip by the fusion's :class:`~hartutor.models.fusion.ClipAdapter`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hartutor.synth.dataset import MAX_CLIPS, clip_seed
from hartutor.synth.objects import OBJECT_NAMES
from hartutor.synth.render import render_clip

#: The side of the rendered target clip (the frame stream's resolution).
CLIP_SIZE = 96
#: Frames of a rendered clip (the temporal stream's length).
CLIP_FRAMES = 16
#: (frames, side) of each stream's input: many small frames, few sharp ones.
TEMPORAL_INPUT = (16, 32)
FRAME_INPUT = (4, 96)

#: Target classes per family, in label order (motion, appearance, both).
FAMILIES: dict[str, tuple[str, ...]] = {
    "motion": ("walk", "run", "sit_down", "stand_up", "raise_arms", "lower_arms"),
    "appearance": ("brush_teeth", "drink", "phone_call"),
    "both": ("raise_cup", "lower_cup", "raise_phone", "lower_phone"),
}
TARGET_CLASSES: tuple[str, ...] = tuple(name for names in FAMILIES.values() for name in names)
#: family of each target class
FAMILY_OF: dict[str, str] = {name: fam for fam, names in FAMILIES.items() for name in names}

#: The video source: the original motion classes and five more, four of them shared with the
#: target only through a broader class (any object lifted to the face).
VIDEO_SOURCE_CLASSES: tuple[str, ...] = (
    "walk",
    "run",
    "sit_down",
    "stand_up",
    "bend_down",
    "straighten_up",
    "raise_arms",
    "lower_arms",
    "wave",
    "clap",
    "jumping_jacks",
    "punch",
    "kick",
    "brush_teeth",
    "drink",
    "raise_to_face",
    "lower_from_face",
)

#: For each target class, the video-source classes that are the same activity (as
#: ``UCF101_TO_KINETICS600``): identical classes, a broader one (``raise_cup`` ->
#: ``raise_to_face``, whose object is drawn at random), or none (``phone_call``).
TARGET_TO_VIDEO_SOURCE: dict[str, tuple[str, ...]] = {
    "walk": ("walk",),
    "run": ("run",),
    "sit_down": ("sit_down",),
    "stand_up": ("stand_up",),
    "raise_arms": ("raise_arms",),
    "lower_arms": ("lower_arms",),
    "brush_teeth": ("brush_teeth",),
    "drink": ("drink",),
    "phone_call": (),
    "raise_cup": ("raise_to_face",),
    "lower_cup": ("lower_from_face",),
    "raise_phone": ("raise_to_face",),
    "lower_phone": ("lower_from_face",),
}

#: The image source's classes: the held object (any pose, scene and look).
IMAGE_CLASSES: tuple[str, ...] = OBJECT_NAMES
#: Movements the image source takes its poses from (one frame each, any object in the hand).
IMAGE_POSES: tuple[str, ...] = (
    "walk",
    "sit_down",
    "bend_down",
    "raise_arms",
    "wave",
    "clap",
    "jumping_jacks",
    "punch",
    "kick",
    "brush_teeth",
    "raise_to_face",
)


class SyntheticImages(Dataset):
    """``num_images`` still images of held objects, rendered when indexed (ImageNet's role).

    Item ``i`` is object ``IMAGE_CLASSES[i % 10]`` held by a figure in a pose taken from a
    random frame of a random movement of :data:`IMAGE_POSES`, with a random look and scene,
    all drawn from :func:`~hartutor.synth.clip_seed` ``(seed, split, i)``. Items are dicts
    ``{"video": float32 (3, 1, size, size) in [0, 1], "label": int, "action": str}`` (a clip of
    one frame, so the frame streams take it as is).

    ``zoom=(lo, hi)`` makes the images object-centred, as ImageNet's photographs are: the
    frame is rendered at twice ``size`` and a square around the held object is cut from it,
    its side a fraction of the frame drawn log-uniformly from ``[lo, hi]``, and resized to
    ``size`` (``torchvision.transforms.v2``'s ``resized_crop``). With ``hi = 1`` some images show
    the object at the target clips' own scale (5-10 pixels at 96x96), with ``lo = 0.25`` others
    show it four times larger, so what is learnt large carries over to small. The pose, look
    and object of image ``i`` do not depend on ``zoom``.
    """

    def __init__(
        self,
        num_images: int,
        *,
        seed: int = 0,
        split: str = "train",
        size: int = CLIP_SIZE,
        zoom: tuple[float, float] | None = None,
    ) -> None:
        if not 0 < num_images <= MAX_CLIPS:
            raise ValueError(f"num_images must be in [1, {MAX_CLIPS}], got {num_images}")
        if zoom is not None and not 0 < zoom[0] <= zoom[1] <= 1:
            raise ValueError(f"zoom must be (lo, hi) with 0 < lo <= hi <= 1, got {zoom!r}")
        clip_seed(seed, split, 0)
        self.zoom = None if zoom is None else (float(zoom[0]), float(zoom[1]))
        self.num_images = int(num_images)
        self.seed = int(seed)
        self.split = split
        self.size = int(size)
        self.class_names: tuple[str, ...] = IMAGE_CLASSES

    def __len__(self) -> int:
        return self.num_images

    @property
    def labels(self) -> np.ndarray:
        return np.arange(self.num_images) % len(self.class_names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        index %= self.num_images
        label = index % len(self.class_names)
        seed = clip_seed(self.seed, self.split, index)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
        pose = IMAGE_POSES[int(rng.integers(len(IMAGE_POSES)))]
        frame = int(rng.integers(4))
        side = self.size if self.zoom is None else 2 * self.size
        clip = render_clip(pose, seed, num_frames=4, size=side, held=self.class_names[label])
        image = torch.from_numpy(clip.frames[frame]).permute(2, 0, 1).float().div_(255.0)
        if self.zoom is not None:
            image = _object_crop(image, clip, frame, rng, self.zoom, self.size)
        return {"video": image.unsqueeze(1), "label": label, "action": self.class_names[label]}


def object_box(
    mask: np.ndarray, fraction: float, jitter: tuple[float, float] = (0.0, 0.0)
) -> tuple[int, int, int] | None:
    """``(top, left, side)`` of a square of ``fraction`` of the frame's side around the pixels
    of ``mask`` (H, W), their centre moved by ``jitter`` (in sides, each in [-1/4, 1/4]: the
    object's centre stays in the square's middle half), kept inside the frame; None when the
    mask is empty (the object hidden)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    height, width = mask.shape
    side = max(8, min(height, width, round(fraction * min(height, width))))
    cy, cx = ys.mean() + jitter[0] * side, xs.mean() + jitter[1] * side
    top = int(np.clip(round(cy - side / 2), 0, height - side))
    left = int(np.clip(round(cx - side / 2), 0, width - side))
    return top, left, side


def _object_crop(
    image: torch.Tensor,
    clip: Any,
    frame: int,
    rng: np.random.Generator,
    zoom: tuple[float, float],
    size: int,
) -> torch.Tensor:
    """A square of ``image`` (3, H, W) around the held object of ``clip``'s ``frame`` (see
    :func:`object_box`), its side a log-uniform fraction in ``zoom`` of the frame, resized to
    ``size`` with antialiasing (the whole frame when the object is hidden)."""
    from torchvision.transforms.v2 import functional as TF

    from hartutor.synth.regions import object_mask

    fraction = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
    jitter = rng.uniform(-0.25, 0.25, size=2)
    box = object_box(object_mask(clip)[frame], fraction, (float(jitter[0]), float(jitter[1])))
    if box is None:
        return TF.resize(image, [size, size], antialias=True)
    top, left, side = box
    return TF.resized_crop(image, top, left, side, side, [size, size], antialias=True)
