"""The synthetic transfer world's label sets and its target -> video-source mapping.

The same form as :mod:`hartutor.labels.ucf101`: :data:`TARGET_TO_VIDEO_SOURCE` gives, for each
target class (UCF101's role), the video-source classes (Kinetics' role) that are the same
activity, and :func:`target_topk_from_source` scores a source-label classifier on target clips
with the very scorer :func:`~hartutor.labels.ucf101.ucf101_topk_from_kinetics` uses, so the
course's Table 1 is computed the same way in both worlds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hartutor.labels.ucf101 import KineticsTransferScore, topk_through_mapping
from hartutor.synth.world import TARGET_CLASSES, TARGET_TO_VIDEO_SOURCE, VIDEO_SOURCE_CLASSES

__all__ = [
    "TARGET_CLASSES",
    "TARGET_TO_VIDEO_SOURCE",
    "VIDEO_SOURCE_CLASSES",
    "target_topk_from_source",
]


def target_topk_from_source(
    source_probs: np.ndarray | Sequence[Sequence[float]],
    target_labels: np.ndarray | Sequence[int] | Sequence[str],
    *,
    k: Sequence[int] = (1, 5),
) -> KineticsTransferScore:
    """Top-k of a video-source classifier (17 classes) on target clips (13 classes), through
    :data:`TARGET_TO_VIDEO_SOURCE`; ``phone_call`` clips have no source equivalent and are
    left out (the result says how many)."""
    return topk_through_mapping(
        source_probs,
        target_labels,
        mapping=TARGET_TO_VIDEO_SOURCE,
        target_classes=TARGET_CLASSES,
        source_labels=VIDEO_SOURCE_CLASSES,
        k=k,
        label_set="video source",
        target_set="target",
    )
