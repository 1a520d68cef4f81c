"""Small helpers shared by hartutor's clip models (frame, two-stream, Xception, fusion).

Argument checks that raise :class:`~hartutor.errors.ModelError`, the tiny presets' input,
frame sampling (TSN's uniform and random-segment indices), the consensus that averages
per-frame scores, and the timm-style classifier head of the small 2D CNNs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import ModelError
from hartutor.models.layers import InputSpec

__all__ = [
    "TINY_MEAN",
    "TINY_NUM_FRAMES",
    "TINY_SIZE",
    "TINY_STD",
    "ClassifierHead",
    "Consensus",
    "ModelError",
    "Preset",
    "check_choice",
    "check_clip",
    "check_num_classes",
    "check_preset",
    "frame_consensus",
    "gather_frames",
    "per_item",
    "random_segment_indices",
    "tiny_rgb_spec",
    "uniform_indices",
]

Preset = Literal["paper", "tiny"]
Consensus = Literal["logit_mean", "softmax_mean"]

# Synthetic teaching clips (hartutor's synthetic set): 16 RGB frames of 64x64.
TINY_NUM_FRAMES = 16
TINY_SIZE = (64, 64)
# Tiny models are trained from scratch; [-1, 1] scaling is the simplest well-centred choice.
TINY_MEAN = (0.5, 0.5, 0.5)
TINY_STD = (0.5, 0.5, 0.5)


def tiny_rgb_spec(what: str) -> InputSpec:
    """The tiny presets' input: 16 RGB frames of 64x64 in [-1, 1] (the synthetic set's)."""
    return InputSpec(
        TINY_NUM_FRAMES,
        TINY_SIZE,
        TINY_MEAN,
        TINY_STD,
        description=f"16 RGB frames of 64x64 in [-1, 1]; {what}",
    )


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`ModelError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ModelError(f"{name}={value!r} is not supported; use one of {list(choices)}")


def check_clip(x: torch.Tensor, *, channels: int | None, model: str, what: str = "video") -> None:
    """Raise :class:`ModelError` unless ``x`` is a float ``(N, C, T, H, W)`` clip batch."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ModelError(
            f"{model} expects a {what} batch of shape (N, C, T, H, W), got {shape}; "
            "add a batch dimension with clip.unsqueeze(0) for a single clip"
        )
    if not x.is_floating_point():
        raise ModelError(
            f"{model} expects a float {what} tensor, got {x.dtype}; normalise decoded uint8 "
            "frames first (see model.input_spec)"
        )
    if channels is not None and x.shape[1] != channels:
        raise ModelError(
            f"{model} expects {channels} channels in dimension 1 of (N, C, T, H, W), got "
            f"shape {tuple(x.shape)}; is the clip laid out (N, T, H, W, C) or (N, T, C, H, W)? "
            "use clip.permute to get (N, C, T, H, W)"
        )


# --------------------------------------------------------------------------- frame sampling


def uniform_indices(
    length: int, num_samples: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Indices of the centres of ``num_samples`` equal segments of ``range(length)``.

    The test-time sampling of TSN and of the two-stream paper ("frames with equal temporal
    spacing"). With ``num_samples > length`` frames repeat.
    """
    if length < 1 or num_samples < 1:
        raise ModelError(f"cannot sample {num_samples} frames from a clip of {length} frames")
    centres = (torch.arange(num_samples, device=device, dtype=torch.float64) + 0.5) * (
        length / num_samples
    )
    return centres.floor().long().clamp_(0, length - 1)


def random_segment_indices(
    batch_size: int,
    length: int,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One random index inside each of ``num_samples`` equal segments, per clip: ``(N, S)``.

    TSN's training-time sampling: every segment of the clip contributes a frame, but which
    one changes from step to step (a cheap temporal augmentation).
    """
    if length < 1 or num_samples < 1:
        raise ModelError(f"cannot sample {num_samples} frames from a clip of {length} frames")
    offsets = torch.rand(batch_size, num_samples, generator=generator, dtype=torch.float64)
    positions = (torch.arange(num_samples, dtype=torch.float64) + offsets) * (length / num_samples)
    return positions.floor().long().clamp_(0, length - 1).to(device)


def gather_frames(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Frames ``indices`` of clips ``x (N, C, T, H, W)``: shared ``(S,)`` or per clip ``(N, S)``."""
    if indices.ndim == 1:
        return x.index_select(2, indices.to(x.device))
    batch = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    # Advanced indexing on dims 0 and 2 puts the (N, S) index dims first: (N, S, C, H, W).
    return x[batch, :, indices.to(x.device)].permute(0, 2, 1, 3, 4)


def per_item(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` (a 2D backbone's step) applied to every item of ``x`` ``(N, K, ...)``, as one
    batch of ``N*K``; the result keeps the ``(N, K)`` leading shape: frames or snippets of
    each clip scored independently, as single-frame models and TSN do."""
    n, k = x.shape[:2]
    out = fn(x.flatten(0, 1))
    return out.reshape(n, k, *out.shape[1:])


def frame_consensus(scores: torch.Tensor, mode: Consensus, dim: int = 1) -> torch.Tensor:
    """Average class scores over the samples along ``dim`` (see the module docstring).

    ``"softmax_mean"`` returns ``log(mean softmax)``, computed stably with ``logsumexp``.
    """
    if mode == "logit_mean":
        return scores.mean(dim)
    if mode == "softmax_mean":
        log_probs = F.log_softmax(scores.float(), dim=-1)
        fused = torch.logsumexp(log_probs, dim=dim) - math.log(scores.shape[dim])
        return fused.to(scores.dtype)
    raise ModelError(f"consensus={mode!r} is not supported; use 'logit_mean' or 'softmax_mean'")


# --------------------------------------------------------------------------- heads and builders


class ClassifierHead(nn.Module):
    """Shared timm-style head: ``pre_logits`` features -> dropout -> linear (or identity)."""

    num_features: int
    num_classes: int
    head_drop: nn.Dropout
    fc: nn.Module

    def _make_fc(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer by a fresh one with ``num_classes`` outputs (0: none)."""
        device = next(self.parameters()).device
        self._make_fc(num_classes)
        self.fc.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # type: ignore[attr-defined]


def check_preset(preset: str) -> None:
    """Raise :class:`ModelError` unless ``preset`` is ``"paper"`` or ``"tiny"``."""
    check_choice("preset", preset, ("paper", "tiny"))


def check_num_classes(num_classes: int) -> None:
    """Raise :class:`ModelError` unless ``num_classes`` is a positive integer."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}")
