"""Scoring: heads' logits, clip- and video-level accuracy of any per-clip scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import DataError
from hartutor.features.cache import FeatureSet
from hartutor.metrics import ClassificationResult, accumulate, video_level_scores
from hartutor.train import resolve_device

__all__ = [
    "FeatureEvaluation",
    "FusionMode",
    "evaluate_head",
    "evaluate_scores",
    "head_scores",
    "video_scores",
]

FusionMode = Literal["softmax_mean", "logit_sum"]


def head_scores(
    head: nn.Module, data: FeatureSet, *, batch_size: int = 8192, device: str = "cpu"
) -> torch.Tensor:
    """The head's logits ``(N, K)`` for every sample of ``data`` (eval mode, float32, CPU)."""
    dev = resolve_device(device)
    was_training = head.training
    head = head.to(dev).eval()
    try:
        with torch.inference_mode():
            parts = [head(x.to(dev)).float().cpu() for x in data.features.split(batch_size)]
    finally:
        head.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, getattr(head, "num_classes", 0))


@dataclass
class FeatureEvaluation:
    """Accuracy of scores on a feature set: per clip, and per video when clips are grouped."""

    clip: ClassificationResult | None
    video: ClassificationResult | None
    scores: torch.Tensor = field(repr=False)
    kind: Literal["logits", "probabilities"] = "logits"

    @property
    def top1(self) -> float:
        """Video-level top-1 when available (how UCF101 results are reported), else clip."""
        return (self.video or self.clip).top1  # type: ignore[union-attr]

    def summary(self) -> str:
        parts = []
        for level, result in (("clip", self.clip), ("video", self.video)):
            if result is not None:
                parts.append(f"{level}: {result.summary()}")
        return "; ".join(parts)


def video_scores(
    scores: torch.Tensor,
    data: FeatureSet,
    *,
    kind: Literal["logits", "probabilities"] = "logits",
    mode: FusionMode = "softmax_mean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-video scores from per-clip ones: ``(scores, labels, video ids)`` sorted by id.

    ``softmax_mean``: ``log`` of the mean clip probability (a valid logit; its softmax is the
    mean probability). ``logit_sum``: the mean clip logit. Built on
    :func:`hartutor.metrics.video_level_scores`.
    """
    if data.video_index is None:
        raise DataError("this feature set has no video_index: its clips are not grouped")
    if mode == "softmax_mean":
        probs = scores.float() if kind == "probabilities" else F.softmax(scores.float(), -1)
        mean, labels = video_level_scores(probs, data.video_index, data.labels)
        out = mean.clamp_min(torch.finfo(mean.dtype).tiny).log()
    elif mode == "logit_sum":
        if kind != "logits":
            raise ValueError("logit_sum averages logits; pass kind='logits'")
        out, labels = video_level_scores(scores.float(), data.video_index, data.labels)
    else:
        raise ValueError(f"mode must be 'softmax_mean' or 'logit_sum', got {mode!r}")
    return out, labels, torch.unique(data.video_index)


def evaluate_scores(
    scores: torch.Tensor,
    data: FeatureSet,
    *,
    kind: Literal["logits", "probabilities"] = "logits",
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    num_classes: int | None = None,
) -> FeatureEvaluation:
    """Top-k of per-clip ``scores`` on ``data`` with :func:`hartutor.metrics.accumulate`.

    With ``video_index`` the clips' softmax probabilities are also averaged per video (the
    multi-clip testing of the papers) and scored per video.
    """
    if scores.ndim != 2 or scores.shape[0] != len(data):
        raise ValueError(f"scores must be ({len(data)}, K), got {tuple(scores.shape)}")
    k = num_classes or scores.shape[1]
    names = class_names or data.class_names
    logits = scores.float() if kind == "logits" else scores.float().clamp_min(1e-38).log()
    loss = float(F.cross_entropy(logits, data.labels)) if len(data) else None
    clip = accumulate([logits], [data.labels], num_classes=k, ks=ks, loss=loss, class_names=names)
    video = None
    if data.video_index is not None:
        per_video, labels, _ = video_scores(scores, data, kind=kind)
        video = accumulate([per_video], [labels], num_classes=k, ks=ks, class_names=names)
    return FeatureEvaluation(clip, video, scores, kind)


def evaluate_head(
    head: nn.Module,
    data: FeatureSet,
    *,
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    device: str = "cpu",
) -> FeatureEvaluation:
    """Top-k per clip (and per video with ``video_index``) of ``head`` on ``data``."""
    scores = head_scores(head, data, device=device)
    return evaluate_scores(
        scores,
        data,
        ks=ks,
        class_names=class_names,
        num_classes=getattr(head, "num_classes", None),
    )
