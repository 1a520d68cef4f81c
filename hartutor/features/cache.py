"""The feature cache: :class:`FeatureSet` files, content-addressed keys, resumable shards.

A cache key hashes what determines the features: the model's weights
(:func:`model_fingerprint`), the dataset's samples (:func:`dataset_fingerprint`), the
preprocessing and the feature function. Files are ``.npz`` without pickled objects, written
atomically; an interrupted extraction leaves shards that the next run continues from.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hartutor._fileio import atomic_path
from hartutor.errors import DataError, HartutorError

__all__ = [
    "FEATURES_FORMAT",
    "Chunk",
    "FeatureSet",
    "StoreDtype",
    "dataset_fingerprint",
    "describe",
    "feature_cache_path",
    "json_digest",
    "merge_chunks",
    "model_fingerprint",
    "read_shards",
    "round_to",
    "shard_dir",
    "write_shard",
]

FEATURES_FORMAT = "hartutor-features-v1"
StoreDtype = Literal["float16", "float32"]


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


def describe(value: Any, depth: int = 0) -> Any:
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
        return {str(k): describe(v, depth + 1) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, list | tuple | range):
        items = [describe(v, depth + 1) for v in value]
        if len(items) <= 32:
            return items
        blob = json.dumps(items, sort_keys=True).encode()
        return {"items": len(items), "sha256": hashlib.sha256(blob).hexdigest()}
    if isinstance(value, set | frozenset):
        return describe(sorted(value, key=repr), depth)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"type": kind, **describe(fields, depth + 1)}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        public = {k: v for k, v in attributes.items() if not k.startswith("_")}
        return {"type": kind, **describe(public, depth + 1)}
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
    described = describe(dataset)
    if not isinstance(described, dict):
        described = {"value": described}
    return {**described, "len": length}


def json_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def feature_cache_path(cache: str | os.PathLike[str], name: str, key: str) -> Path:
    """Where the features for ``key`` live in the cache folder ``cache``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "features"
    return Path(cache) / f"{safe}-{key[:16]}.npz"


# --------------------------------------------------------------------------- shards


@dataclass
class Chunk:
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


def merge_chunks(chunks: Sequence[Chunk]) -> Chunk:
    def cat(values: list[torch.Tensor | None]) -> torch.Tensor | None:
        return None if any(v is None for v in values) else torch.cat(values)  # type: ignore

    names = [c.video_names for c in chunks]
    return Chunk(
        chunks[0].start,
        torch.cat([c.features for c in chunks]),
        torch.cat([c.labels for c in chunks]),
        cat([c.video_index for c in chunks]),
        cat([c.clip_index for c in chunks]),
        None if any(n is None for n in names) else [s for n in names for s in n],  # type: ignore
    )


def shard_dir(final: Path) -> Path:
    return final.with_name(f"{final.stem}.partial")


def write_shard(folder: Path, chunk: Chunk, key: str, dtype: StoreDtype) -> None:
    partial = FeatureSet(
        chunk.features, chunk.labels, chunk.video_index, chunk.clip_index, chunk.video_names
    )
    arrays = _arrays_of(partial, dtype)
    arrays["meta"] = np.array(json.dumps({"key": key, "start": chunk.start, "stop": chunk.stop}))
    with atomic_path(folder / f"shard-{chunk.start:09d}.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())


def read_shards(folder: Path, key: str) -> list[Chunk]:
    """The valid shards of an interrupted run, contiguous from sample 0 (others deleted)."""
    chunks: list[Chunk] = []
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
            Chunk(
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


def round_to(features: torch.Tensor, dtype: StoreDtype) -> torch.Tensor:
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
