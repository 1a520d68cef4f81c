"""Datasets by name for training and evaluation, normalised the way each model wants.

``--data synthetic`` renders the synthetic action set on the fly; ``--data DIR`` reads any folder
in UCF101's layout (the real UCF101, or a synthetic set written by ``hartutor synth``).
Datasets yield ``video`` as float (C, T, H, W) in [0, 1] and ``flow`` in pixels per frame;
:class:`Normalize` then applies the model's :class:`~hartutor.models.layers.InputSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

Sample = dict[str, Any]


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
        return {**sample, self.key: (x - self.mean) / self.std}

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
        steps.append(Normalize("video", spec.mean, spec.std))
    flow_spec = getattr(model, "flow_spec", None) or (spec if spec.num_channels == 2 else None)
    if "flow" in keys and flow_spec is not None:
        steps.append(Normalize("flow", flow_spec.mean, flow_spec.std))
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
