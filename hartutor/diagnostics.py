"""Temporal diagnostics: does a model use the order of frames at all?

Evaluate the same model on the original clips, on the clips played backwards and on the clips
with their frames shuffled. A model that ignores time (a single-frame CNN) scores the same on all
three; a model that uses motion loses accuracy, most on the classes that are each other's time
reversal (sit down / stand up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hartutor._markdown import markdown_table
from hartutor.metrics import ClassificationResult

TIME_DIM = 2  # videos are (N, C, T, H, W); flow stacks are (N, 2, T-1, H, W)

Batch = Mapping[str, Any]
BatchTransform = Callable[[Batch], dict[str, Any]]


def reverse_time(video: torch.Tensor) -> torch.Tensor:
    """Play a batch of clips (N, C, T, H, W) backwards."""
    return video.flip(TIME_DIM)


def reverse_flow(flow: torch.Tensor) -> torch.Tensor:
    """The flow stack (N, 2, T-1, H, W) of the clip played backwards.

    Played backwards, field t of the new clip carries pixels from frame T-1-t to T-2-t: the
    old field T-2-t with its vectors negated. This is exact for motion that is uniform within
    a field and a first-order approximation elsewhere (the exact backward field is the forward
    one warped to the other frame); for the small per-frame motions of the synthetic set the
    difference is a fraction of a pixel.
    """
    return -flow.flip(TIME_DIM)


def reverse_batch(batch: Batch) -> dict[str, Any]:
    """Time-reverse every temporal input of a batch: the RGB clip and, if present, its flow."""
    out = {**batch, "video": reverse_time(batch["video"])}
    if "flow" in batch:
        out["flow"] = reverse_flow(batch["flow"])
    return out


def _permute_time(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    t = x.shape[TIME_DIM]
    orders = torch.stack([torch.randperm(t, generator=generator) for _ in range(len(x))])
    index = orders.view(len(x), 1, t, 1, 1).expand(-1, x.shape[1], -1, *x.shape[3:])
    return x.gather(TIME_DIM, index.to(x.device))


def shuffle_frames(seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transform that permutes the frames of each clip (N, C, T, H, W), seeded.

    The permutation is drawn per call of the returned function from a generator seeded with
    ``seed`` and the call count, so a run over a loader is reproducible.
    """
    calls = {"n": 0}

    def apply(video: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed * 7919 + calls["n"])
        calls["n"] += 1
        return _permute_time(video, generator)

    return apply


def shuffle_batch(seed: int = 0) -> BatchTransform:
    """Shuffle the frames of every clip of a batch and, if present, the fields of its flow.

    A shuffled clip has no meaningful flow between its new neighbours; what a flow stream
    still sees is the same set of motion fields in a random order, which is the flow-side
    equivalent of "the same frames, order destroyed".
    """
    shuffle_video = shuffle_frames(seed)
    shuffle_flow = shuffle_frames(seed + 1)

    def apply(batch: Batch) -> dict[str, Any]:
        out = {**batch, "video": shuffle_video(batch["video"])}
        if "flow" in batch:
            out["flow"] = shuffle_flow(batch["flow"])
        return out

    return apply


@dataclass
class TemporalDiagnostics:
    """Accuracy of one model under each temporal perturbation."""

    results: dict[str, ClassificationResult]

    @property
    def conditions(self) -> list[str]:
        return list(self.results)

    def drop(self, condition: str, k: int = 1) -> float:
        """Top-k accuracy lost relative to the original clips (positive: worse)."""
        return self.results["original"].topk[k] - self.results[condition].topk[k]

    def per_class_drop(self, condition: str) -> dict[str, float]:
        base = self.results["original"].per_class()
        other = self.results[condition].per_class()
        return {name: base[name] - other[name] for name in base}

    def to_markdown(self, k: int = 1) -> str:
        rows = [
            (
                name,
                f"{result.topk[k]:.1%}",
                "" if name == "original" else f"{self.drop(name, k):+.1%}",
            )
            for name, result in self.results.items()
        ]
        return markdown_table(("condition", f"top-{k}", "drop"), rows)


def temporal_diagnostics(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 16,
    device: str = "auto",
    class_names: list[str] | None = None,
    seed: int = 0,
    extra: Mapping[str, BatchTransform] | None = None,
    ks: Sequence[int] = (1,),
    progress: bool = True,
) -> TemporalDiagnostics:
    """Evaluate ``model`` on original, time-reversed and frame-shuffled versions of ``data``.

    Every temporal input is perturbed together: a two-stream model's flow stack is reversed
    (fields in reverse order, vectors negated) or shuffled with its clip, so its temporal
    stream is tested too. ``extra`` adds conditions, each a function of the batch dict.
    """
    from hartutor.train import evaluate

    conditions: dict[str, BatchTransform | None] = {
        "original": None,
        "reversed": reverse_batch,
        "shuffled": shuffle_batch(seed),
        **(extra or {}),
    }
    results = {
        name: evaluate(
            model,
            data,
            batch_size=batch_size,
            device=device,
            ks=ks,
            class_names=class_names,
            batch_transform=transform,
            progress=progress,
            desc=name,
        )
        for name, transform in conditions.items()
    }
    return TemporalDiagnostics(results)


@dataclass
class PairReport:
    """How a model tells apart the two classes of a pair (e.g. sit_down / stand_up)."""

    pair: tuple[str, str]
    clips: int  # clips of either class
    correct: float  # fraction predicted as their own class
    swapped: float  # fraction predicted as the other class of the pair
    elsewhere: float  # fraction predicted as some third class

    @property
    def within_pair_accuracy(self) -> float:
        """Of the clips predicted as one of the two classes, the fraction that got it right
        (0.5 is chance for a model that cannot tell the pair apart)."""
        inside = self.correct + self.swapped
        return self.correct / inside if inside else float("nan")


def pair_report(result: ClassificationResult, pairs: Sequence[tuple[str, str]]) -> list[PairReport]:
    """Per pair: correct, swapped-within-the-pair and other predictions, from a confusion matrix.

    For the synthetic set's time-reversal pairs a single-frame model's within-pair accuracy
    is near 0.5 (it cannot know the order); a model that uses time approaches 1.
    """
    if result.class_names is None:
        raise ValueError("the result has no class names; evaluate with class_names=")
    index = {name: i for i, name in enumerate(result.class_names)}
    confusion = result.confusion.double()
    reports = []
    for first, second in pairs:
        a, b = index[first], index[second]
        rows = confusion[[a, b]]
        total = float(rows.sum())
        correct = float(confusion[a, a] + confusion[b, b])
        swapped = float(confusion[a, b] + confusion[b, a])
        if total == 0:
            reports.append(PairReport((first, second), 0, *(float("nan"),) * 3))
            continue
        reports.append(
            PairReport(
                (first, second),
                int(total),
                correct / total,
                swapped / total,
                (total - correct - swapped) / total,
            )
        )
    return reports


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{value:.0%}"  # NaN: no clip predicted in the pair


def pairs_markdown(reports: Sequence[PairReport]) -> str:
    """A markdown table of :func:`pair_report`'s rows ("n/a" where nothing was predicted)."""
    header = ("pair", "clips", "correct", "swapped", "other", "within-pair accuracy")
    rows = [
        (
            f"{r.pair[0]} / {r.pair[1]}",
            r.clips,
            *(_percent(v) for v in (r.correct, r.swapped, r.elsewhere, r.within_pair_accuracy)),
        )
        for r in reports
    ]
    return markdown_table(header, rows)
