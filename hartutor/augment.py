"""Training augmentation for clips: the same random crop and flip for every frame, and for flow.

The two-stream, TSN and I3D papers train with a random crop of random scale and aspect ratio
(TSN's "scale jittering", Inception's random-resized crop) and a horizontal flip, drawn once per
*clip*: a crop that moved from frame to frame would itself look like motion. torchvision's v2
transforms draw their parameters once per call, so applying :class:`torchvision.transforms.v2.
RandomResizedCrop`'s parameters to the whole ``(T, C, H, W)`` clip does exactly that.

Optical flow needs two more steps than pixels: its displacements are lengths, so they scale with
the resize (x by the width's factor, y by the height's), and a mirror image moves the other way,
so a horizontal flip negates the x component (as the two-stream papers' flow augmentation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


class ClipAugment:
    """Random resized crop + horizontal flip of a clip dict's ``video`` (and ``flow``).

    ``video``: float ``(C, T, H, W)``; ``flow``: float ``(2, T', H, W)`` in pixels per frame,
    x then y (hartutor's dataset convention). Returns a new dict with both at ``size``.
    ``scale`` and ``ratio`` are torchvision's (area fraction and aspect ratio of the crop).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        *,
        scale: tuple[float, float] = (0.25, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: float = 0.5,
    ):
        from torchvision.transforms import v2

        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"flip must be a probability in [0, 1], got {flip!r}")
        self.size = [size, size] if isinstance(size, int) else list(size)
        self.flip = flip
        self._crop = v2.RandomResizedCrop(self.size, scale=scale, ratio=ratio, antialias=True)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        from torchvision.transforms.v2 import functional as F

        out = dict(sample)
        video = sample["video"].transpose(0, 1)  # (T, C, H, W): one draw for every frame
        box = self._crop.make_params([video])
        top, left, height, width = box["top"], box["left"], box["height"], box["width"]
        flipped = bool(torch.rand(()) < self.flip)
        video = F.resized_crop(video, top, left, height, width, self.size, antialias=True)
        if flipped:
            video = F.horizontal_flip(video)
        out["video"] = video.transpose(0, 1).contiguous()
        if "flow" in sample:
            flow = sample["flow"].transpose(0, 1)  # (T', 2, H, W)
            flow = F.resized_crop(flow, top, left, height, width, self.size, antialias=True)
            factors = torch.tensor([self.size[1] / width, self.size[0] / height], dtype=flow.dtype)
            flow = flow * factors.view(1, 2, 1, 1)
            if flipped:
                flow = F.horizontal_flip(flow) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
            out["flow"] = flow.transpose(0, 1).contiguous()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, crop={self._crop!r}, flip={self.flip})"
