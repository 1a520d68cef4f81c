"""Feature extraction: a frozen model over a dataset, once, into a cached :class:`FeatureSet`."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from hartutor.errors import DataError, HartutorError, ModelError
from hartutor.features.cache import (
    FEATURES_FORMAT,
    Chunk,
    FeatureSet,
    StoreDtype,
    dataset_fingerprint,
    describe,
    feature_cache_path,
    json_digest,
    merge_chunks,
    model_fingerprint,
    read_shards,
    round_to,
    shard_dir,
    write_shard,
)
from hartutor.train import model_inputs, resolve_device

__all__ = ["FeatureFn", "extract_features", "pre_logits_features"]

#: ``feature_fn(model, inputs) -> (N, D)``; ``inputs`` is what :func:`hartutor.train.model_inputs`
#: gives (a tensor, or a dict for multi-input models).
FeatureFn = Callable[[nn.Module, Any], torch.Tensor]
_NAME_KEY = "video_name"


def pre_logits_features(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Default ``feature_fn``: ``forward_head(forward_features(x), pre_logits=True)``.

    For :class:`~hartutor.models.i3d.InceptionI3d` the pooled Mixed_5c features (1024 for the
    paper model); for :class:`~hartutor.models.frame.FrameClassifier` (Xception, single
    frame) the backbone's pooled features averaged over the frames it samples; for C3D, LRCN
    and the two-stream streams their own pre-logits layer.
    """
    from hartutor.models.fusion import LateFusion

    if isinstance(model, LateFusion):
        raise ModelError(
            "a LateFusion has no single feature vector: extract each stream on its own "
            "(fusion.streams['i3d'], fusion.streams['xception']) and fuse the heads"
        )
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
        raise ModelError(
            f"{type(model).__name__} has no forward_features/forward_head(pre_logits=True); "
            "pass feature_fn=lambda model, x: ... returning (N, D) features"
        )
    return model.forward_head(model.forward_features(inputs), pre_logits=True)


def _feature_fn_name(feature_fn: FeatureFn) -> str:
    module = getattr(feature_fn, "__module__", "")
    return f"{module}.{getattr(feature_fn, '__qualname__', repr(feature_fn))}"


def _collect(batch: Mapping[str, Any], key: str) -> torch.Tensor | None:
    if key not in batch:
        return None
    return torch.as_tensor(batch[key]).long().reshape(-1).cpu()


def extract_features(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: str = "auto",
    cache: str | os.PathLike[str] | None = None,
    name: str | None = None,
    feature_fn: FeatureFn | None = None,
    preprocessing: str | Mapping[str, Any] | None = None,
    dataset_key: str | None = None,
    class_names: Sequence[str] | None = None,
    num_workers: int = 0,
    shard_every: int = 100,
    store_dtype: StoreDtype = "float16",
    amp: bool | Literal["auto"] = "auto",
    progress: bool = True,
) -> FeatureSet:
    """Run the frozen ``model`` over ``dataset`` once and return its features per sample.

    ``model`` runs in eval mode under ``torch.inference_mode`` (its train/eval mode is
    restored afterwards), made fast on a CPU by :func:`hartutor.accel.optimize` (in place;
    the same features); samples are read in order. ``feature_fn(model, inputs)`` gives the
    ``(N, D)`` features (default :func:`pre_logits_features`). Features are rounded to
    ``store_dtype`` (float16 halves disk and memory; pooled activations fit it easily).

    ``cache``: a folder. The features are stored in ``<cache>/<name>-<key>.npz``, ``key``
    hashing the model's :func:`model_fingerprint` (weights included), the dataset's
    :func:`dataset_fingerprint` (or ``dataset_key``), ``preprocessing`` (any description of
    what else shaped the inputs) and ``feature_fn``; a second call with the same key reads the
    file without running the model. Every ``shard_every`` batches the progress is written to
    ``<name>-<key>.partial/``, and a call after an interruption continues from there (the
    dataset must give the same samples in the same order: use uniform clip sampling).
    A corrupt cache file is reported with a warning and extracted again. ``amp`` ("auto": on
    CUDA) runs the model in bfloat16 autocast; it and the device are not part of the key.
    """
    if batch_size < 1 or shard_every < 1:
        raise ValueError(
            f"batch_size and shard_every must be >= 1, got {batch_size}, {shard_every}"
        )
    if store_dtype not in ("float16", "float32"):
        raise ValueError(f"store_dtype must be 'float16' or 'float32', got {store_dtype!r}")
    feature_fn = feature_fn or pre_logits_features
    name = name or type(model).__name__
    described = {"key": dataset_key} if dataset_key is not None else dataset_fingerprint(dataset)
    total = len(dataset)  # type: ignore[arg-type]
    if total == 0:
        raise DataError(f"dataset {type(dataset).__name__} is empty: nothing to extract")
    from hartutor.accel import optimize

    fingerprint = model_fingerprint(model)
    optimize(model)
    identity = {
        "format": FEATURES_FORMAT,
        "model": fingerprint,
        "dataset": described,
        "preprocessing": describe(preprocessing),
        "feature_fn": _feature_fn_name(feature_fn),
        "store_dtype": store_dtype,
    }
    key = json_digest(identity)
    names = list(class_names) if class_names is not None else _class_names_of(dataset)
    final = feature_cache_path(cache, name, key) if cache is not None else None
    if final is not None and final.exists():
        try:
            cached = FeatureSet.load(final, key=key)
        except DataError as err:
            warnings.warn(f"{err}; extracting the features again", stacklevel=2)
        else:
            if len(cached) == total:
                return cached
            warnings.warn(
                f"{final} holds {len(cached)} samples but the dataset has {total}; "
                "extracting again",
                stacklevel=2,
            )

    shards = shard_dir(final) if final is not None else None
    chunks = read_shards(shards, key) if shards is not None else []
    done = chunks[-1].stop if chunks else 0
    if done > total:
        chunks, done = [], 0
        if shards is not None:
            shutil.rmtree(shards, ignore_errors=True)
    started = time.perf_counter()
    if done < total:
        chunks += _run_model(
            model,
            dataset,
            start=done,
            batch_size=batch_size,
            device=device,
            feature_fn=feature_fn,
            num_workers=num_workers,
            shard_every=shard_every,
            shards=shards,
            key=key,
            store_dtype=store_dtype,
            amp=amp,
            progress=progress,
            desc=f"features {name}",
        )
    merged = merge_chunks(chunks)
    meta = {
        "key": key,
        "name": name,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_sha256": fingerprint,
        "dataset": described,
        "preprocessing": identity["preprocessing"],
        "feature_fn": identity["feature_fn"],
        "store_dtype": store_dtype,
        "num_samples": total,
        "dim": int(merged.features.shape[1]),
        "resumed_from": done,
        "seconds": round(time.perf_counter() - started, 3),
    }
    result = FeatureSet(
        merged.features,
        merged.labels,
        merged.video_index,
        merged.clip_index,
        merged.video_names,
        names,
        meta,
    )
    if final is not None:
        result.save(final, dtype=store_dtype)
        if shards is not None:
            shutil.rmtree(shards, ignore_errors=True)
    return result


def _class_names_of(dataset: Dataset) -> list[str] | None:
    names = getattr(dataset, "class_names", None)
    if names is None and isinstance(dataset, Subset):
        return _class_names_of(dataset.dataset)
    return [str(n) for n in names] if names is not None else None


def _run_model(
    model: nn.Module,
    dataset: Dataset,
    *,
    start: int,
    batch_size: int,
    device: str,
    feature_fn: FeatureFn,
    num_workers: int,
    shard_every: int,
    shards: Path | None,
    key: str,
    store_dtype: StoreDtype,
    amp: bool | Literal["auto"],
    progress: bool,
    desc: str,
) -> list[Chunk]:
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    use_amp = dev.type == "cuda" and amp in (True, "auto")
    total = len(dataset)  # type: ignore[arg-type]
    data = dataset if start == 0 else Subset(dataset, range(start, total))
    loader = DataLoader(
        data,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=dev.type == "cuda",
    )
    was_training = model.training
    model = model.to(dev).eval()
    chunks: list[Chunk] = []
    pending: list[Chunk] = []
    position, width = start, None
    try:
        with torch.inference_mode(), _autocast(dev, use_amp):
            bar = tqdm(loader, desc=desc, total=len(loader), disable=not progress, leave=False)
            for step, batch in enumerate(bar, 1):
                out = feature_fn(model, model_inputs(model, batch, dev))
                chunk = _chunk_of(batch, out, position, width, store_dtype)
                width = chunk.features.shape[1]
                position = chunk.stop
                pending.append(chunk)
                if shards is not None and step % shard_every == 0:
                    shard = merge_chunks(pending)
                    write_shard(shards, shard, key, store_dtype)
                    chunks.append(shard)
                    pending = []
    finally:
        model.train(was_training)
    if pending:
        chunks.append(merge_chunks(pending))
    return chunks


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _chunk_of(
    batch: Mapping[str, Any],
    out: Any,
    position: int,
    width: int | None,
    store_dtype: StoreDtype,
) -> Chunk:
    labels = _collect(batch, "label")
    if labels is None:
        raise DataError("samples have no 'label': feature sets need labels to train heads on")
    where = f"samples {position}-{position + labels.numel() - 1}"
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != labels.numel():
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"feature_fn must return (batch, D) features, got {shape} for {where} "
            f"({labels.numel()} samples)"
        )
    if width is not None and out.shape[1] != width:
        raise ModelError(f"feature width changed from {width} to {out.shape[1]} at {where}")
    features = out.detach().float().cpu()
    if not torch.isfinite(features).all():
        raise HartutorError(
            f"the model gave NaN/inf features for {where}; check those inputs and the weights"
        )
    names = batch.get(_NAME_KEY)
    return Chunk(
        position,
        round_to(features, store_dtype),
        labels,
        _collect(batch, "video_index"),
        _collect(batch, "clip_index"),
        [str(n) for n in names] if isinstance(names, list | tuple) else None,
    )
