"""Training and evaluation for every hartutor model: ``fit`` and ``evaluate``.

Batches are dicts, as pytorchvideo's datasets and hartutor's synthetic set produce them:
``{"video": (N, C, T, H, W), "label": (N,), "flow": (N, 2, T-1, H, W) optional}``. A model says
which keys it consumes with an ``input_keys`` attribute (default ``("video",)``); a model with
one key gets that tensor, a model with several gets a dict of them. Models may return logits or
an object with a ``fused`` attribute (late fusion), whose fused scores are then evaluated.

Checkpoints are written atomically at the end of every epoch and hold the model, optimiser,
scheduler and random-generator states plus what is needed to rebuild and use the model (name,
preset, builder arguments, class names, input description), so that ``resume=True`` continues an
interrupted run exactly and ``load_checkpoint`` restores a usable model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hartutor import validation as rules
from hartutor._fileio import (
    atomic_path,
    check_archive_size,
    describe_os_error,
    unsafe_load_reason,
)
from hartutor.config import configure_threads, return_freed_memory
from hartutor.errors import HartutorError, ModelError, OutputError, WeightsError
from hartutor.metrics import ClassificationResult, accumulate

CHECKPOINT_FORMAT = "hartutor-checkpoint-v1"
#: A checkpoint's tensors may take this much memory once loaded, no more (its zip entries are
#: summed before ``torch.load``, so a small file cannot expand into a huge allocation).
MAX_CHECKPOINT_BYTES = 4 * 1024**3
#: A model rebuilt from a checkpoint's stored arguments may hold this many parameters.
MAX_MODEL_PARAMETERS = 1_000_000_000


class TrainingDiverged(HartutorError, FloatingPointError):
    """The loss or the gradients became NaN/inf: the run stops instead of wasting hours."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; stored inside every checkpoint."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    seed: int = 0
    num_workers: int = 0
    num_threads: int | None = None
    device: str = "auto"
    amp: bool | Literal["auto"] = "auto"
    progress: bool = True
    #: How a late fusion (two-stream, I3D + Xception) learns. ``"streams"``: each stream on its
    #: own cross-entropy (their mean), as the papers trained the streams separately; the fused
    #: score is only evaluated. ``"fused"``: one cross-entropy on the fused score; the stream
    #: that learns first then takes the whole loss and the other may stay at chance.
    fusion_loss: Literal["streams", "fused"] = "streams"

    def __post_init__(self) -> None:
        # The CLI's parser applies the same rules (hartutor.validation): one set of rules.
        rules.EPOCHS(self.epochs, "epochs")
        rules.BATCH_SIZE(self.batch_size, "batch_size")
        rules.LEARNING_RATE(self.lr, "learning rate")
        rules.WEIGHT_DECAY(self.weight_decay, "weight_decay")
        rules.WARMUP_EPOCHS(self.warmup_epochs, "warmup_epochs")
        rules.SEED(self.seed, "seed")
        rules.NUM_WORKERS(self.num_workers, "num_workers")
        if self.num_threads is not None:
            rules.NUM_THREADS(self.num_threads, "num_threads")
        rules.choice_rule("optimizer", ("adamw", "sgd"))(self.optimizer)
        rules.choice_rule("schedule", ("cosine", "constant"))(self.schedule)
        rules.choice_rule("fusion_loss", ("streams", "fused"))(self.fusion_loss)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_top1: float
    lr: float
    val: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    history: list[EpochRecord]
    checkpoint: Path | None
    val: ClassificationResult | None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU; a device torch lacks here is refused."""
    if isinstance(device, torch.device):
        device = str(device)
    rules.DEVICE(device, "device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_inputs(model: nn.Module, batch: Mapping[str, Any], device: torch.device) -> Any:
    """What ``model`` should be called with, taken from ``batch`` by its ``input_keys``."""
    keys: Sequence[str] = getattr(model, "input_keys", ("video",))
    missing = [key for key in keys if key not in batch]
    if missing:
        raise KeyError(
            f"{type(model).__name__} needs batch keys {list(keys)} but the batch lacks {missing}; "
            "for flow streams build the dataset with with_flow=True"
        )
    if len(keys) == 1:
        return batch[keys[0]].to(device, non_blocking=True)
    return {key: batch[key].to(device, non_blocking=True) for key in keys}


def scores_of(output: Any) -> torch.Tensor:
    """Class scores usable as logits: plain logits, or a fusion's fused log-probabilities.

    A late fusion (:class:`hartutor.models.fusion.FusionOutput`) may fuse probabilities
    (softmax averaging) or logits (logit summing); its ``log_probabilities`` are valid logits
    for cross-entropy and argmax in both cases.
    """
    if hasattr(output, "log_probabilities"):
        return output.log_probabilities
    return output.fused if hasattr(output, "fused") else output


def _as_loader(
    data: Dataset | DataLoader, config: TrainConfig, *, shuffle: bool, epoch: int
) -> DataLoader:
    """This rank's loader for one epoch. Under torchrun each rank takes every ``size``-th clip
    of the same shuffled order as one process would use, ``batch_size / size`` at a time, so a
    step's global batch holds the same clips whatever the number of processes."""
    if isinstance(data, DataLoader):
        return data
    from hartutor.distributed import world

    here = world()
    if here.distributed:
        from hartutor.distributed import RankShare

        sampler = RankShare(len(data), seed=config.seed * 100_003 + epoch, shuffle=shuffle)
        return DataLoader(
            data,
            batch_size=config.batch_size // here.size,
            sampler=sampler,
            num_workers=config.num_workers,
            drop_last=False,
            persistent_workers=False,
        )
    generator = epoch_generator(config.seed * 100_003 + epoch)
    return DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=shuffle,
        num_workers=config.num_workers,
        generator=generator,
        drop_last=False,
        persistent_workers=False,
    )


def epoch_generator(seed: int) -> torch.Generator:
    """The generator that shuffles one epoch, seeded and advanced by one draw.

    The draw keeps every run's order what it was when fit's progress bar still opened each
    loader twice (the throwaway iterator took one draw), so recorded seeds, and the shipped
    checkpoints trained with them, keep reproducing.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return generator


def _lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    version, *rest = state["python"]
    random.setstate((version, tuple(rest[0]), rest[1]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``torch.save`` ``payload`` atomically: the file is complete or absent, never half.

    A failed write (a full disk, a read-only folder) raises :class:`OutputError` naming the
    file and the likely cause; the earlier file under that name is left as it was.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    except OSError as err:
        raise OutputError(
            f"cannot write checkpoint {str(path)!r}: {describe_os_error(err)}"
        ) from err
    except RuntimeError as err:  # torch's zip writer reports a short write as "unexpected pos"
        raise OutputError(
            f"cannot write checkpoint {str(path)!r}: {_write_failure(path, err)}"
        ) from err
    return path


def _write_failure(path: Path, err: BaseException) -> str:
    import shutil

    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return f"torch.save failed ({first[:200]})"
    if free < 256 * 1024**2:
        return (
            f"the disk is full ({free / 1e6:.1f} MB free on {str(path.parent)!r}); "
            "free some space or write elsewhere"
        )
    return f"torch.save failed ({first[:200]}); check the free space and the folder"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a hartutor checkpoint safely (``weights_only=True``) with clear errors.

    Before loading, the archive's entries are summed: a file that would expand past
    :data:`MAX_CHECKPOINT_BYTES` (or far past its size on disk: a compressed bomb) is refused.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise WeightsError(f"checkpoint {path} {what}")
    check_archive_size(path, MAX_CHECKPOINT_BYTES, what="checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip, foreign objects
        raise WeightsError(
            f"checkpoint {path} could not be read safely ({unsafe_load_reason(err)}); "
            "it may be truncated, corrupt, or not a hartutor checkpoint"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    if not isinstance(payload.get("state_dict"), Mapping):
        raise WeightsError(f"checkpoint {str(path)!r} holds no state_dict (corrupt file)")
    return payload


def checkpoint_model(payload: Mapping[str, Any], path: str | Path) -> tuple[str, dict[str, Any]]:
    """The model name and builder arguments a checkpoint stores, checked before any building.

    Refused with a :class:`WeightsError` naming the file: no model name, a model this hartutor
    does not have, arguments that are not plain values, a class count or size past the limits
    of :mod:`hartutor.validation`.
    """
    meta = payload.get("model")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise WeightsError(
            f"checkpoint {str(path)!r} does not say which model it holds (no model name in its "
            "metadata): it was not written by hartutor's fit or fuse"
        )
    name = meta["name"]
    try:
        rules.MODEL_NAME(name, "model")
    except rules.ArgumentError as err:
        raise WeightsError(f"checkpoint {str(path)!r} was made for model {name!r}: {err}") from err
    kwargs = meta.get("kwargs", {})
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise WeightsError(f"checkpoint {str(path)!r}: its model arguments are not a mapping")
    try:
        for key, value in kwargs.items():
            _check_stored_argument(key, value)
    except rules.ArgumentError as err:
        raise WeightsError(
            f"checkpoint {str(path)!r} stores a model argument hartutor refuses: {err}"
        ) from err
    return name, dict(kwargs)


def _check_stored_argument(key: str, value: Any) -> None:
    if key == "num_classes":
        rules.NUM_CLASSES(value, "num_classes")
    elif key == "preset":
        rules.PRESET(value, "preset")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        rules.float_rule(key, -1e6, 1e6)(float(value), key)
    elif isinstance(value, str):
        if len(value) > 200:
            raise rules.ArgumentError(f"{key} is a string of {len(value)} characters")
    elif isinstance(value, Mapping):
        for inner_key, inner in value.items():
            _check_stored_argument(f"{key}[{inner_key!r}]", inner)
    elif isinstance(value, (list, tuple)):
        if len(value) > 1000:
            raise rules.ArgumentError(f"{key} is a list of {len(value)} items")
        for inner in value:
            _check_stored_argument(key, inner)
    else:
        raise rules.ArgumentError(f"{key} is a {type(value).__name__}, not a plain value")


def build_from_checkpoint(name: str, kwargs: Mapping[str, Any], path: str | Path) -> nn.Module:
    """``build_model(name, **kwargs)`` for a checkpoint's stored arguments: sized first on the
    meta device (no memory), refused past :data:`MAX_MODEL_PARAMETERS`, errors name the file."""
    return build_sized(name, kwargs, source=f"checkpoint {str(path)!r}", error=WeightsError)


def build_sized(
    name: str,
    kwargs: Mapping[str, Any],
    *,
    source: str,
    error: type[HartutorError] = ModelError,
) -> nn.Module:
    """``build_model(name, **kwargs)`` for arguments from outside (a checkpoint, ``--arg``):
    each value checked, the model sized first on the meta device (no memory) and refused past
    :data:`MAX_MODEL_PARAMETERS`; errors (of type ``error``) start with ``source``."""
    from hartutor.models import build_model

    try:
        for key, value in kwargs.items():
            _check_stored_argument(key, value)
    except rules.ArgumentError as err:
        raise error(f"{source} gives a model argument hartutor refuses: {err}") from err
    try:
        with torch.device("meta"):
            sized = build_model(name, **kwargs)
        count = sum(p.numel() for p in sized.parameters())
        if count > MAX_MODEL_PARAMETERS:
            raise error(
                f"{source} asks for a {name} of {count:,} parameters "
                f"(limit {MAX_MODEL_PARAMETERS:,}) from its arguments {dict(kwargs)}; refused"
            )
        return build_model(name, **kwargs)
    except (TypeError, ValueError, KeyError, ModelError) as err:
        if isinstance(err, error):
            raise
        raise error(
            f"{source} gives arguments {dict(kwargs)} that model {name!r} "
            f"does not accept ({type(err).__name__}: {err})"
        ) from err


def _load_state(model: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """``load_state_dict`` whose error is a short summary (a few keys, the differing shapes)."""
    from hartutor.weights.loaders import load_state_dict_checked

    load_state_dict_checked(model, state, source=source)


def check_resumable(path: str | Path, name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Read the checkpoint a run would resume; refuse one made for another model or class count.

    Returns the checkpoint's payload. Raises :class:`HartutorError` naming the file, what it
    holds and what was asked, before any training starts.
    """
    payload = read_checkpoint(path)
    stored_name, stored_kwargs = checkpoint_model(payload, path)
    if stored_name != name or dict(stored_kwargs) != dict(kwargs):
        raise HartutorError(
            f"cannot resume {str(path)!r}: it holds {stored_name} {stored_kwargs}, "
            f"not {name} {dict(kwargs)}; pass the same model, --preset and --classes, "
            "or start a new run with another --out"
        )
    return payload


def load_checkpoint(path: str | Path, *, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint and load its weights; returns (model, metadata).

    The metadata is what :func:`fit` stored (name, builder kwargs, data, input spec) plus
    ``class_names`` and ``epoch``. The stored model name and arguments are checked before the
    model is built (:func:`checkpoint_model`), and a state dict that does not fit is summarised.
    """
    payload = read_checkpoint(path)
    name, kwargs = checkpoint_model(payload, path)
    model = build_from_checkpoint(name, kwargs, path)
    _load_state(model, payload["state_dict"], f"checkpoint {str(path)!r} (made for {name})")
    meta = {
        **payload["model"],
        "class_names": payload.get("class_names"),
        "epoch": payload.get("epoch"),
    }
    return model.to(device).eval(), meta


def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 16,
    device: str = "auto",
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    num_classes: int | None = None,
    batch_transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    progress: bool = True,
    desc: str = "evaluate",
) -> ClassificationResult:
    """Top-k, per-class accuracy and confusion matrix of ``model`` on ``data``.

    ``batch_transform`` maps every batch (a dict with ``video``, maybe ``flow``) before the
    model sees it (e.g. time reversal or frame shuffling for the temporal diagnostics). For a
    late fusion this scores the fused output; :func:`evaluate_streams` scores each stream too.
    """
    results = _evaluate_scorers(
        model,
        data,
        batch_size=batch_size,
        device=device,
        ks=ks,
        class_names=class_names,
        num_classes=num_classes,
        batch_transform=batch_transform,
        progress=progress,
        desc=desc,
        streams=False,
    )
    return results["fused" if "fused" in results else "model"]


def evaluate_streams(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[Mapping[str, Any]],
    **options: Any,
) -> dict[str, ClassificationResult]:
    """Like :func:`evaluate`, for a late fusion: one result per stream and one for ``"fused"``.

    Each stream is scored on its own logits in the same pass, so the table of a fusion and of
    its streams comes from one forward over the data.
    """
    return _evaluate_scorers(model, data, streams=True, **options)


def collect_scores(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 16,
    device: str = "auto",
    batch_transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every clip's scores and label, in data order, on the CPU: ``(scores, labels)``.

    ``scores`` holds what :func:`evaluate_streams` scores: ``{"model": logits}`` for a plain
    model; for a late fusion ``{"fused": log-probabilities, <stream>: logits, ...}``. Kept,
    not reduced to accuracies, for analyses that re-fuse or compare scores (a sweep of the
    fusion weights, a quantised copy against the original).
    """
    scores: dict[str, list[torch.Tensor]] = {}
    labels: list[torch.Tensor] = []
    batches = _scored_batches(
        model, data, batch_size=batch_size, device=device, batch_transform=batch_transform
    )
    for outputs, label in batches:
        for name, value in outputs.items():
            scores.setdefault(name, []).append(value)
        labels.append(label)
    if not labels:
        raise HartutorError(f"no batches in {type(data).__name__}: nothing to score")
    return {name: torch.cat(values) for name, values in scores.items()}, torch.cat(labels)


def _scored_batches(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[Mapping[str, Any]],
    *,
    batch_size: int,
    device: str,
    batch_transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    streams: bool = True,
    progress: bool = False,
    desc: str = "evaluate",
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Each batch's scores on the CPU (``{"model": ...}`` or ``{"fused": ..., <stream>: ...}``
    when ``streams``) and its labels, from one eval-mode pass over ``data``."""
    from hartutor._progress import progress_bar

    dev = resolve_device(device)
    if not isinstance(data, DataLoader) and isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    model = model.to(dev).eval()
    with torch.inference_mode():
        for batch in progress_bar(data, desc=desc, disable=not progress, leave=False):
            if batch_transform is not None:
                batch = batch_transform(batch)
            output = model(model_inputs(model, batch, dev))
            outputs = {"fused" if hasattr(output, "fused") else "model": scores_of(output)}
            if streams:
                outputs.update(getattr(output, "streams", {}))
            yield (
                {name: value.float().cpu() for name, value in outputs.items()},
                batch["label"].long().cpu(),
            )


def _evaluate_scorers(
    model: nn.Module,
    data: Dataset | DataLoader | Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 16,
    device: str = "auto",
    ks: Sequence[int] = (1, 5),
    class_names: list[str] | None = None,
    num_classes: int | None = None,
    batch_transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    progress: bool = True,
    desc: str = "evaluate",
    streams: bool = False,
) -> dict[str, ClassificationResult]:
    scores: dict[str, list[torch.Tensor]] = {}
    losses: dict[str, float] = {}
    labels: list[torch.Tensor] = []
    batches = _scored_batches(
        model,
        data,
        batch_size=batch_size,
        device=device,
        batch_transform=batch_transform,
        streams=streams,
        progress=progress,
        desc=desc,
    )
    for outputs, label in batches:
        for name, value in outputs.items():
            scores.setdefault(name, []).append(value)
            loss = float(nn.functional.cross_entropy(value, label, reduction="sum"))
            losses[name] = losses.get(name, 0.0) + loss
        labels.append(label)
    count = sum(int(label.numel()) for label in labels)
    results = {}
    for name, values in scores.items():
        n_classes = num_classes or values[0].shape[1]
        results[name] = accumulate(
            values,
            labels,
            num_classes=n_classes,
            ks=ks,
            loss=losses[name] / count if count else None,
            class_names=class_names,
        )
    if not results:
        results["model"] = accumulate(
            [],
            [],
            num_classes=num_classes or len(class_names or []),
            ks=ks,
            class_names=class_names,
        )
    return_freed_memory()  # the activations just freed: give them back (a notebook's 1 GiB)
    return results


def fit(
    model: nn.Module,
    train_data: Dataset | DataLoader,
    *,
    val_data: Dataset | DataLoader | None = None,
    config: TrainConfig | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    model_meta: Mapping[str, Any] | None = None,
    class_names: list[str] | None = None,
) -> FitResult:
    """Train ``model`` with cross-entropy; checkpoint every epoch; optionally resume.

    ``model_meta`` (``{"name": ..., "kwargs": {...}, "preset": ...}``) is stored in the checkpoint
    so :func:`load_checkpoint` can rebuild the model; ``class_names`` too. ``model`` is
    trained through :func:`hartutor.accel.optimize` (faster on a CPU, the same function and
    gradients), and keeps its faster layers afterwards.

    Under ``torchrun`` (:mod:`hartutor.distributed`) the same call trains with
    DistributedDataParallel: ``config.batch_size`` is the global batch, split over the ranks;
    the training metrics are summed over the ranks; rank 0 alone shows progress, evaluates
    ``val_data`` and writes the checkpoint, which the other ranks wait for.
    """
    from hartutor import distributed
    from hartutor._progress import progress_bar
    from hartutor.accel import optimize

    config = config or TrainConfig()
    model_classes = getattr(model, "num_classes", None)
    if class_names and isinstance(model_classes, int) and model_classes < len(class_names):
        raise ModelError(
            f"{type(model).__name__} predicts {model_classes} classes but the data has "
            f"{len(class_names)}: build the model with num_classes={len(class_names)}"
        )
    configure_threads(config.num_threads)
    here = distributed.world()
    if here.distributed and config.batch_size % here.size:
        raise HartutorError(
            f"batch size {config.batch_size} does not split over {here.size} processes: "
            f"give a multiple of {here.size} (it is the global batch)"
        )
    device = (
        distributed.device_for(config.device) if here.distributed else resolve_device(config.device)
    )
    use_amp = device.type == "cuda" and config.amp in (True, "auto")
    seed_everything(config.seed)
    model = optimize(model.to(device))
    net: nn.Module = model
    if here.distributed:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = _make_optimizer(model, config)
    steps_per_epoch = len(_as_loader(train_data, config, shuffle=True, epoch=0))
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, total_steps, warmup_steps, config.schedule)
    )
    history: list[EpochRecord] = []
    start_epoch = 0
    checkpoint = Path(checkpoint_path) if checkpoint_path else None
    if resume and checkpoint is not None and checkpoint.exists():
        if model_meta and "name" in model_meta:
            state = check_resumable(checkpoint, model_meta["name"], model_meta.get("kwargs", {}))
        else:
            state = read_checkpoint(checkpoint)
        _load_state(model, state["state_dict"], f"checkpoint {str(checkpoint)!r} (to resume)")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch = int(state["epoch"])
        history = [EpochRecord(**record) for record in state.get("history", [])]
        if state.get("config") and state["config"] != asdict(config):
            defaults = asdict(TrainConfig())  # settings added since the checkpoint was written
            old = {**defaults, **state["config"]}
            changed = {
                k: (old.get(k), v)
                for k, v in asdict(config).items()
                if old.get(k) != v and k not in ("progress", "num_workers", "num_threads")
            }
            if changed:
                raise HartutorError(
                    f"cannot resume {checkpoint}: the configuration changed {changed} (old, new); "
                    "start a new run or pass the original settings"
                )
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    val_result: ClassificationResult | None = None
    for epoch in range(start_epoch, config.epochs):
        model.train()
        loader = _as_loader(train_data, config, shuffle=True, epoch=epoch)
        total_loss, correct, seen = 0.0, 0, 0
        bar = progress_bar(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and here.is_main),
            leave=False,
        )
        for step, batch in enumerate(bar):
            labels = batch["label"].long().to(device)
            with torch.autocast(device.type, enabled=use_amp):
                output = net(model_inputs(model, batch, device))
                logits = scores_of(output)
                if config.fusion_loss == "streams" and hasattr(output, "streams"):
                    stream_losses = [criterion(s.float(), labels) for s in output.streams.values()]
                    loss = torch.stack(stream_losses).mean()
                else:
                    loss = criterion(logits.float(), labels)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"(lr {scheduler.get_last_lr()[0]:.3g}); lower the learning rate, enable "
                    "gradient clipping, or check the inputs for NaN"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                if not torch.isfinite(norm) and not use_amp:
                    raise TrainingDiverged(
                        f"gradient norm became {float(norm)} at epoch {epoch + 1}, "
                        f"step {step + 1}; lower the learning rate"
                    )
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total_loss += float(loss.detach()) * labels.numel()
            correct += int((logits.argmax(1) == labels).sum())
            seen += labels.numel()
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.2f}")
        total_loss, correct, seen = distributed.all_sum([total_loss, correct, seen], device)
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=total_loss / max(seen, 1),
            train_top1=correct / max(seen, 1),
            lr=scheduler.get_last_lr()[0],
        )
        if val_data is not None and here.is_main:
            val_result = evaluate(
                model,
                val_data,
                batch_size=config.batch_size,
                device=str(device),
                class_names=class_names,
                progress=False,
            )
            record.val = {"top1": val_result.top1, "top5": val_result.top5}
            if val_result.loss is not None:
                record.val["loss"] = val_result.loss
        history.append(record)
        if checkpoint is not None and here.is_main:
            save_checkpoint(
                checkpoint,
                {
                    "epoch": epoch + 1,
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(),
                    "config": asdict(config),
                    "history": [asdict(r) for r in history],
                    "model": dict(model_meta or {"name": type(model).__name__}),
                    "class_names": list(class_names) if class_names else None,
                },
            )
        distributed.barrier()  # every rank goes on once rank 0 has evaluated and saved
    return_freed_memory()  # the training's activations, freed: give them back
    return FitResult(history=history, checkpoint=checkpoint, val=val_result)


def export_checkpoint(source: str | Path, target: str | Path, *, half: bool = False) -> Path:
    """A release copy of a checkpoint: model weights and metadata, without optimiser state.

    What ships with the package and what users share: typically a third of the training
    checkpoint's size. ``half=True`` stores floating-point weights as float16 (restored to
    float32 on load by ``load_state_dict``).
    """
    payload = read_checkpoint(source)
    state = {
        key: (value.half() if half and value.is_floating_point() else value)
        for key, value in payload["state_dict"].items()
    }
    keep = ("epoch", "config", "history", "model", "class_names", "streams")
    return save_checkpoint(
        target, {"state_dict": state, **{k: payload[k] for k in keep if k in payload}}
    )


def fuse_checkpoints(
    fusion: str,
    streams: Mapping[str, str | Path],
    target: str | Path,
    *,
    preset: str = "tiny",
    mode: str = "softmax_mean",
    weights: Mapping[str, float] | None = None,
    scratch: Sequence[str] = (),
) -> Path:
    """Build a late fusion from separately trained streams (the poster's recipe) and save it.

    ``streams`` maps the fusion's stream names (e.g. ``{"i3d": ..., "xception": ...}``) to
    checkpoints written by :func:`fit`; they must share their class names. Every stream of the
    fusion must come from a checkpoint, unless named in ``scratch`` (it then keeps its random
    initial weights, said explicitly). The fused model is saved as an ordinary checkpoint that
    :func:`load_checkpoint` rebuilds.
    """
    from hartutor.models import build_model

    try:
        rules.FUSION_MODEL(fusion, "fusion")
    except rules.ArgumentError as err:
        raise HartutorError(str(err)) from err
    if not streams:
        raise HartutorError(f"{fusion}: give at least one stream checkpoint (NAME=CHECKPOINT)")
    both = sorted(set(streams) & set(scratch))
    if both:
        raise HartutorError(f"streams {both} are given a checkpoint and also named as scratch")
    loaded = {name: load_checkpoint(path) for name, path in streams.items()}
    class_lists = {name: meta_classes(path) for name, path in streams.items()}
    first = next(iter(class_lists.values()))
    if any(names != first for names in class_lists.values()):
        raise HartutorError(f"streams were trained on different classes: {class_lists}")
    num_classes = len(first) if first else next(iter(loaded.values()))[0].num_classes
    kwargs: dict[str, Any] = {"preset": preset, "num_classes": num_classes, "mode": mode}
    if weights is not None:
        kwargs["weights"] = dict(weights)
    model = build_model(fusion, **kwargs)
    unknown = sorted((set(streams) | set(scratch)) - set(model.streams))
    if unknown:
        raise HartutorError(f"{fusion} has streams {sorted(model.streams)}, not {unknown}")
    left_out = sorted(set(model.streams) - set(streams) - set(scratch))
    if left_out:
        raise HartutorError(
            f"{fusion} needs a checkpoint for every stream; none given for {left_out} (they "
            "would keep random weights and score at chance). Give --stream NAME=CHECKPOINT, or "
            "--scratch NAME to keep one untrained on purpose"
        )
    for name, (stream_model, _) in loaded.items():
        _load_state(
            model.streams[name],
            stream_model.state_dict(),
            f"checkpoint {str(streams[name])!r} (stream {name!r} of {fusion})",
        )
    return save_checkpoint(
        target,
        {
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model": {"name": fusion, "kwargs": kwargs, "data": "synthetic"},
            "class_names": first,
            "streams": {name: str(path) for name, path in streams.items()},
            "scratch": sorted(scratch),
        },
    )


def meta_classes(path: str | Path) -> list[str] | None:
    """The class names stored in a checkpoint (None if it has none)."""
    names = read_checkpoint(path).get("class_names")
    return list(names) if names else None
