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
4. :func:`fuse_heads`: the late-fusion rule of :class:`hartutor.models.fusion.LateFusion`
   (softmax mean or logit sum) applied to the heads' scores.
5. :func:`reproduce_fusion` composes them; :func:`pretrained_stream` wires a registered
   weights entry to UCF101 with that entry's preprocessing. See ``docs/frozen_features.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from hartutor._fileio import atomic_path
from hartutor.errors import DataError, HartutorError, ModelError
from hartutor.metrics import ClassificationResult, accumulate
from hartutor.train import model_inputs, resolve_device
from hartutor.ucf101 import video_level_scores

if TYPE_CHECKING:
    from hartutor.models.fusion import FusionOutput

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
    "head_scores",
    "model_fingerprint",
    "pre_logits_features",
    "pretrained_stream",
    "reproduce_fusion",
    "train_linear_head",
    "video_scores",
]

FEATURES_FORMAT = "hartutor-features-v1"
#: ``feature_fn(model, inputs) -> (N, D)``; ``inputs`` is what :func:`hartutor.train.model_inputs`
#: gives (a tensor, or a dict for multi-input models).
FeatureFn = Callable[[nn.Module, Any], torch.Tensor]
StoreDtype = Literal["float16", "float32"]
FusionMode = Literal["softmax_mean", "logit_sum"]
_METADATA_KEYS = ("video_index", "clip_index")
_NAME_KEY = "video_name"


# --------------------------------------------------------------------------- feature sets


@dataclass
class FeatureSet:
    """Features of every sample of a dataset, in dataset order, with what identifies them.

    ``features``: float32 ``(N, D)``. ``labels``: int64 ``(N,)``. ``video_index`` /
    ``clip_index``: int64 ``(N,)`` for multi-clip sets (which video and which of its clips),
    else None. ``video_names``: the dataset's ``video_name`` per sample, if it gives one.
    ``meta``: provenance (cache key, model and dataset descriptions, timing).
    """

    features: torch.Tensor
    labels: torch.Tensor
    video_index: torch.Tensor | None = None
    clip_index: torch.Tensor | None = None
    video_names: list[str] | None = None
    class_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise ValueError(f"features must be (N, D), got {tuple(self.features.shape)}")
        n = self.features.shape[0]
        checks = {"labels": self.labels, "video_index": self.video_index}
        checks["clip_index"] = self.clip_index
        for name, value in checks.items():
            if value is not None and tuple(value.shape) != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
        if self.video_names is not None and len(self.video_names) != n:
            raise ValueError(f"video_names has {len(self.video_names)} entries for {n} samples")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        """Feature width ``D``."""
        return int(self.features.shape[1])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> FeatureSet:
        """The samples at ``indices`` (e.g. a few classes for a laptop run)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        names = None if self.video_names is None else [self.video_names[i] for i in index.tolist()]
        return FeatureSet(
            self.features[index],
            self.labels[index],
            None if self.video_index is None else self.video_index[index],
            None if self.clip_index is None else self.clip_index[index],
            names,
            self.class_names,
            dict(self.meta),
        )

    def save(self, path: str | os.PathLike[str], *, dtype: StoreDtype = "float16") -> Path:
        """Write one ``.npz`` atomically (features as ``dtype``; no pickled objects)."""
        path = Path(path)
        arrays = _arrays_of(self, dtype)
        arrays["meta"] = np.array(json.dumps({"format": FEATURES_FORMAT, **self.meta}))
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, key: str | None = None) -> FeatureSet:
        """Read a file written by :meth:`save`; ``key``: the cache key it must carry.

        Raises :class:`DataError` naming the file when it is missing, truncated, corrupt, of
        another format, or was made for another key.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"feature file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(
                f"feature file {path} cannot be read ({type(err).__name__}: {err}); it is "
                "truncated or corrupt: delete it and extract again"
            ) from err
        if not isinstance(meta, dict) or meta.get("format") != FEATURES_FORMAT:
            raise DataError(f"{path} is not a {FEATURES_FORMAT} file; delete it or pass another")
        if key is not None and meta.get("key") != key:
            raise DataError(
                f"{path} holds features for key {meta.get('key')!r}, not {key!r} (another "
                "model, dataset or preprocessing)"
            )
        try:
            return _feature_set_of(arrays, meta)
        except (KeyError, ValueError) as err:
            raise DataError(f"feature file {path} is inconsistent ({err}); delete it") from err


def _arrays_of(features: FeatureSet, dtype: StoreDtype) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "features": features.features.detach().cpu().numpy().astype(dtype),
        "labels": features.labels.cpu().numpy().astype(np.int64),
    }
    if features.video_index is not None:
        arrays["video_index"] = features.video_index.cpu().numpy().astype(np.int64)
    if features.clip_index is not None:
        arrays["clip_index"] = features.clip_index.cpu().numpy().astype(np.int64)
    if features.video_names is not None:
        arrays["video_names"] = np.array(features.video_names, dtype=np.str_)
    if features.class_names is not None:
        arrays["class_names"] = np.array(features.class_names, dtype=np.str_)
    return arrays


def _feature_set_of(arrays: Mapping[str, np.ndarray], meta: dict[str, Any]) -> FeatureSet:
    def optional(name: str) -> torch.Tensor | None:
        return torch.from_numpy(arrays[name].astype(np.int64)) if name in arrays else None

    features = torch.from_numpy(arrays["features"].astype(np.float32))
    return FeatureSet(
        features,
        torch.from_numpy(arrays["labels"].astype(np.int64)),
        optional("video_index"),
        optional("clip_index"),
        [str(s) for s in arrays["video_names"]] if "video_names" in arrays else None,
        [str(s) for s in arrays["class_names"]] if "class_names" in arrays else None,
        meta,
    )


# --------------------------------------------------------------------------- fingerprints


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's class, structure and every state-dict tensor (weights and buffers).

    Two models give the same fingerprint only if they compute the same function, so a cache
    keyed by it is invalidated by any change of weights (hashing every weight costs little
    next to an extraction; ``docs/benchmarks.md``).
    """
    from hartutor.accel import plain_class

    digest = hashlib.sha256()
    cls = plain_class(model)  # the architecture, whether or not hartutor.accel runs it
    digest.update(f"{cls.__module__}.{cls.__qualname__}\n".encode())
    digest.update(repr(model).encode())
    digest.update(repr(getattr(model, "input_spec", None)).encode())
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name}:{value.dtype}:{tuple(value.shape)}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _digest_array(value: torch.Tensor | np.ndarray) -> dict[str, Any]:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
    array = np.ascontiguousarray(array)
    blob = array.tobytes() if array.dtype != object else repr(array.tolist()).encode()
    return {
        "array": str(array.dtype),
        "shape": list(array.shape),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }


def _describe(value: Any, depth: int = 0) -> Any:
    """A JSON-able, deterministic description of ``value`` (datasets, transforms, options)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, torch.Tensor | np.ndarray):
        return _digest_array(value)
    if isinstance(value, nn.Module):
        return {"module": type(value).__qualname__, "sha256": model_fingerprint(value)}
    if depth > 6:
        return type(value).__qualname__
    if isinstance(value, Mapping):
        return {str(k): _describe(v, depth + 1) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, list | tuple | range):
        items = [_describe(v, depth + 1) for v in value]
        if len(items) <= 32:
            return items
        blob = json.dumps(items, sort_keys=True).encode()
        return {"items": len(items), "sha256": hashlib.sha256(blob).hexdigest()}
    if isinstance(value, set | frozenset):
        return _describe(sorted(value, key=repr), depth)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"type": kind, **_describe(fields, depth + 1)}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        public = {k: v for k, v in attributes.items() if not k.startswith("_")}
        return {"type": kind, **_describe(public, depth + 1)}
    if callable(value):
        return {"type": kind, "name": getattr(value, "__qualname__", repr(value))}
    return {"type": kind}


def dataset_fingerprint(dataset: Dataset) -> dict[str, Any]:
    """What identifies a dataset's samples: its type, length and public attributes.

    Public attributes are described recursively (paths, sizes, frame counts, split entries,
    the ``transform`` with its normalisation constants, subset indices); private ones
    (``_cache``-like state) are ignored. For a dataset whose content is not in its attributes,
    pass ``dataset_key=`` to :func:`extract_features`.
    """
    try:
        length = len(dataset)  # type: ignore[arg-type]
    except TypeError as err:
        raise DataError(
            f"{type(dataset).__name__} has no len(); feature extraction needs a map-style "
            "dataset (iterable datasets cannot be resumed or checked)"
        ) from err
    described = _describe(dataset)
    if not isinstance(described, dict):
        described = {"value": described}
    return {**described, "len": length}


def _json_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def feature_cache_path(cache: str | os.PathLike[str], name: str, key: str) -> Path:
    """Where the features for ``key`` live in the cache folder ``cache``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "features"
    return Path(cache) / f"{safe}-{key[:16]}.npz"


# --------------------------------------------------------------------------- extraction


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


@dataclass
class _Chunk:
    """Features and metadata of a contiguous run of samples ``[start, stop)``."""

    start: int
    features: torch.Tensor
    labels: torch.Tensor
    video_index: torch.Tensor | None
    clip_index: torch.Tensor | None
    video_names: list[str] | None

    @property
    def stop(self) -> int:
        return self.start + int(self.labels.numel())


def _merge(chunks: Sequence[_Chunk]) -> _Chunk:
    def cat(values: list[torch.Tensor | None]) -> torch.Tensor | None:
        return None if any(v is None for v in values) else torch.cat(values)  # type: ignore

    names = [c.video_names for c in chunks]
    return _Chunk(
        chunks[0].start,
        torch.cat([c.features for c in chunks]),
        torch.cat([c.labels for c in chunks]),
        cat([c.video_index for c in chunks]),
        cat([c.clip_index for c in chunks]),
        None if any(n is None for n in names) else [s for n in names for s in n],  # type: ignore
    )


def _shard_dir(final: Path) -> Path:
    return final.with_name(f"{final.stem}.partial")


def _write_shard(folder: Path, chunk: _Chunk, key: str, dtype: StoreDtype) -> None:
    partial = FeatureSet(
        chunk.features, chunk.labels, chunk.video_index, chunk.clip_index, chunk.video_names
    )
    arrays = _arrays_of(partial, dtype)
    arrays["meta"] = np.array(json.dumps({"key": key, "start": chunk.start, "stop": chunk.stop}))
    with atomic_path(folder / f"shard-{chunk.start:09d}.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())


def _read_shards(folder: Path, key: str) -> list[_Chunk]:
    """The valid shards of an interrupted run, contiguous from sample 0 (others deleted)."""
    chunks: list[_Chunk] = []
    if not folder.is_dir():
        return chunks
    expected = 0
    for path in sorted(folder.glob("shard-*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays.pop("meta")))
            part = _feature_set_of(arrays, {})
            valid = meta.get("key") == key and meta.get("start") == expected
            valid = valid and meta.get("stop") == expected + len(part)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            valid = False
        if not valid:  # unreadable, foreign or out of order: this and later shards are redone
            for stale in sorted(folder.glob("shard-*.npz")):
                if stale.name >= path.name:
                    stale.unlink(missing_ok=True)
            break
        chunks.append(
            _Chunk(
                expected,
                part.features,
                part.labels,
                part.video_index,
                part.clip_index,
                part.video_names,
            )
        )
        expected += len(part)
    return chunks


def _round_to(features: torch.Tensor, dtype: StoreDtype) -> torch.Tensor:
    """What the features become once stored: cache hits then equal fresh extractions."""
    if dtype == "float32":
        return features.float()
    stored = features.to(torch.float16)
    if not torch.isfinite(stored).all():
        raise HartutorError(
            f"features exceed float16's range (max |x| = {float(features.abs().max()):.4g}); "
            "extract with store_dtype='float32'"
        )
    return stored.float()


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
        "preprocessing": _describe(preprocessing),
        "feature_fn": _feature_fn_name(feature_fn),
        "store_dtype": store_dtype,
    }
    key = _json_digest(identity)
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

    shards = _shard_dir(final) if final is not None else None
    chunks = _read_shards(shards, key) if shards is not None else []
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
    merged = _merge(chunks)
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
) -> list[_Chunk]:
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
    chunks: list[_Chunk] = []
    pending: list[_Chunk] = []
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
                    shard = _merge(pending)
                    _write_shard(shards, shard, key, store_dtype)
                    chunks.append(shard)
                    pending = []
    finally:
        model.train(was_training)
    if pending:
        chunks.append(_merge(pending))
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
) -> _Chunk:
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
    return _Chunk(
        position,
        _round_to(features, store_dtype),
        labels,
        _collect(batch, "video_index"),
        _collect(batch, "clip_index"),
        [str(n) for n in names] if isinstance(names, list | tuple) else None,
    )


# --------------------------------------------------------------------------- linear heads


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


def head_scores(
    head: nn.Module, data: FeatureSet, *, batch_size: int = 8192, device: str = "cpu"
) -> torch.Tensor:
    """The head's logits ``(N, K)`` for every sample of ``data`` (eval mode, float32, CPU)."""
    dev = resolve_device(device)
    was_training = head.training
    head = head.to(dev).eval()
    try:
        with torch.inference_mode():
            parts = [head(x.to(dev)).float().cpu() for x in data.features.split(batch_size)]
    finally:
        head.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, getattr(head, "num_classes", 0))


@dataclass
class FeatureEvaluation:
    """Accuracy of scores on a feature set: per clip, and per video when clips are grouped."""

    clip: ClassificationResult | None
    video: ClassificationResult | None
    scores: torch.Tensor = field(repr=False)
    kind: Literal["logits", "probabilities"] = "logits"

    @property
    def top1(self) -> float:
        """Video-level top-1 when available (how UCF101 results are reported), else clip."""
        return (self.video or self.clip).top1  # type: ignore[union-attr]

    def summary(self) -> str:
        parts = []
        for level, result in (("clip", self.clip), ("video", self.video)):
            if result is not None:
                parts.append(f"{level}: {result.summary()}")
        return "; ".join(parts)


def video_scores(
    scores: torch.Tensor,
    data: FeatureSet,
    *,
    kind: Literal["logits", "probabilities"] = "logits",
    mode: FusionMode = "softmax_mean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-video scores from per-clip ones: ``(scores, labels, video ids)`` sorted by id.

    ``softmax_mean``: ``log`` of the mean clip probability (a valid logit; its softmax is the
    mean probability). ``logit_sum``: the mean clip logit. Built on
    :func:`hartutor.ucf101.video_level_scores`.
    """
    if data.video_index is None:
        raise DataError("this feature set has no video_index: its clips are not grouped")
    if mode == "softmax_mean":
        probs = scores.float() if kind == "probabilities" else F.softmax(scores.float(), -1)
        mean, labels = video_level_scores(probs, data.video_index, data.labels)
        out = mean.clamp_min(torch.finfo(mean.dtype).tiny).log()
    elif mode == "logit_sum":
        if kind != "logits":
            raise ValueError("logit_sum averages logits; pass kind='logits'")
        out, labels = video_level_scores(scores.float(), data.video_index, data.labels)
    else:
        raise ValueError(f"mode must be 'softmax_mean' or 'logit_sum', got {mode!r}")
    return out, labels, torch.unique(data.video_index)


def evaluate_scores(
    scores: torch.Tensor,
    data: FeatureSet,
    *,
    kind: Literal["logits", "probabilities"] = "logits",
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    num_classes: int | None = None,
) -> FeatureEvaluation:
    """Top-k of per-clip ``scores`` on ``data`` with :func:`hartutor.metrics.accumulate`.

    With ``video_index`` the clips' softmax probabilities are also averaged per video (the
    multi-clip testing of the papers) and scored per video.
    """
    if scores.ndim != 2 or scores.shape[0] != len(data):
        raise ValueError(f"scores must be ({len(data)}, K), got {tuple(scores.shape)}")
    k = num_classes or scores.shape[1]
    names = class_names or data.class_names
    logits = scores.float() if kind == "logits" else scores.float().clamp_min(1e-38).log()
    loss = float(F.cross_entropy(logits, data.labels)) if len(data) else None
    clip = accumulate([logits], [data.labels], num_classes=k, ks=ks, loss=loss, class_names=names)
    video = None
    if data.video_index is not None:
        per_video, labels, _ = video_scores(scores, data, kind=kind)
        video = accumulate([per_video], [labels], num_classes=k, ks=ks, class_names=names)
    return FeatureEvaluation(clip, video, scores, kind)


def evaluate_head(
    head: nn.Module,
    data: FeatureSet,
    *,
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    device: str = "cpu",
) -> FeatureEvaluation:
    """Top-k per clip (and per video with ``video_index``) of ``head`` on ``data``."""
    scores = head_scores(head, data, device=device)
    return evaluate_scores(
        scores,
        data,
        ks=ks,
        class_names=class_names,
        num_classes=getattr(head, "num_classes", None),
    )


# --------------------------------------------------------------------------- late fusion


def fuse_heads(
    scores_by_stream: Mapping[str, torch.Tensor],
    weights: Mapping[str, float] | None = None,
    mode: FusionMode = "softmax_mean",
) -> FusionOutput:
    """Late fusion of per-stream logits ``(N, K)`` with :class:`LateFusion`'s own rule.

    ``softmax_mean`` (the poster): the weighted mean of the streams' softmax probabilities
    (``fused`` is a probability vector); ``logit_sum``: the weighted sum of logits. Returns a
    :class:`~hartutor.models.fusion.FusionOutput` (``probabilities`` and
    ``log_probabilities`` work in both modes). Stream names must be Python identifiers.
    """
    from hartutor.models.fusion import fuse_scores

    return fuse_scores(scores_by_stream, weights=weights, mode=mode)


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
        fused = fuse_heads({n: e.scores for n, e in evaluations.items()}, weights, mode)
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
    fused = fuse_heads({n: v[0] for n, v in per_video.items()}, weights, mode)
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
    ``head``), its test accuracy; then the heads' test scores fused (:func:`fuse_heads`).
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
    from hartutor.data import Normalize
    from hartutor.ucf101 import UCF101
    from hartutor.weights import get_weights, load_pretrained

    entry = get_weights(weights)
    model = load_pretrained(entry, path=path, download=download)
    pre = entry.preprocessing
    spec = getattr(model, "input_spec", None)
    frames = num_frames or pre.num_frames or (spec.num_frames if spec is not None else None)
    if frames is None:
        raise ModelError(f"{entry.name} does not say how many frames it takes; pass num_frames")
    transform = Normalize("video", pre.mean, pre.std)

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
