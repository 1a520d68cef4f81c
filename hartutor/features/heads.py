"""Linear heads on frozen features: a standardised linear probe, trained deterministically."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hartutor.errors import DataError, HartutorError
from hartutor.features.cache import FeatureSet
from hartutor.features.scoring import evaluate_head
from hartutor.train import resolve_device

__all__ = ["HeadConfig", "LinearHead", "train_linear_head"]


class LinearHead(nn.Module):
    """Standardise the features, dropout, then one ``nn.Linear``: a linear probe.

    ``mean``/``std`` (buffers, from the training features) make one learning rate work for
    backbones whose features have very different scales; they are saved with the head.
    ``history`` lists each epoch's training loss and accuracy (and validation accuracy).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        dropout: float = 0.0,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 2:
            raise ValueError(
                f"need in_features >= 1 and num_classes >= 2, got {in_features}, {num_classes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features, self.num_classes = in_features, num_classes
        self.register_buffer("mean", torch.zeros(in_features) if mean is None else mean.float())
        self.register_buffer("std", torch.ones(in_features) if std is None else std.float())
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout((x - self.mean) / self.std))


@dataclass
class HeadConfig:
    """Hyper-parameters of :func:`train_linear_head` (``batch_size=None``: full batch)."""

    epochs: int = 60
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int | None = 256
    dropout: float = 0.0
    label_smoothing: float = 0.0
    standardize: bool = True
    seed: int = 0


def train_linear_head(
    train: FeatureSet,
    val: FeatureSet | None = None,
    *,
    num_classes: int,
    epochs: int = 60,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    batch_size: int | None = 256,
    dropout: float = 0.0,
    label_smoothing: float = 0.0,
    standardize: bool = True,
    seed: int = 0,
    device: str = "cpu",
) -> LinearHead:
    """Train a :class:`LinearHead` with AdamW, cosine-decayed ``lr``, cross-entropy.

    Deterministic for a ``seed`` (initialisation, shuffling and dropout use their own
    generator state; the global RNG is left as it was). ``val`` is only measured each epoch
    (``head.history``), never used to pick an epoch: on UCF101 the "validation" list is the
    test split. Returns the head in eval mode on the CPU.
    """
    if epochs < 1 or (batch_size is not None and batch_size < 1):
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr}")
    if len(train) == 0:
        raise DataError("the training feature set is empty")
    _check_labels(train, num_classes, "train")
    if val is not None:
        _check_labels(val, num_classes, "val")
        if val.dim != train.dim:
            raise DataError(f"val features are {val.dim}-d but train features are {train.dim}-d")
    dev = resolve_device(device)
    x, y = train.features.float(), train.labels.long()
    mean, std = None, None
    if standardize:
        mean = x.mean(0)
        std = x.std(0, unbiased=False).clamp_min(1e-6) if len(x) > 1 else torch.ones(x.shape[1])
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        head = LinearHead(train.dim, num_classes, dropout=dropout, mean=mean, std=std).to(dev)
        optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
        step_count = math.ceil(len(x) / (batch_size or len(x)))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * step_count)
        generator = torch.Generator().manual_seed(seed)
        x, y = x.to(dev), y.to(dev)
        for epoch in range(1, epochs + 1):
            head.train()
            order = torch.randperm(len(x), generator=generator).to(dev)
            total_loss, correct = 0.0, 0
            for batch in order.split(batch_size or len(x)):
                logits = head(x[batch])
                loss = F.cross_entropy(logits, y[batch], label_smoothing=label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += float(loss.detach()) * len(batch)
                correct += int((logits.argmax(1) == y[batch]).sum())
            if not math.isfinite(total_loss):
                raise HartutorError(
                    f"the head's loss became {total_loss} at epoch {epoch}; lower lr ({lr})"
                )
            record = {"epoch": float(epoch), "loss": total_loss / len(x), "top1": correct / len(x)}
            if val is not None:
                record["val_top1"] = evaluate_head(head, val, ks=(1,), device=str(dev)).clip.top1
            head.history.append(record)
    return head.cpu().eval()


def _check_labels(data: FeatureSet, num_classes: int, what: str) -> None:
    if len(data) and (int(data.labels.min()) < 0 or int(data.labels.max()) >= num_classes):
        raise DataError(
            f"{what} labels span {int(data.labels.min())}..{int(data.labels.max())} but "
            f"num_classes={num_classes}; relabel the subset (0..K-1) or raise num_classes"
        )
