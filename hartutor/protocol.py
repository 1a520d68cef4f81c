"""The standard video test protocol of UCF101 and HMDB51: clips x crops, per video, per split.

Each test video is scored on ``clips_per_video`` windows spread evenly over it, times three
square crops (both ends and the centre of the longer side); the class probabilities of all its
clips and crops are averaged, and the video's top-1 is read off the average. Each of the three
official splits has its own model (trained on that split's training list: the splits' test
sets overlap each other's training sets) and the reported figure is the mean over the splits,
as the two-stream, C3D and I3D papers report UCF101.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hartutor.errors import DataError


@dataclass(frozen=True)
class SplitScore:
    """Video-level accuracy of one split's model on that split's test list."""

    split: int
    top1: float
    top5: float
    videos: int
    items: int  # clips x crops scored


@dataclass(frozen=True)
class ProtocolResult:
    """Per-split video-level accuracy and the mean over the splits."""

    splits: tuple[SplitScore, ...]

    @property
    def mean_top1(self) -> float:
        return sum(s.top1 for s in self.splits) / len(self.splits)

    @property
    def mean_top5(self) -> float:
        return sum(s.top5 for s in self.splits) / len(self.splits)

    def table(self) -> str:
        """A Markdown table: one row per split and the mean."""
        from hartutor._markdown import markdown_table

        rows = [
            [str(s.split), f"{s.top1:.1%}", f"{s.top5:.1%}", str(s.videos), str(s.items)]
            for s in self.splits
        ]
        rows.append(["mean", f"{self.mean_top1:.1%}", f"{self.mean_top5:.1%}", "", ""])
        return markdown_table(["split", "top-1", "top-5", "videos", "clips x crops"], rows)


def video_probabilities(scores: torch.Tensor, log_probabilities: bool = False) -> torch.Tensor:
    """Class probabilities of clip scores (logits, or log-probabilities of a late fusion)."""
    return scores.exp() if log_probabilities else scores.softmax(dim=-1)


def evaluate_split(
    model: nn.Module,
    root: str | os.PathLike[str],
    split: int,
    *,
    dataset: Callable[..., Any] | None = None,
    clips_per_video: int = 10,
    crops_per_clip: int = 3,
    batch_size: int = 8,
    device: str = "auto",
    **dataset_options: Any,
) -> SplitScore:
    """Video-level top-1/top-5 of ``model`` on ``split``'s test list, clips x crops averaged.

    ``dataset``: :class:`~hartutor.ucf101.UCF101` (default) or :class:`~hartutor.hmdb51.HMDB51`;
    ``dataset_options`` are passed to it (``num_frames``, ``size``, ``crop_size``,
    ``transform``, ``with_flow``, ``classes``...).
    """
    from hartutor.train import collect_scores
    from hartutor.ucf101 import UCF101, video_level_scores

    data = (dataset or UCF101)(
        root,
        split=split,
        subset="test",
        clip_sampling="uniform",
        clips_per_video=clips_per_video,
        crops_per_clip=crops_per_clip,
        **dataset_options,
    )
    scores, labels = collect_scores(model, data, batch_size=batch_size, device=device)
    fused = "fused" in scores
    clip_probs = video_probabilities(scores["fused" if fused else "model"], fused)
    per_video = data.clips_per_video * data.crops_per_clip  # items are video-major
    video_index = torch.arange(len(labels)) // per_video
    probs, video_labels = video_level_scores(clip_probs, video_index, labels)
    top5 = probs.topk(min(5, probs.shape[1]), dim=1).indices
    return SplitScore(
        split=split,
        top1=float((probs.argmax(1) == video_labels).float().mean()),
        top5=float((top5 == video_labels[:, None]).any(1).float().mean()),
        videos=len(video_labels),
        items=len(labels),
    )


def evaluate_protocol(
    models: Mapping[int, nn.Module | str | os.PathLike[str]],
    root: str | os.PathLike[str],
    **options: Any,
) -> ProtocolResult:
    """:func:`evaluate_split` for each split's model (a module or a checkpoint path), and
    their mean. Give all three splits for the standard figure; fewer are reported as given."""
    from hartutor.train import load_checkpoint

    if not models or any(split not in (1, 2, 3) for split in models):
        raise DataError(f"models must map splits 1, 2, 3 to models, got {sorted(models)}")
    results = []
    for split, model in sorted(models.items()):
        if isinstance(model, (str, os.PathLike, Path)):
            model, _ = load_checkpoint(model)
        results.append(evaluate_split(model, root, split, **options))
    return ProtocolResult(tuple(results))
