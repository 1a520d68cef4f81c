"""End-to-end recipes: the poster's late fusion by the frozen-feature route, and UCF101 wiring."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from hartutor.errors import DataError, ModelError
from hartutor.features.cache import FeatureSet
from hartutor.features.extract import FeatureFn, extract_features
from hartutor.features.heads import HeadConfig, LinearHead, train_linear_head
from hartutor.features.scoring import (
    FeatureEvaluation,
    FusionMode,
    evaluate_head,
    evaluate_scores,
    video_scores,
)
from hartutor.metrics import accumulate
from hartutor.models.fusion import fuse_scores

__all__ = ["FusionReport", "StreamData", "StreamResult", "pretrained_stream", "reproduce_fusion"]


@dataclass
class StreamData:
    """One stream of a fusion: a frozen model and the datasets its features come from."""

    model: nn.Module
    train: Dataset
    test: Dataset
    feature_fn: FeatureFn | None = None
    preprocessing: str | Mapping[str, Any] | None = None
    batch_size: int | None = None


@dataclass
class StreamResult:
    """What :func:`reproduce_fusion` produced for one stream."""

    train: FeatureSet
    test: FeatureSet
    head: LinearHead
    evaluation: FeatureEvaluation


@dataclass
class FusionReport:
    """Per-stream results and the fused result (video level when the clips differ)."""

    streams: dict[str, StreamResult]
    fused: FeatureEvaluation
    mode: FusionMode
    weights: dict[str, float] | None

    def table(self) -> str:
        """A Markdown table of clip and video top-1/top-5 per stream and fused."""
        from hartutor._markdown import markdown_table

        results = {name: r.evaluation for name, r in self.streams.items()}
        results[f"fusion ({self.mode})"] = self.fused
        rows = []
        for name, ev in results.items():
            cells = [name]
            for result in (ev.clip, ev.video):
                cells += (
                    ["—", "—"] if result is None else [f"{result.top1:.1%}", f"{result.top5:.1%}"]
                )
            rows.append(cells)
        header = ("", "clip top-1", "clip top-5", "video top-1", "video top-5")
        return markdown_table(header, rows)


def _clips_align(sets: Sequence[FeatureSet]) -> bool:
    first = sets[0]

    def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and a.equal(b))

    return all(
        len(s) == len(first)
        and s.labels.equal(first.labels)
        and same(s.video_index, first.video_index)
        and same(s.clip_index, first.clip_index)
        for s in sets[1:]
    )


def _fuse_evaluations(
    evaluations: Mapping[str, FeatureEvaluation],
    tests: Mapping[str, FeatureSet],
    *,
    weights: Mapping[str, float] | None,
    mode: FusionMode,
    ks: Sequence[int],
    class_names: list[str] | None,
    num_classes: int,
) -> FeatureEvaluation:
    sets = list(tests.values())
    if _clips_align(sets):
        fused = fuse_scores(
            {n: e.scores for n, e in evaluations.items()}, weights=weights, mode=mode
        )
        return evaluate_scores(
            fused.log_probabilities,
            sets[0],
            ks=ks,
            class_names=class_names,
            num_classes=num_classes,
        )
    # Different clips per stream (e.g. 64-frame I3D clips, 8-frame Xception samples): fuse
    # each stream's per-video scores, matched by video.
    if any(s.video_index is None for s in sets):
        raise DataError(
            "the streams' test sets differ clip by clip and have no video_index to match "
            "videos by; build them from the same videos with UCF101(clip_sampling='uniform')"
        )
    per_video = {n: video_scores(e.scores, tests[n], mode=mode) for n, e in evaluations.items()}
    (_, labels, ids), *others = per_video.values()
    for _, other_labels, other_ids in others:
        if not (other_ids.equal(ids) and other_labels.equal(labels)):
            raise DataError(
                "the streams' test sets do not hold the same videos with the same labels; "
                "build every stream's test set from the same split"
            )
    fused = fuse_scores({n: v[0] for n, v in per_video.items()}, weights=weights, mode=mode)
    video = accumulate(
        [fused.log_probabilities], [labels], num_classes=num_classes, ks=ks, class_names=class_names
    )
    return FeatureEvaluation(None, video, fused.log_probabilities, "logits")


def reproduce_fusion(
    streams: Mapping[str, StreamData],
    *,
    num_classes: int,
    cache: str | os.PathLike[str] | None = None,
    head: HeadConfig | None = None,
    weights: Mapping[str, float] | None = None,
    mode: FusionMode = "softmax_mean",
    batch_size: int = 8,
    device: str = "auto",
    num_workers: int = 0,
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    progress: bool = True,
) -> FusionReport:
    """The poster's late fusion by the frozen-feature route.

    For each stream: features of its train and test sets (:func:`extract_features`, cached
    under ``cache``), a linear head on the train features (:func:`train_linear_head` with
    ``head``), its test accuracy; then the heads' test scores fused
    (:func:`~hartutor.models.fusion.fuse_scores`).
    Streams whose test sets hold the same clips are fused clip by clip; otherwise each
    stream's clip scores are first averaged per video and the videos are fused.
    For UCF101 see :func:`pretrained_stream` and ``docs/frozen_features.md``.
    """
    if not streams:
        raise ModelError("reproduce_fusion needs at least one stream")
    config = head or HeadConfig()
    head_kwargs = dataclasses.asdict(config)
    results: dict[str, StreamResult] = {}
    for name, stream in streams.items():
        sets = {}
        for subset, data in (("train", stream.train), ("test", stream.test)):
            sets[subset] = extract_features(
                stream.model,
                data,
                batch_size=stream.batch_size or batch_size,
                device=device,
                cache=cache,
                name=f"{name}-{subset}",
                feature_fn=stream.feature_fn,
                preprocessing=stream.preprocessing,
                num_workers=num_workers,
                progress=progress,
            )
        trained = train_linear_head(sets["train"], num_classes=num_classes, **head_kwargs)
        evaluation = evaluate_head(trained, sets["test"], ks=ks, class_names=class_names)
        results[name] = StreamResult(sets["train"], sets["test"], trained, evaluation)
    fused = _fuse_evaluations(
        {n: r.evaluation for n, r in results.items()},
        {n: r.test for n, r in results.items()},
        weights=weights,
        mode=mode,
        ks=ks,
        class_names=class_names,
        num_classes=num_classes,
    )
    return FusionReport(results, fused, mode, dict(weights) if weights is not None else None)


# --------------------------------------------------------------------------- UCF101 wiring


def pretrained_stream(
    weights: str,
    root: str | os.PathLike[str],
    *,
    split: int = 1,
    num_frames: int | None = None,
    frame_stride: int = 1,
    train_clips_per_video: int = 1,
    test_clips_per_video: int = 1,
    classes: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    batch_size: int | None = None,
) -> StreamData:
    """A registered weights entry as a frozen stream over UCF101 (or a folder in its layout).

    The model comes from :func:`hartutor.weights.load_pretrained` (``path``: a local copy of
    the weights). Both subsets are read with the entry's preprocessing (shorter side
    ``resize_size``, centre ``crop_size``, its mean/std) and uniform clip sampling, so the
    features are reproducible and an interrupted extraction can resume: the training set
    gives ``train_clips_per_video`` evenly spread clips per video, the test set
    ``test_clips_per_video``. ``num_frames`` defaults to the entry's training clip length
    (64 for I3D) or the model's input (8 frames for Xception); ``frame_stride`` spreads them
    (8 frames with stride 8 span the 57 frames of an I3D clip). ``classes``: keep only these
    class names (a laptop subset); labels stay UCF101's.
    """
    from hartutor.ucf101 import UCF101
    from hartutor.weights import get_weights, load_pretrained

    entry = get_weights(weights)
    model = load_pretrained(entry, path=path, download=download)
    pre = entry.preprocessing
    spec = getattr(model, "input_spec", None)
    frames = num_frames or pre.num_frames or (spec.num_frames if spec is not None else None)
    if frames is None:
        raise ModelError(f"{entry.name} does not say how many frames it takes; pass num_frames")
    transform = pre.normalize("video")

    def subset(name: Literal["train", "test"], clips: int) -> UCF101:
        return UCF101(
            root,
            split=split,
            subset=name,
            num_frames=frames,
            frame_stride=frame_stride,
            size=pre.resize_size,
            crop_size=pre.crop_size,
            clip_sampling="uniform",
            clips_per_video=clips,
            transform=transform,
            classes=classes,
        )

    return StreamData(
        model=model,
        train=subset("train", train_clips_per_video),
        test=subset("test", test_clips_per_video),
        preprocessing={"weights": entry.name, "preprocessing": pre.description},
        batch_size=batch_size,
    )
