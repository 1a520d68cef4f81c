"""Pretrained-weights stand-ins: each registry entry's files in their real format, random values.

- piergiaj's ``.pt`` files: a plain state dict saved with PyTorch's legacy (pre-1.6, non-zip)
  serialisation, as those 2018 files are;
- DeepMind's TF checkpoints: the index + data-shard pair with DeepMind's variable names and
  scope (``RGB/inception_i3d/...``), written by :func:`~hartutor.weights.write_tf_checkpoint`;
- timm's Xception: ``legacy_xception``'s state dict with timm's key names.

Files are laid out as a mirror (``<host>/<path>`` of each real URL) with a ``SHA256SUMS``
manifest whose first line declares them stand-ins (:mod:`hartutor.weights.mirror`), so that
``HARTUTOR_MIRROR`` plus :func:`hartutor.standins.serve` rehearse ``hartutor weights download``
(checksums, resume) and loading exactly as with the real files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hartutor.weights.download import sha256sum
from hartutor.weights.mirror import MANIFEST_NAME, STANDIN_HEADER, mirror_path
from hartutor.weights.registry import ASSETS, WeightsEntry, get_weights


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with every float tensor drawn at random, at the scale trained weights have.

    Convolution and linear weights: He-normal (fan-in); biases and BatchNorm means: small;
    BatchNorm variances near 1; BatchNorm scales exactly 1 (TF's I3D has none). Random values
    at a realistic scale keep a deep network's activations finite, as real weights do: weights
    drawn all positive made the full-size I3D's features overflow to inf.
    """
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                continue
            stem = name.rsplit(".", 1)[0]
            is_norm = f"{stem}.running_var" in state
            noise = torch.randn(tensor.shape, generator=generator)
            if is_norm and name.endswith(".weight"):
                tensor.fill_(1.0)
            elif name.endswith("running_var"):
                tensor.copy_(1.0 + 0.1 * noise.abs())
            elif tensor.dim() >= 2:
                tensor.copy_(noise * (2.0 / tensor[0].numel()) ** 0.5)
            else:  # biases, BatchNorm shifts and means
                tensor.copy_(0.01 * noise)
    return model


def _calibrate_batchnorm(model: nn.Module, example: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics from a forward pass over ``example``, so that
    each layer's output is normalised as trained weights' statistics would normalise it."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(example)
    model.eval()


def source_model(entry: WeightsEntry, seed: int) -> nn.Module:
    """The randomised network whose weights a stand-in of ``entry`` holds.

    Random weights at a trained network's scale (:func:`randomised`), BatchNorm statistics
    measured on random clips: features then stay within float16's range through the deep
    full-size networks, as with the real weights (the frozen-feature route stores float16).
    """
    generator = torch.Generator().manual_seed(seed)
    if entry.format == "timm_state_dict":
        import timm

        name = entry.meta.get("timm_model", "legacy_xception")
        model = timm.create_model(name, pretrained=False, num_classes=entry.num_classes)
        example = torch.rand(2, 3, 160, 160, generator=generator) * 2 - 1
    else:
        from hartutor.models import build_model

        model = build_model(entry.model, **dict(entry.model_kwargs))
        channels = 2 if entry.modality == "flow" else 3
        example = torch.rand(2, channels, 8, 112, 112, generator=generator) * 2 - 1
    randomised(model, seed)
    _calibrate_batchnorm(model, example)
    if entry.format == "tf_checkpoint":  # TF's I3D has no BatchNorm scale: keep it 1
        for name, tensor in model.state_dict().items():
            if name.endswith("bn.weight"):
                tensor.fill_(1.0)
    return model


def write_entry(
    entry: WeightsEntry | str, folder: str | os.PathLike[str], *, seed: int = 0
) -> list[Path]:
    """Write the stand-in files of ``entry`` into ``folder`` under their real file names."""
    entry = get_weights(entry)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = source_model(entry, seed)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if entry.format == "torch_state_dict":  # piergiaj: legacy pickle, as PyTorch 0.3 wrote
        path = folder / entry.files[0].filename
        torch.save(state, path, _use_new_zipfile_serialization=False)
        return [path]
    if entry.format == "timm_state_dict":
        path = folder / entry.files[0].filename
        torch.save(state, path)
        return [path]
    from hartutor.models.i3d import i3d_state_dict_to_tf
    from hartutor.weights.tf_checkpoint import write_tf_checkpoint

    scope = entry.tf_scope if entry.tf_scope is not None else ""
    variables = i3d_state_dict_to_tf(model.state_dict(), scope=scope)
    variables[f"{scope}global_step"] = np.array(0, dtype=np.int64)
    index_name = entry.files[0].filename  # model.ckpt.index
    prefix = write_tf_checkpoint(folder / index_name.removesuffix(".index"), variables)
    return [prefix.with_name(f.filename) for f in entry.files]


def write_mirror(
    folder: str | os.PathLike[str],
    *,
    weights: Iterable[str] = (),
    label_maps: Mapping[str, str | os.PathLike[str]] | None = None,
    extra: Mapping[str, str | os.PathLike[str]] | None = None,
    seed: int = 0,
) -> Path:
    """Lay out a stand-in mirror in ``folder``: the named weights, label maps, extra files.

    ``label_maps``: ``ASSETS`` key -> a local copy of the real label file (DeepMind's label
    maps are small text files; their real bytes keep their real checksums). ``extra``: any
    original URL -> local file (the UCF101 archives of :func:`~hartutor.standins.pack_ucf101`).
    Writes the ``SHA256SUMS`` manifest last; returns ``folder``.
    """
    from hartutor._fileio import atomic_write_text

    root = Path(folder)
    placed: dict[str, Path] = {}
    for name in weights:
        entry = get_weights(name)
        tmp = root / ".standin-build" / entry.name
        written = write_entry(entry, tmp, seed=seed)
        for remote, path in zip(entry.files, written, strict=True):
            target = root / mirror_path(remote.url)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            placed[mirror_path(remote.url)] = target
        shutil.rmtree(tmp, ignore_errors=True)
    sources = {ASSETS[key].url: path for key, path in (label_maps or {}).items()}
    sources.update(extra or {})
    for url, path in sources.items():
        target = root / mirror_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        placed[mirror_path(url)] = target
    shutil.rmtree(root / ".standin-build", ignore_errors=True)
    lines = [STANDIN_HEADER]
    lines += [f"{sha256sum(p)}  {p.stat().st_size}  {key}" for key, p in sorted(placed.items())]
    atomic_write_text(root / MANIFEST_NAME, "\n".join(lines) + "\n")
    return root
