"""The synthetic action dataset: stick-figure actions with exact optical flow.

The course's embedded default dataset (real HAR datasets cannot be downloaded on Binder): small,
deterministic from a seed, and built to teach that some actions cannot be told apart from a
single frame. See ``datasets/synthetic/README.md`` for the classes and the flow definition.
``hartutor.synth.world`` adds the transfer world (held objects, a target set in three
families, an image and a video source) without changing a bit of the original classes.
"""

from __future__ import annotations

from hartutor.synth.actions import (
    ACTIONS,
    CLASS_NAMES,
    REVERSAL_PAIRS,
    TEMPO_PAIRS,
    WORLD_ACTIONS,
    WORLD_CLASS_NAMES,
    WORLD_REVERSAL_PAIRS,
    Action,
    get_action,
    label_of,
)
from hartutor.synth.dataset import TRAINING_CACHE_MB, SyntheticActions, clip_seed
from hartutor.synth.generate import ManifestEntry, generate_dataset, load_manifest, plan_dataset
from hartutor.synth.render import DEFAULT_FPS, Appearance, ClipParams, SynthClip, render_clip

__all__ = [
    "ACTIONS",
    "CLASS_NAMES",
    "DEFAULT_FPS",
    "REVERSAL_PAIRS",
    "TEMPO_PAIRS",
    "TRAINING_CACHE_MB",
    "WORLD_ACTIONS",
    "WORLD_CLASS_NAMES",
    "WORLD_REVERSAL_PAIRS",
    "Action",
    "Appearance",
    "ClipParams",
    "ManifestEntry",
    "SynthClip",
    "SyntheticActions",
    "clip_seed",
    "generate_dataset",
    "get_action",
    "label_of",
    "load_manifest",
    "plan_dataset",
    "render_clip",
]
