"""``SyntheticActions``: a map-style torch Dataset that renders clips on the fly.

Item ``i`` is rendered from a seed computed from ``(seed, split, i)``, so the dataset costs no
disk, is identical in every worker process and on every machine, and the train, val and test
splits can never share a clip. By default nothing is stored; ``cache_mb`` keeps rendered clips
in memory, so a training run that sees every clip once per epoch renders each only once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from hartutor.synth.actions import CLASS_NAMES, get_action
from hartutor.synth.render import DEFAULT_FPS, render_clip

SPLITS = ("train", "val", "test")
#: Clip seeds are ``(seed * 4 + split) * 2**32 + index``: distinct for every (seed, split,
#: index) and below 2**63 (so they fit a torch int64) when seed < 2**29 and index < 2**32.
MAX_SEED = 2**29
MAX_CLIPS = 2**32
#: ``cache_mb`` of the synthetic sets that training and evaluation build (``build_datasets``,
#: ``hartutor train``/``evaluate``): 1300 training clips of 16x64x64 fit (244 MiB), so every
#: epoch after the first skips rendering; small enough beside a model on a 2 GB Binder.
TRAINING_CACHE_MB = 256.0


def clip_seed(seed: int, split: str, index: int) -> int:
    """The render seed of item ``index`` of ``split`` in a dataset built with ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"seed must be in [0, {MAX_SEED}), got {seed}")
    if not 0 <= index < MAX_CLIPS:
        raise IndexError(f"clip index {index} out of range [0, {MAX_CLIPS})")
    return (seed * 4 + SPLITS.index(split)) * MAX_CLIPS + index


class SyntheticActions(Dataset):
    """``num_clips`` synthetic action clips, rendered when indexed.

    Item ``i`` is class ``classes[i % len(classes)]`` (classes are balanced) rendered with
    :func:`~hartutor.synth.clip_seed` ``(seed, split, i)``. It is a pytorchvideo-style dict::

        {"video": float32 (C, T, H, W) in [0, 1], "label": int, "action": str, "seed": int,
         "flow": float32 (2, T-1, H, W)  # only with with_flow=True}

    ``classes`` picks a subset (names or labels); labels are then positions in that subset, and
    :attr:`class_names` lists them. ``transform`` is applied to the dict (as pytorchvideo's
    ``ApplyTransformToKey`` expects). Works with ``DataLoader(num_workers > 0)``.

    ``cache_mb`` (default 0: off) keeps up to that many MiB of rendered clips in memory (uint8
    frames, float32 flow; 192 KiB per clip of 16x64x64, plus 480 KiB of flow), so later epochs
    skip rendering, which costs about as much as training a tiny preset on a clip. Clips past
    the budget are rendered every time. The transform still runs on every access, on a copy.
    Only the process that owns the dataset fills the cache: forked DataLoader workers read what
    it held when they started, spawned ones get none of it (it is not pickled), and neither
    adds to it, so ``num_workers`` never multiplies the memory.
    """

    def __init__(
        self,
        num_clips: int,
        *,
        seed: int = 0,
        split: str = "train",
        num_frames: int = 16,
        size: int | tuple[int, int] = 64,
        fps: float = DEFAULT_FPS,
        with_flow: bool = False,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        classes: Sequence[str | int] | None = None,
        noise: bool = True,
        cache_mb: float = 0.0,
    ) -> None:
        if not 0 < num_clips <= MAX_CLIPS:
            raise ValueError(f"num_clips must be in [1, {MAX_CLIPS}], got {num_clips}")
        clip_seed(seed, split, 0)  # validates seed and split
        names = CLASS_NAMES if classes is None else tuple(get_action(c).name for c in classes)
        if not names:
            raise ValueError("classes is empty: give at least one class name")
        if len(set(names)) != len(names):
            raise ValueError(f"classes has duplicates: {names}")
        if not (math.isfinite(cache_mb) and cache_mb >= 0):
            raise ValueError(f"cache_mb must be a size in MiB >= 0 (0: no cache), got {cache_mb}")
        self.num_clips = int(num_clips)
        self.seed = int(seed)
        self.split = split
        self.num_frames = int(num_frames)
        self.size = size
        self.fps = float(fps)
        self.with_flow = with_flow
        self.transform = transform
        self.noise = noise
        self.class_names: tuple[str, ...] = names
        self.cache_mb = float(cache_mb)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._cache_bytes = 0
        # The cached clips live in one block per kind (frames, flow), allocated at the first
        # clip: clips cached one by one between a model's activations would each pin a piece
        # of the allocator's heap, and the heap could not give back the space between them.
        self._slabs: tuple[torch.Tensor, torch.Tensor | None] | None = None
        # Fail now, not in a worker: render one tiny clip with these settings.
        render_clip(names[0], 0, num_frames=self.num_frames, size=size, fps=fps, noise=False)

    def __len__(self) -> int:
        return self.num_clips

    def label_of(self, index: int) -> int:
        """The label of item ``index`` without rendering it."""
        return index % len(self.class_names)

    @property
    def labels(self) -> np.ndarray:
        """Every item's label, in order (for samplers and class counts)."""
        return np.arange(self.num_clips) % len(self.class_names)

    @property
    def cached_clips(self) -> int:
        """How many rendered clips the cache holds (see ``cache_mb``)."""
        return len(self._cache)

    def _rendered(
        self, index: int, label: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Item ``index``'s uint8 frames (T, H, W, 3) and flow: from the cache, or rendered."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        clip = render_clip(
            self.class_names[label],
            seed,
            num_frames=self.num_frames,
            size=self.size,
            fps=self.fps,
            with_flow=self.with_flow,
            noise=self.noise,
        )
        frames = torch.from_numpy(clip.frames)
        flow = torch.from_numpy(clip.flow) if self.with_flow else None
        size = frames.nbytes + (flow.nbytes if flow is not None else 0)
        if self._cache_bytes + size <= self.cache_mb * 2**20 and get_worker_info() is None:
            frames, flow = self._store(frames, flow, size)
            self._cache[index] = (frames, flow)
            self._cache_bytes += size
        return frames, flow

    def _store(
        self, frames: torch.Tensor, flow: torch.Tensor | None, size: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Copy a clip into the next slot of the cache's blocks (made at the first clip, as
        many slots as the budget holds); return the slot's views."""
        if self._slabs is None:
            slots = min(self.num_clips, int(self.cache_mb * 2**20) // size)
            self._slabs = (
                torch.empty((slots, *frames.shape), dtype=frames.dtype),
                torch.empty((slots, *flow.shape), dtype=flow.dtype) if flow is not None else None,
            )
        slot = len(self._cache)
        frame_slab, flow_slab = self._slabs
        frame_slab[slot].copy_(frames)
        if flow is not None and flow_slab is not None:
            flow_slab[slot].copy_(flow)
            return frame_slab[slot], flow_slab[slot]
        return frame_slab[slot], None

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for {self.num_clips} clips")
        index %= self.num_clips
        label = self.label_of(index)
        seed = clip_seed(self.seed, self.split, index)
        frames, flow = self._rendered(index, label, seed)
        video = frames.permute(3, 0, 1, 2).contiguous().float().div_(255.0)
        sample: dict[str, Any] = {
            "video": video,
            "label": label,
            "action": self.class_names[label],
            "seed": seed,
        }
        if flow is not None:
            sample["flow"] = flow.clone() if self.cache_mb else flow
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned DataLoader workers, ``copy``) without the cached clips."""
        state = self.__dict__.copy()
        state["_cache"], state["_cache_bytes"], state["_slabs"] = {}, 0, None
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_clips={self.num_clips}, seed={self.seed}, "
            f"split={self.split!r}, num_frames={self.num_frames}, size={self.size}, "
            f"fps={self.fps}, with_flow={self.with_flow}, classes={len(self.class_names)}"
            + (f", cache_mb={self.cache_mb:g}" if self.cache_mb else "")
            + ")"
        )
