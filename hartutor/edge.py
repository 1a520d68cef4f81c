"""Toward the edge: what a model costs to store, to run and to ship, measured (notebook 09).

- **Size by precision**: :func:`state_dict_bytes` counts the bytes of a model's tensors stored
  as float32, float16 or int8 weights. It reads shapes only, so it works on ``meta`` models
  and full-size networks cost nothing to count. :func:`saved_bytes` measures what
  ``torch.save`` really writes (tensors plus the file's own bookkeeping).
- **int8**: :func:`quantize_dynamic_int8` is PyTorch's dynamic quantisation, which converts
  ``Linear`` and ``LSTM`` layers only. :func:`quantize_weights_int8` stores the weights of
  every convolution and linear layer as int8 with one scale per output channel;
  :func:`dequantize_weights_int8` reads them back and :func:`with_int8_weights` gives the model
  that results, to measure what int8 storage costs in accuracy.
- :func:`compare_to_reference`: top-1 of copies of a model (quantised, float16) against the
  original on the same clips, how often they agree with it, and how far their probabilities
  move.
- **Speed**: :func:`measure_latency` (wall clock of one batch, repeated),
  :func:`matmul_gflops` (the machine's dense fp32 rate) and :func:`clips_per_second_needed`
  (what real time asks for).
- :func:`export_and_verify`: ``torch.export`` or TorchScript, saved to a file, loaded back
  from it and checked to give the model's own outputs; :class:`Probabilities` makes a late
  fusion (whose output is a named tuple) exportable as one program.
- :func:`read_benchmarks`: sections of the results file ``docs/benchmarks.md`` that
  ``python -m benchmarks`` writes.

Sizes are in bytes; :func:`format_bytes` writes them in MB (10^6 bytes).
"""

from __future__ import annotations

import copy
import io
import math
import re
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hartutor._fileio import atomic_path
from hartutor._markdown import markdown_table
from hartutor.errors import HartutorError

__all__ = [
    "INT8_LAYERS",
    "SCALE_SUFFIX",
    "EdgeError",
    "ExportCheck",
    "Latency",
    "Probabilities",
    "SizeRow",
    "VariantResult",
    "clips_per_second_needed",
    "compare_to_reference",
    "dequantize_weights_int8",
    "export_and_verify",
    "find_benchmarks_file",
    "format_bytes",
    "matmul_gflops",
    "measure_latency",
    "quantize_dynamic_int8",
    "quantize_weights_int8",
    "read_benchmarks",
    "saved_bytes",
    "size_markdown",
    "size_row",
    "state_dict_bytes",
    "variant_markdown",
    "with_float16_weights",
    "with_int8_weights",
]

Precision = Literal["float32", "float16", "int8"]
ExportMethod = Literal["export", "torchscript"]

#: Layers whose weights :func:`quantize_weights_int8` stores as int8 (subclasses included,
#: e.g. hartutor's ``SamePadConv3d``).
INT8_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
#: Key suffix of the float32 scales beside each int8 weight.
SCALE_SUFFIX = ".int8_scale"
_INT8_MAX = 127


class EdgeError(HartutorError, RuntimeError):
    """A size, quantisation, export or timing request that cannot be carried out."""


# --------------------------------------------------------------------------- size on disk


def _int8_weight_names(model: nn.Module, layers: tuple[type[nn.Module], ...]) -> set[str]:
    """State-dict keys of the weights of ``layers`` in ``model``."""
    names = set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, layers) and isinstance(weight, torch.Tensor) and weight.ndim >= 2:
            names.add(f"{name}.weight" if name else "weight")
    return names


def state_dict_bytes(
    model: nn.Module,
    precision: Precision = "float32",
    *,
    layers: tuple[type[nn.Module], ...] = INT8_LAYERS,
    per_channel: bool = True,
) -> int:
    """Bytes of ``model``'s state dict (parameters and buffers) stored at ``precision``.

    ``float32`` / ``float16``: every floating-point tensor at 4 / 2 bytes per value.
    ``int8``: the weights of ``layers`` at 1 byte per value plus one float32 scale per output
    channel (``per_channel``) or per tensor; every other floating-point tensor (biases,
    BatchNorm) stays float32. Integer tensors (``num_batches_tracked``) keep their own size.
    Only shapes are read: build full-size models under ``torch.device("meta")``. This is the
    payload; a file adds its own bookkeeping (:func:`saved_bytes`).
    """
    if precision not in ("float32", "float16", "int8"):
        raise EdgeError(f"precision must be 'float32', 'float16' or 'int8', got {precision!r}")
    int8 = _int8_weight_names(model, layers) if precision == "int8" else set()
    float_bytes = 2 if precision == "float16" else 4
    total = 0
    for name, tensor in model.state_dict().items():
        if name in int8:
            scales = tensor.shape[0] if per_channel else 1
            total += tensor.numel() + 4 * scales
        elif tensor.is_floating_point():
            total += float_bytes * tensor.numel()
        else:
            total += tensor.element_size() * tensor.numel()
    return total


def saved_bytes(obj: nn.Module | Mapping[str, torch.Tensor]) -> int:
    """Bytes ``torch.save`` writes for a state dict (a module: its ``state_dict()``)."""
    state = obj.state_dict() if isinstance(obj, nn.Module) else dict(obj)
    if any(t.device.type == "meta" for t in state.values() if isinstance(t, torch.Tensor)):
        raise EdgeError(
            "a meta model has no values to save; count its size with state_dict_bytes instead"
        )
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def format_bytes(n: int | float) -> str:
    """``n`` bytes in MB (10^6 bytes), or kB below one MB."""
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


@dataclass(frozen=True)
class SizeRow:
    """One model's parameters and state-dict bytes at each precision (see
    :func:`state_dict_bytes`). ``int8_dynamic``: what PyTorch's dynamic quantisation
    stores, int8 ``Linear`` weights with one scale per tensor and everything else float32."""

    label: str
    params: int
    float32: int
    float16: int
    int8_weights: int
    int8_dynamic: int


def size_row(label: str, model: nn.Module) -> SizeRow:
    """Count ``model`` (a ``meta`` model is fine) at every precision."""
    return SizeRow(
        label,
        sum(p.numel() for p in model.parameters()),
        state_dict_bytes(model, "float32"),
        state_dict_bytes(model, "float16"),
        state_dict_bytes(model, "int8"),
        state_dict_bytes(model, "int8", layers=(nn.Linear,), per_channel=False),
    )


def size_markdown(rows: Sequence[SizeRow]) -> str:
    """A Markdown table of :func:`size_row` rows, with each precision's share of float32."""
    header = ("model", "params", "float32", "float16", "int8 weights", "dynamic int8 (Linear)")

    def cell(n: int, ref: int) -> str:
        return f"{format_bytes(n)} ({n / ref:.0%})"

    body = [
        (
            r.label,
            f"{r.params:,}",
            format_bytes(r.float32),
            cell(r.float16, r.float32),
            cell(r.int8_weights, r.float32),
            cell(r.int8_dynamic, r.float32),
        )
        for r in rows
    ]
    return markdown_table(header, body)


# --------------------------------------------------------------------------- int8 and float16


def quantize_weights_int8(
    model: nn.Module,
    *,
    layers: tuple[type[nn.Module], ...] = INT8_LAYERS,
    per_channel: bool = True,
) -> dict[str, torch.Tensor]:
    """``model``'s state dict with the weights of ``layers`` stored as int8 (weight-only).

    Symmetric quantisation: ``scale = max|w| / 127`` per output channel (``per_channel``) or
    per tensor, ``q = round(w / scale)`` in [-127, 127]. Each weight ``KEY`` becomes an int8
    tensor ``KEY`` and a float32 scale ``KEY + SCALE_SUFFIX``; other tensors are copied.
    Values are restored with :func:`dequantize_weights_int8`; the arithmetic stays float, so
    this saves storage and download size, not time.
    """
    int8 = _int8_weight_names(model, layers)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if tensor.is_meta:
            raise EdgeError("a meta model has no weights to quantise; build it on the CPU")
        tensor = tensor.detach().cpu()
        if name not in int8:
            out[name] = tensor.clone()
            continue
        w = tensor.float()
        if per_channel:
            peak = w.abs().reshape(w.shape[0], -1).amax(dim=1)
        else:
            peak = w.abs().max().reshape(())
        scale = torch.where(peak > 0, peak / _INT8_MAX, torch.ones_like(peak))
        view = scale.reshape(-1, *([1] * (w.ndim - 1))) if per_channel else scale
        out[name] = torch.round(w / view).clamp(-_INT8_MAX, _INT8_MAX).to(torch.int8)
        out[name + SCALE_SUFFIX] = scale.float()
    return out


def dequantize_weights_int8(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 state dict that :func:`quantize_weights_int8` stored."""
    scales = {k.removesuffix(SCALE_SUFFIX): v for k, v in state.items() if k.endswith(SCALE_SUFFIX)}
    orphans = sorted(k for k in scales if k not in state)
    if orphans:
        raise EdgeError(f"int8 scales without their weights: {orphans[:5]}")
    unscaled = sorted(k for k, v in state.items() if v.dtype == torch.int8 and k not in scales)
    if unscaled:
        raise EdgeError(
            f"int8 tensors without a scale ({SCALE_SUFFIX!r}): {unscaled[:5]}; was this state "
            "dict written by quantize_weights_int8?"
        )
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if name in scales:
            scale = scales[name].float()
            if scale.ndim:
                scale = scale.reshape(-1, *([1] * (tensor.ndim - 1)))
            out[name] = tensor.float() * scale
        else:
            out[name] = tensor
    return out


def with_int8_weights(
    model: nn.Module,
    *,
    layers: tuple[type[nn.Module], ...] = INT8_LAYERS,
    per_channel: bool = True,
) -> nn.Module:
    """A copy of ``model`` whose weights went through int8 storage and back (``model`` is
    left unchanged): what a user of the int8 file computes."""
    restored = dequantize_weights_int8(
        quantize_weights_int8(model, layers=layers, per_channel=per_channel)
    )
    clone = copy.deepcopy(model)
    clone.load_state_dict(restored)
    return clone.eval()


def with_float16_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose floating-point tensors were rounded to float16 and back:
    what loading a float16 checkpoint (``export_checkpoint(half=True)``) computes."""
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in [*clone.parameters(), *clone.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return clone.eval()


def quantize_dynamic_int8(model: nn.Module) -> tuple[nn.Module, int]:
    """PyTorch's dynamic int8 quantisation of a copy of ``model``: ``(copy, layers converted)``.

    ``torch.ao.quantization.quantize_dynamic`` stores ``Linear`` and ``LSTM`` weights as int8
    and quantises their inputs on the fly; convolutions are left in float32. CPU only. The
    API is deprecated in favour of the ``torchao`` package; its deprecation warnings are
    silenced here.
    """
    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize is None or not hasattr(quantize, "quantize_dynamic"):
        raise EdgeError(
            f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic; "
            "use torchao's quantize_ API, or with_int8_weights for int8 storage"
        )
    count = sum(isinstance(m, (nn.Linear, nn.LSTM)) for m in model.modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        quantized = quantize.quantize_dynamic(
            copy.deepcopy(model).cpu().eval(), {nn.Linear, nn.LSTM}, dtype=torch.qint8
        )
    return quantized, count


# --------------------------------------------------------------------------- accuracy of copies


@dataclass(frozen=True)
class VariantResult:
    """A copy of a model scored on the same clips as the reference."""

    name: str
    top1: float
    agreement: float  # share of clips whose top-1 class is the reference's
    max_probability_change: float  # largest |p - p_reference| over clips and classes
    num_clips: int


def compare_to_reference(
    variants: Mapping[str, nn.Module],
    data: Dataset | DataLoader,
    *,
    reference: str | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> list[VariantResult]:
    """Score every model of ``variants`` on ``data`` and compare it with ``reference`` (default:
    the first). For a late fusion the fused probabilities are compared. The data must give
    the same clips, in the same order, on every pass (a synthetic or uniformly sampled set).
    """
    from hartutor.train import collect_scores

    if not variants:
        raise EdgeError("compare_to_reference needs at least one model")
    reference = reference if reference is not None else next(iter(variants))
    if reference not in variants:
        raise EdgeError(f"reference {reference!r} is not among {sorted(variants)}")
    probabilities: dict[str, torch.Tensor] = {}
    labels: dict[str, torch.Tensor] = {}
    for name, model in variants.items():
        scores, labels[name] = collect_scores(model, data, batch_size=batch_size, device=device)
        logits = scores["fused"] if "fused" in scores else scores["model"]
        probabilities[name] = F.softmax(logits, dim=-1)
    ref_labels = labels[reference]
    if any(not torch.equal(ref_labels, lab) for lab in labels.values()):
        raise EdgeError("the data gave different clips on different passes; use a fixed set")
    ref = probabilities[reference]
    results = []
    for name, p in probabilities.items():
        prediction = p.argmax(dim=-1)
        results.append(
            VariantResult(
                name,
                float((prediction == ref_labels).float().mean()),
                float((prediction == ref.argmax(dim=-1)).float().mean()),
                float((p - ref).abs().max()),
                int(ref_labels.numel()),
            )
        )
    return results


def variant_markdown(
    results: Sequence[VariantResult], sizes: Mapping[str, int] | None = None
) -> str:
    """A Markdown table of :func:`compare_to_reference` results (``sizes``: bytes by name)."""
    header = ["variant", "top-1", "same top-1 as reference", "largest probability change"]
    if sizes is not None:
        header.insert(1, "size")
    body = []
    for r in results:
        row: list[object] = [
            r.name,
            f"{r.top1:.1%}",
            f"{r.agreement:.1%}",
            f"{r.max_probability_change:.4f}",
        ]
        if sizes is not None:
            row.insert(1, format_bytes(sizes[r.name]) if r.name in sizes else "—")
        body.append(row)
    return markdown_table(header, body)


# --------------------------------------------------------------------------- speed


@dataclass(frozen=True)
class Latency:
    """Wall-clock seconds of repeated forward passes on one batch (warm-up excluded)."""

    seconds: tuple[float, ...]
    batch_size: int
    threads: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def clips_per_second(self) -> float:
        """Throughput at the median latency."""
        return self.batch_size / self.median


def _batch_size(inputs: torch.Tensor | Mapping[str, torch.Tensor]) -> int:
    tensor = inputs if isinstance(inputs, torch.Tensor) else next(iter(inputs.values()))
    return int(tensor.shape[0])


def measure_latency(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, torch.Tensor],
    *,
    repeats: int = 10,
    warmup: int = 2,
) -> Latency:
    """Time ``model(inputs)`` in eval mode under ``torch.inference_mode``: ``warmup`` untimed
    calls, then ``repeats`` timed ones. Run it with the thread count you want to report
    (``torch.set_num_threads``); on a shared machine other processes slow it down."""
    if repeats < 1 or warmup < 0:
        raise EdgeError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    model.eval()
    first = inputs if isinstance(inputs, torch.Tensor) else next(iter(inputs.values()))
    sync = torch.cuda.synchronize if first.device.type == "cuda" else (lambda: None)
    seconds = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(inputs)
            sync()  # a GPU runs asynchronously: wait for the result before reading the clock
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
    return Latency(tuple(seconds), _batch_size(inputs), torch.get_num_threads())


def matmul_gflops(
    *,
    size: int = 1024,
    repeats: int = 5,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> float:
    """GFLOP/s of a ``size`` x ``size`` matrix product (2 n^3 FLOPs) in ``dtype`` on
    ``device``, best of ``repeats``: the machine's practical peak for dense arithmetic at the
    current thread count, an upper bound for what a convolution reaches."""
    if size < 1 or repeats < 1:
        raise EdgeError(f"size and repeats must be >= 1, got {size}, {repeats}")
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if a.device.type == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()  # a GPU runs asynchronously: wait for the product before reading the clock
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def clips_per_second_needed(*, hop_frames: int, fps: float = 25.0) -> float:
    """Clips a model must score per second to keep up with a ``fps`` video when it scores a
    new clip every ``hop_frames`` frames (``hop_frames`` = clip length: clips side by side;
    1: a decision at every frame)."""
    if hop_frames < 1 or not fps > 0:
        raise EdgeError(f"hop_frames must be >= 1 and fps > 0, got {hop_frames}, {fps}")
    return fps / hop_frames


# --------------------------------------------------------------------------- export


class Probabilities(nn.Module):
    """``model`` with class probabilities as its only output, ready to export.

    A late fusion returns a :class:`~hartutor.models.fusion.FusionOutput` (per-stream logits
    and fused scores); this wrapper returns its fused ``probabilities``, and the softmax of
    the logits of any other model, so the whole fusion exports as one program.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if hasattr(out, "probabilities"):
            return out.probabilities
        if not isinstance(out, torch.Tensor):
            raise EdgeError(f"{type(self.model).__name__} returns {type(out).__name__}")
        return F.softmax(out, dim=-1)


@dataclass(frozen=True)
class ExportCheck:
    """An exported model, loaded back from its file and compared with the original."""

    method: str
    path: Path
    file_bytes: int
    max_abs_difference: float
    seconds: float  # export and save


def _tensor_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    if not isinstance(out, torch.Tensor):
        raise EdgeError(
            f"{type(model).__name__} returns {type(out).__name__}, not a tensor; wrap a fusion "
            "in Probabilities(fusion), or export one stream (fusion.streams['i3d'])"
        )
    return out


def export_and_verify(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    method: ExportMethod = "export",
    dynamic_batch: bool = False,
    atol: float = 1e-4,
) -> ExportCheck:
    """Export ``model`` (eval mode), save it to ``path``, load it back and compare its output
    on ``example`` with the model's. Raises :class:`EdgeError` if they differ by more than
    ``atol``.

    ``method="export"``: ``torch.export`` to a ``.pt2`` program (shapes fixed to
    ``example``'s unless ``dynamic_batch``, which leaves the batch size free).
    ``"torchscript"``: ``torch.jit.trace``, which records the operations run on ``example``
    (its trace warnings, about shapes read as Python numbers, are silenced: the traced model
    expects inputs shaped like ``example``). Only the file written here is loaded back.
    """
    if method not in ("export", "torchscript"):
        raise EdgeError(f"method must be 'export' or 'torchscript', got {method!r}")
    model = model.eval()
    path = Path(path)
    reference = _tensor_output(model, example)
    start = time.perf_counter()
    with atomic_path(path) as tmp:
        if method == "export":
            trace_input = example
            dynamic_shapes = None
            if dynamic_batch:
                # export specialises a batch of 1; trace with 2 and leave the size free
                if example.shape[0] < 2:
                    trace_input = example.repeat(2, *([1] * (example.ndim - 1)))
                dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},)
            try:
                program = torch.export.export(model, (trace_input,), dynamic_shapes=dynamic_shapes)
            except Exception as err:  # torch raises many kinds; say which model and how
                hint = " without dynamic_batch, or one stream at a time" if dynamic_batch else ""
                raise EdgeError(
                    f"torch.export could not export {type(model).__name__} "
                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                    f"try it{hint or ' one stream at a time'}"
                ) from err
            torch.export.save(program, tmp)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(model, example)
            torch.jit.save(traced, str(tmp))
    seconds = time.perf_counter() - start
    if method == "export":
        loaded: Any = torch.export.load(path).module()
    else:
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        output = loaded(example)
    if not isinstance(output, torch.Tensor) or output.shape != reference.shape:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise EdgeError(
            f"the model loaded from {path} returns {got}, not a tensor of {tuple(reference.shape)}"
        )
    difference = float((output - reference).abs().max()) if reference.numel() else 0.0
    if not difference <= atol:
        raise EdgeError(
            f"the model loaded from {path} differs from the original by {difference:.3g} "
            f"(> atol {atol:g}); do not ship it"
        )
    return ExportCheck(method, path, path.stat().st_size, difference, seconds)


# --------------------------------------------------------------------------- benchmarks file

BENCHMARKS_FILE = Path("docs") / "benchmarks.md"
_SECTION = re.compile(
    r"<!-- begin: (?P<name>[a-z0-9_-]+) -->\n(?P<body>.*?)<!-- end: (?P=name) -->", re.S
)


def find_benchmarks_file(start: Path | None = None) -> Path | None:
    """``docs/benchmarks.md`` in ``start`` (default: the current folder) or a parent of it,
    as seen from ``tutorials/``; None when no benchmark has written it yet."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / BENCHMARKS_FILE
        if candidate.is_file():
            return candidate
    return None


def read_benchmarks(path: str | Path, sections: Sequence[str] | None = None) -> str:
    """The Markdown of the results file at ``path``, section markers removed.

    ``sections``: keep only these (``<!-- begin: NAME -->`` ... ``<!-- end: NAME -->``), in the
    order given; the whole file when it has none of them. Raises :class:`EdgeError` naming
    the file and the command that writes it when it does not exist.
    """
    file = Path(path)
    if not file.is_file():
        raise EdgeError(f"{file} does not exist: run 'python -m benchmarks' to write it")
    text = file.read_text(encoding="utf-8")
    found = {m.group("name"): m.group("body").strip() for m in _SECTION.finditer(text)}
    chosen = [found[name] for name in sections or () if name in found]
    if chosen:
        return "\n\n".join(chosen)
    return re.sub(r"<!-- (?:begin|end): [a-z0-9_-]+ -->\n?", "", text).strip()


@dataclass(frozen=True)
class BenchmarkRate:
    """One model's measured speed, read from the benchmarks file, with the device it holds for."""

    model: str
    clips_per_second: float
    input: str
    device: str  # e.g. "AMD EPYC, 2 torch thread(s)"


_MEASURED = re.compile(r"_Measured [^_]*? on (?P<cpu>[^,]+), (?P<threads>\d+) torch thread")


def benchmark_rate(path: str | Path, model: str) -> BenchmarkRate | None:
    """The plain fp32 clips/s of ``model`` (a row label of the inference section's table, e.g.
    ``"hartutor I3D + Xception fusion"``) and the machine it was measured on; None when the
    file has no such row. A verdict read from it holds for that machine only."""
    section = read_benchmarks(path, ["inference"])
    measured = _MEASURED.search(section)
    device = (
        f"{measured.group('cpu')}, {measured.group('threads')} torch thread(s)"
        if measured
        else "the benchmark machine"
    )
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] == model:
            try:
                rate = float(cells[5].replace(",", ""))
            except ValueError:
                continue
            return BenchmarkRate(model, rate, cells[1], device)
    return None


def package_bytes(module: str) -> int:
    """Bytes on disk of an installed Python package's folder (``torch``, ``timm``...): what a
    device must store to run code that imports it."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EdgeError(f"{module!r} is not an installed package")
    total = 0
    for folder in spec.submodule_search_locations:
        for file in Path(folder).rglob("*"):
            if file.is_file() and not file.is_symlink():
                total += file.stat().st_size
    return total


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else :mod:`platform`'s), to name
    the device a timing holds for."""
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"
