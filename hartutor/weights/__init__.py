"""Pretrained weights: registry, cache and downloads, TF checkpoint reader, loaders.

>>> from hartutor.weights import list_weights, load_pretrained
>>> model = load_pretrained("i3d_rgb_kinetics400_imagenet")  # doctest: +SKIP
"""

from __future__ import annotations

from hartutor.weights.download import RemoteFile, download_url, fetch, sha256sum, verify_file
from hartutor.weights.loaders import (
    describe,
    load_pretrained,
    load_state_dict_checked,
    load_tf_i3d_variables,
    load_torch_state_dict,
    standin_weights,
    weights_files,
)
from hartutor.weights.matching import CheckpointMatch, VariableMatch, match_tf_checkpoint
from hartutor.weights.registry import (
    I3DWeights,
    Preprocessing,
    Res3DWeights,
    WeightsEntry,
    WeightsEnum,
    XceptionWeights,
    get_weights,
    list_weights,
)
from hartutor.weights.tf_checkpoint import (
    TensorEntry,
    load_tf_checkpoint,
    read_tf_checkpoint_index,
    write_tf_checkpoint,
)

__all__ = [
    "CheckpointMatch",
    "I3DWeights",
    "Preprocessing",
    "RemoteFile",
    "Res3DWeights",
    "TensorEntry",
    "VariableMatch",
    "WeightsEntry",
    "WeightsEnum",
    "XceptionWeights",
    "describe",
    "download_url",
    "fetch",
    "get_weights",
    "list_weights",
    "load_pretrained",
    "load_state_dict_checked",
    "load_tf_checkpoint",
    "load_tf_i3d_variables",
    "load_torch_state_dict",
    "match_tf_checkpoint",
    "read_tf_checkpoint_index",
    "sha256sum",
    "standin_weights",
    "verify_file",
    "weights_files",
    "write_tf_checkpoint",
]


def __getattr__(name: str) -> object:
    """``ASSETS`` (DeepMind's label files) is :data:`hartutor.labels.LABEL_FILES` now."""
    if name == "ASSETS":
        from hartutor.labels import LABEL_FILES

        return LABEL_FILES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
