"""Datasets by name for training and evaluation, normalised the way each model wants.

``--data synthetic`` renders the synthetic action set on the fly; ``--data DIR`` reads any folder
in UCF101's layout (the real UCF101, or a synthetic set written by ``hartutor synth``).
Datasets yield ``video`` as float (C, T, H, W) in [0, 1] and ``flow`` in pixels per frame;
:class:`Normalize` then applies the model's :class:`~hartutor.models.layers.InputSpec`.

One transform path: :class:`ClipTransform` takes decoded frames to a model's tensor (resize,
centre crop, [0, 1], then the same normalisation as :class:`Normalize`), as a pretrained
weights entry's ``transforms()`` does; both read the one :class:`InputSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from hartutor.models.layers import InputSpec

Sample = dict[str, Any]


def normalize_clip(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a ``(C, T, H, W)`` clip (``mean``/``std``: C values)."""
    return (x - mean.reshape(-1, 1, 1, 1)) / std.reshape(-1, 1, 1, 1)


class Normalize:
    """``(x - mean) / std`` per channel on one key of a sample dict (a picklable transform)."""

    def __init__(self, key: str, mean: Sequence[float], std: Sequence[float]):
        self.key = key
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def __call__(self, sample: Sample) -> Sample:
        x = sample[self.key]
        if x.shape[0] != len(self.mean):
            raise ValueError(
                f"{self.key!r} has {x.shape[0]} channels but the model's input spec has "
                f"{len(self.mean)}"
            )
        return {**sample, self.key: normalize_clip(x, self.mean, self.std)}

    def __repr__(self) -> str:
        return f"Normalize({self.key!r}, mean={self.mean.flatten().tolist()}, std=...)"


class Compose:
    """Apply sample transforms in order (picklable, for DataLoader workers)."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample


class ClipTransform:
    """Decoded frames -> model input, per an :class:`~hartutor.models.layers.InputSpec`.

    RGB: ``uint8 (T, H, W, C)`` (NumPy or torch) -> ``float32 (C, T, H', W')``: resize
    the shorter side to ``resize_size``, centre crop to ``size``, scale to [0, 1], normalise
    with mean/std. Flow: ``float (2, T, H, W)`` in pixels/frame -> ``float32 (2, T, H', W')``:
    resize (scaling the displacements with the image), centre crop, clip to ``flow_clip``,
    normalise.
    """

    def __init__(self, spec: InputSpec):
        from torchvision.transforms import v2

        self.spec = spec
        interpolation = v2.InterpolationMode(spec.interpolation)
        self._resize = (
            v2.Resize(spec.resize_size, interpolation=interpolation, antialias=True)
            if spec.resize_size is not None
            else None
        )
        self._crop = v2.CenterCrop(list(spec.size))
        self._mean = torch.tensor(spec.mean, dtype=torch.float32)
        self._std = torch.tensor(spec.std, dtype=torch.float32)

    def __call__(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        clip = torch.as_tensor(frames)
        if self.spec.modality == "flow":
            return self._flow(clip)
        if clip.ndim != 4 or clip.shape[-1] != len(self.spec.mean):
            raise ValueError(
                f"expected uint8 frames (T, H, W, {len(self.spec.mean)}), got "
                f"{tuple(clip.shape)} {clip.dtype}"
            )
        if clip.dtype != torch.uint8:
            raise ValueError(
                f"expected uint8 frames, got {clip.dtype} (decode with hartutor.video)"
            )
        clip = clip.permute(0, 3, 1, 2)  # (T, C, H, W)
        if self._resize is not None:
            clip = self._resize(clip)
        clip = self._crop(clip).to(torch.float32) / 255.0
        return normalize_clip(clip.permute(1, 0, 2, 3), self._mean, self._std).contiguous()

    def _flow(self, flow: torch.Tensor) -> torch.Tensor:
        if flow.ndim != 4 or flow.shape[0] != 2:
            raise ValueError(f"expected flow (2, T, H, W) in pixels/frame, got {tuple(flow.shape)}")
        flow = flow.to(torch.float32)
        height, width = flow.shape[-2:]
        frames = flow.permute(1, 0, 2, 3)  # (T, 2, H, W)
        if self._resize is not None:  # displacements scale with the image
            frames = self._resize(frames)
            scale = torch.tensor([frames.shape[-1] / width, frames.shape[-2] / height])
            frames = frames * scale.view(1, 2, 1, 1)
        frames = self._crop(frames)
        if self.spec.flow_clip is not None:
            frames = frames.clamp(-self.spec.flow_clip, self.spec.flow_clip)
        return normalize_clip(frames.permute(1, 0, 2, 3), self._mean, self._std).contiguous()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def model_transform(model: nn.Module) -> Compose:
    """The normalisation ``model`` expects, from its ``input_spec`` and ``input_keys``.

    RGB ``video`` gets the model's mean/std (on [0, 1] pixels). ``flow`` gets the spec of a
    flow-only model, or of a ``flow_spec`` attribute; otherwise it stays in pixels, which is
    what hartutor's flow streams take.
    """
    spec = model.input_spec
    keys = tuple(getattr(model, "input_keys", ("video",)))
    steps: list[Callable[[Sample], Sample]] = []
    if "video" in keys and spec.num_channels == 3:
        steps.append(spec.normalize("video"))
    flow_spec = getattr(model, "flow_spec", None) or (spec if spec.num_channels == 2 else None)
    if "flow" in keys and flow_spec is not None:
        steps.append(flow_spec.normalize("flow"))
    return Compose(steps)


def needs_flow(model: nn.Module) -> bool:
    return "flow" in tuple(getattr(model, "input_keys", ("video",)))


@dataclass
class DataBundle:
    """Train / validation datasets and the class names they share."""

    train: Dataset
    val: Dataset
    class_names: list[str]
    description: str


def build_datasets(
    data: str | Path,
    *,
    model: nn.Module,
    train_clips: int = 1300,
    val_clips: int = 260,
    seed: int = 0,
    split: int = 1,
    num_frames: int | None = None,
    size: int | None = None,
    cache_mb: float | None = None,
    augment: bool = True,
) -> DataBundle:
    """Datasets for ``model`` from ``"synthetic"`` or a folder in UCF101's layout.

    Frames and size default to the model's ``input_spec``. ``train_clips``/``val_clips`` apply
    to the synthetic set (rendered on the fly, so any number costs no disk). Each synthetic
    split keeps up to ``cache_mb`` MiB of rendered clips in memory (default
    :data:`~hartutor.synth.TRAINING_CACHE_MB`; 0 turns it off), as training and the temporal
    diagnostics go over the same clips several times.

    A folder's training clips are augmented (``augment``): decoded with the shorter side at 8/7
    of the model's size, then one random resized crop and horizontal flip per clip
    (:class:`~hartutor.augment.ClipAugment`, flow included); validation clips are resized to
    the model's size, as before.
    """
    spec = model.input_spec
    frames = num_frames or spec.num_frames
    side = size or spec.size[0]
    transform = model_transform(model)
    with_flow = needs_flow(model)
    if str(data) == "synthetic":
        from hartutor.synth import CLASS_NAMES, TRAINING_CACHE_MB, SyntheticActions

        def make(count: int, subset: str) -> SyntheticActions:
            return SyntheticActions(
                count,
                seed=seed,
                split=subset,
                num_frames=frames,
                size=side,
                with_flow=with_flow,
                transform=transform,
                cache_mb=TRAINING_CACHE_MB if cache_mb is None else cache_mb,
            )

        return DataBundle(
            make(train_clips, "train"),
            make(val_clips, "val"),
            list(CLASS_NAMES),
            f"synthetic actions, {train_clips} train / {val_clips} val clips, "
            f"{frames}x{side}x{side}, seed {seed}",
        )
    from hartutor.ucf101 import UCF101, Layout

    layout = Layout.find(data)
    val_subset = "val" if (layout.splits / f"vallist0{split}.txt").is_file() else "test"

    def make_folder(subset: str) -> UCF101:
        if subset == "train" and augment:
            from hartutor.augment import ClipAugment

            short_side = round(side * 8 / 7)  # 256 for 224, as the papers' training crops
            return UCF101(
                data,
                split=split,
                subset=subset,
                num_frames=frames,
                size=short_side,
                transform=Compose([ClipAugment(side), transform]),
                with_flow=with_flow,
            )
        return UCF101(
            data,
            split=split,
            subset=subset,
            num_frames=frames,
            size=(side, side),
            transform=transform,
            with_flow=with_flow,
        )

    train, val = make_folder("train"), make_folder(val_subset)
    return DataBundle(
        train,
        val,
        list(train.class_names),
        f"{layout.root} split {split}: {len(train)} train / {len(val)} {val_subset} clips",
    )
