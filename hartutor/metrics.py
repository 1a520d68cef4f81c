"""Classification metrics for clips: top-k accuracy, per-class accuracy, confusion matrix,
and video-level scores from clip scores (multi-clip testing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> dict[int, int]:
    """How many rows of ``scores`` (N, K) have their label among the top ``k`` classes, per k.

    A k larger than the number of classes counts as the number of classes.
    """
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores must be (N, K) and labels (N,), got {tuple(scores.shape)} and "
            f"{tuple(labels.shape)}"
        )
    max_k = min(max(ks), scores.shape[1])
    top = scores.topk(max_k, dim=1).indices
    hits = top.eq(labels[:, None])
    return {k: int(hits[:, : min(k, max_k)].any(dim=1).sum()) for k in ks}


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts (num_classes, num_classes): rows are true classes, columns predicted ones."""
    index = labels.long() * num_classes + predictions.long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass
class ClassificationResult:
    """Everything :func:`hartutor.train.evaluate` measures on one dataset."""

    num_samples: int
    topk: dict[int, float]
    confusion: torch.Tensor
    loss: float | None = None
    class_names: list[str] | None = None
    predictions: torch.Tensor | None = field(default=None, repr=False)
    labels: torch.Tensor | None = field(default=None, repr=False)

    @property
    def top1(self) -> float:
        return self.topk.get(1, float("nan"))

    @property
    def top5(self) -> float:
        return self.topk.get(5, float("nan"))

    @property
    def per_class_accuracy(self) -> torch.Tensor:
        """Recall of each class (NaN for classes absent from the data)."""
        support = self.confusion.sum(dim=1).double()
        correct = self.confusion.diagonal().double()
        return torch.where(support > 0, correct / support.clamp(min=1), torch.nan)

    def per_class(self) -> dict[str, float]:
        names = self.class_names or [str(i) for i in range(self.confusion.shape[0])]
        return dict(zip(names, self.per_class_accuracy.tolist(), strict=True))

    def summary(self) -> str:
        parts = [f"n={self.num_samples}"]
        parts += [f"top{k}={v:.1%}" for k, v in sorted(self.topk.items())]
        if self.loss is not None:
            parts.append(f"loss={self.loss:.4f}")
        return "  ".join(parts)


def accumulate(
    scores: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    *,
    num_classes: int,
    ks: Sequence[int] = (1, 5),
    loss: float | None = None,
    class_names: list[str] | None = None,
) -> ClassificationResult:
    """Build a :class:`ClassificationResult` from per-batch scores and labels."""
    all_scores = torch.cat(list(scores)) if scores else torch.empty(0, num_classes)
    all_labels = torch.cat(list(labels)) if labels else torch.empty(0, dtype=torch.long)
    n = int(all_labels.numel())
    correct = topk_correct(all_scores, all_labels, ks) if n else dict.fromkeys(ks, 0)
    predictions = all_scores.argmax(dim=1) if n else all_labels
    return ClassificationResult(
        num_samples=n,
        topk={k: (correct[k] / n if n else float("nan")) for k in ks},
        confusion=confusion_matrix(predictions, all_labels, num_classes),
        loss=loss,
        class_names=class_names,
        predictions=predictions,
        labels=all_labels,
    )


def video_level_scores(
    scores: torch.Tensor, video_index: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average clip scores per video (multi-clip testing): returns (scores, labels) per video."""
    videos, inverse = torch.unique(video_index, return_inverse=True)
    summed = torch.zeros(len(videos), scores.shape[1], dtype=scores.dtype)
    summed.index_add_(0, inverse, scores)
    counts = torch.bincount(inverse, minlength=len(videos)).clamp(min=1)
    video_labels = torch.zeros(len(videos), dtype=labels.dtype)
    video_labels[inverse] = labels
    return summed / counts[:, None], video_labels
