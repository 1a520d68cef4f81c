"""The frozen-feature route: extract backbone features once, then train linear heads on them.

Fine-tuning I3D and Xception end to end on UCF101 takes many GPU hours; running each frozen
backbone once over the dataset (one forward pass per clip, at most hours on one GPU; see
``docs/frozen_features.md`` for the estimates) and training a linear classifier on its pooled
features (seconds) is far cheaper. The poster's late fusion is then the fusion of the two heads'
scores. On a laptop the same code runs on a subset of classes.

1. :func:`extract_features`: a frozen model in eval mode over a dataset of pytorchvideo-style
   dicts -> a :class:`FeatureSet` (features ``(N, D)`` float32, labels, ``video_index`` for
   multi-clip test sets, clip metadata). Features are the model's pooled pre-logits
   (``forward_head(forward_features(x), pre_logits=True)``): 1024-d for I3D, the backbone
   width averaged over the sampled frames for the frame models (2048-d for Xception). With
   ``cache=DIR`` they are stored (float16) in one ``.npz`` per (model weights, dataset,
   preprocessing), written atomically, and a long extraction writes shards as it goes, so an
   interrupted run resumes where it stopped.
2. :func:`train_linear_head`: ``nn.Linear`` (with feature standardisation and optional
   dropout) trained with cross-entropy, deterministic for a seed.
3. :func:`evaluate_head` / :func:`evaluate_scores`: top-1/top-5 per clip and, with
   ``video_index``, per video (clip softmax scores averaged, as multi-clip testing does).
4. :func:`~hartutor.models.fusion.fuse_scores`: the late-fusion rule of
   :class:`hartutor.models.fusion.LateFusion` (softmax mean or logit sum) applied to the
   heads' scores.
5. :func:`reproduce_fusion` composes them; :func:`pretrained_stream` wires a registered
   weights entry to UCF101 with that entry's preprocessing. See ``docs/frozen_features.md``.
"""

from __future__ import annotations

from hartutor.features.cache import (
    FEATURES_FORMAT,
    FeatureSet,
    dataset_fingerprint,
    feature_cache_path,
    model_fingerprint,
)
from hartutor.features.extract import FeatureFn, extract_features, pre_logits_features
from hartutor.features.heads import HeadConfig, LinearHead, train_linear_head
from hartutor.features.recipes import (
    FusionReport,
    StreamData,
    StreamResult,
    pretrained_stream,
    reproduce_fusion,
)
from hartutor.features.scoring import (
    FeatureEvaluation,
    evaluate_head,
    evaluate_scores,
    head_scores,
    video_scores,
)
from hartutor.models.fusion import fuse_scores

#: The old name of :func:`hartutor.models.fusion.fuse_scores` (once a pass-through here).
fuse_heads = fuse_scores

__all__ = [
    "FEATURES_FORMAT",
    "FeatureEvaluation",
    "FeatureFn",
    "FeatureSet",
    "FusionReport",
    "HeadConfig",
    "LinearHead",
    "StreamData",
    "StreamResult",
    "dataset_fingerprint",
    "evaluate_head",
    "evaluate_scores",
    "extract_features",
    "feature_cache_path",
    "fuse_heads",
    "fuse_scores",
    "head_scores",
    "model_fingerprint",
    "pre_logits_features",
    "pretrained_stream",
    "reproduce_fusion",
    "train_linear_head",
    "video_scores",
]
