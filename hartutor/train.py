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

from hartutor._fileio import atomic_path, unsafe_load_reason
from hartutor.config import configure_threads
from hartutor.errors import HartutorError, WeightsError
from hartutor.metrics import ClassificationResult, accumulate

CHECKPOINT_FORMAT = "hartutor-checkpoint-v1"


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
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")


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
    if isinstance(data, DataLoader):
        return data
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=shuffle,
        num_workers=config.num_workers,
        generator=generator,
        drop_last=False,
        persistent_workers=False,
    )


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
    """``torch.save`` ``payload`` atomically: the file is complete or absent, never half."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a hartutor checkpoint safely (``weights_only=True``) with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip, foreign objects
        raise WeightsError(
            f"checkpoint {path} could not be read safely ({unsafe_load_reason(err)}); "
            "it may be truncated, corrupt, or not a hartutor checkpoint"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    return payload


def load_checkpoint(path: str | Path, *, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint and load its weights; returns (model, metadata).

    The metadata is what :func:`fit` stored (name, builder kwargs, data, input spec) plus
    ``class_names`` and ``epoch``.
    """
    from hartutor.models import build_model

    payload = read_checkpoint(path)
    meta = payload["model"]
    model = build_model(meta["name"], **meta.get("kwargs", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise WeightsError(f"checkpoint {path} does not fit model {meta['name']!r}: {err}") from err
    meta = {**meta, "class_names": payload.get("class_names"), "epoch": payload.get("epoch")}
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
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    if not isinstance(data, DataLoader) and isinstance(data, Dataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False)
    model = model.to(dev).eval()
    with torch.inference_mode():
        for batch in tqdm(data, desc=desc, disable=not progress, leave=False):
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
    """
    from tqdm.auto import tqdm

    from hartutor.accel import optimize

    config = config or TrainConfig()
    configure_threads(config.num_threads)
    device = resolve_device(config.device)
    use_amp = device.type == "cuda" and config.amp in (True, "auto")
    seed_everything(config.seed)
    model = optimize(model.to(device))
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
        state = read_checkpoint(checkpoint)
        model.load_state_dict(state["state_dict"])
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
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress,
            leave=False,
        )
        for step, batch in enumerate(bar):
            labels = batch["label"].long().to(device)
            with torch.autocast(device.type, enabled=use_amp):
                output = model(model_inputs(model, batch, device))
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
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=total_loss / max(seen, 1),
            train_top1=correct / max(seen, 1),
            lr=scheduler.get_last_lr()[0],
        )
        if val_data is not None:
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
        if checkpoint is not None:
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
) -> Path:
    """Build a late fusion from separately trained streams (the poster's recipe) and save it.

    ``streams`` maps the fusion's stream names (e.g. ``{"i3d": ..., "xception": ...}``) to
    checkpoints written by :func:`fit`; they must share their class names. The fused model is
    saved as an ordinary checkpoint that :func:`load_checkpoint` rebuilds.
    """
    from hartutor.models import build_model

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
    unknown = sorted(set(streams) - set(model.streams))
    if unknown:
        raise HartutorError(f"{fusion} has streams {sorted(model.streams)}, not {unknown}")
    for name, (stream_model, _) in loaded.items():
        try:
            model.streams[name].load_state_dict(stream_model.state_dict())
        except RuntimeError as err:
            raise WeightsError(
                f"checkpoint {streams[name]} does not fit stream {name!r} of {fusion}: {err}"
            ) from err
    return save_checkpoint(
        target,
        {
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model": {"name": fusion, "kwargs": kwargs, "data": "synthetic"},
            "class_names": first,
            "streams": {name: str(path) for name, path in streams.items()},
        },
    )


def meta_classes(path: str | Path) -> list[str] | None:
    """The class names stored in a checkpoint (None if it has none)."""
    names = read_checkpoint(path).get("class_names")
    return list(names) if names else None
