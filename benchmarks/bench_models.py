"""Inference speed and peak memory of the full-size video models, plain and optimised.

hartutor's paper-size I3D, C3D, Xception frame stream and I3D + Xception fusion beside
pytorchvideo's ``i3d_r50`` and torchvision's ``r3d_18`` and ``s3d``, all with random weights
and 400 classes, one clip at a time (batch 1) at each model's own input size. Every
(model, variant) runs in a fresh process, so its peak resident memory is its own. Variants:

- ``plain``: ``model.eval()`` under ``torch.no_grad()``, fp32 (the reference);
- ``inference_mode``: ``torch.inference_mode()`` instead of ``no_grad``;
- ``channels_last``: weights and input in channels-last (3D) layout;
- ``bf16``: ``torch.autocast`` in bfloat16 on a CPU, float16 on CUDA (mixed precision);
- ``int8_dynamic``: ``torch.ao.quantization.quantize_dynamic`` (Linear/LSTM layers only; CPU);
- ``bn_folded``: BatchNorm folded once into the preceding conv (hartutor's ``Unit3D``
  layers; in eval they already fold it on every call wherever that pays, so this only
  saves the per-call folding and the small maps' BatchNorms);
- ``compile``: ``torch.compile`` (compile time reported apart);
- ``combined``: inference_mode + channels_last + bn_folded (where it applies) + bf16.

GFLOP/s use FLOPs counted by :func:`hartutor.params.count_flops` (2 per multiply-add) and are
compared with a large fp32 matrix product's GFLOP/s measured in the same run.
:func:`head_to_head` times the I3D, torchvision's ``r3d_18`` and the matrix product in
alternation in one process, so that other processes' load hits them alike.

    python -m benchmarks.bench_models                 # plain rows + I3D's variants
    python -m benchmarks.bench_models --all-variants  # every model x every variant
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    LoadMonitor,
    Runner,
    Timing,
    current_rss_mb,
    emit,
    fmt,
    gflops_per_second,
    markdown_table,
    matmul_gflops,
    peak_rss_mb,
    run_worker,
    time_call,
    worker_payload,
)

NUM_CLASSES = 400
VARIANTS = (
    "plain",
    "inference_mode",
    "channels_last",
    "bf16",
    "int8_dynamic",
    "bn_folded",
    "compile",
    "combined",
)


@dataclass(frozen=True)
class ModelCase:
    """One model at one input size: ``source`` is hartutor, torchvision or pytorchvideo."""

    key: str
    label: str
    source: str
    name: str
    input_shape: tuple[int, int, int, int]  # (C, T, H, W)
    full_only: bool = False

    @property
    def input_label(self) -> str:
        _, t, h, w = self.input_shape
        return f"{t}x{h}x{w}"


CASES: tuple[ModelCase, ...] = (
    ModelCase("i3d", "hartutor I3D", "hartutor", "i3d", (3, 64, 224, 224)),
    ModelCase("c3d", "hartutor C3D", "hartutor", "c3d", (3, 16, 112, 112)),
    ModelCase(
        "xception", "hartutor Xception frame stream", "hartutor", "xception", (3, 8, 299, 299)
    ),
    ModelCase(
        "fusion",
        "hartutor I3D + Xception fusion",
        "hartutor",
        "i3d_xception_fusion",
        (3, 64, 224, 224),
    ),
    ModelCase("i3d_r50", "pytorchvideo i3d_r50", "pytorchvideo", "i3d_r50", (3, 8, 224, 224)),
    ModelCase("r3d_18", "torchvision r3d_18", "torchvision", "r3d_18", (3, 16, 112, 112)),
    ModelCase(
        "r3d_18_64",
        "torchvision r3d_18",
        "torchvision",
        "r3d_18",
        (3, 64, 224, 224),
        full_only=True,
    ),
    ModelCase("s3d", "torchvision s3d", "torchvision", "s3d", (3, 64, 224, 224)),
)
CASE_BY_KEY = {case.key: case for case in CASES}


def build(case: ModelCase) -> Any:
    """The model of ``case`` with random weights (on the current default device); hartutor's
    models go through :func:`hartutor.accel.optimize`, other libraries' stay as they are."""
    import hartutor  # noqa: F401  (before torchvision / pytorchvideo)

    if case.source == "hartutor":
        from hartutor.accel import optimize
        from hartutor.models import build_model

        return optimize(build_model(case.name, preset="paper", num_classes=NUM_CLASSES))
    if case.source == "torchvision":
        import torchvision.models.video as video

        return getattr(video, case.name)(weights=None, num_classes=NUM_CLASSES)
    if case.source == "pytorchvideo":
        from pytorchvideo.models import hub

        return getattr(hub, case.name)(pretrained=False)
    raise ValueError(f"unknown source {case.source!r}")


def make_clip(case: ModelCase, device: str = "cpu") -> Any:
    """The input every variant of ``case`` sees: a seeded random clip in [-1, 1]."""
    import torch

    generator = torch.Generator().manual_seed(0)
    clip = torch.rand((1, *case.input_shape), generator=generator) * 2 - 1
    return clip.to(device)


def scores(output: Any) -> Any:
    """Class scores of a model's output (a late fusion's fused scores)."""
    return output.fused if hasattr(output, "fused") else output


@dataclass(frozen=True)
class Cost:
    """FLOPs of one clip and where the Linear/LSTM layers (what int8_dynamic touches) are."""

    flops: int
    params: int
    linear_flops: int


def model_cost(case: ModelCase) -> Cost:
    """Count on PyTorch's meta device: shapes only, no memory, no arithmetic."""
    import torch
    from torch import nn

    from hartutor.params import count_flops, count_parameters

    with torch.device("meta"):
        model = build(case)
    total, per_module = count_flops(model, torch.zeros((1, *case.input_shape), device="meta"))
    linear = sum(
        per_module.get(name, 0)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.LSTM))
    )
    return Cost(total, count_parameters(model), linear)


# --------------------------------------------------------------------------- variants


def to_channels_last(model: Any) -> None:
    """Store 4D weights channels-last and 5D weights channels-last-3d, in place."""
    import torch

    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.ndim == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
        elif tensor.ndim == 5:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last_3d)


def fold_batch_norm(model: Any) -> int:
    """Fold each eval-mode BatchNorm of hartutor's ``Unit3D`` layers into its conv, for good
    (:func:`hartutor.accel.ops.fold_batch_norm`). Returns how many were folded."""
    import torch
    from torch import nn

    from hartutor.accel.ops import fold_batch_norm
    from hartutor.models.layers import Unit3D

    folded = 0
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, Unit3D) or module.bn is None:
                continue
            conv = module.conv3d
            weight, bias = fold_batch_norm(conv.weight, conv.bias, module.bn)
            conv.weight.copy_(weight)
            conv.bias = nn.Parameter(bias)
            module.bn = None
            folded += 1
    return folded


@contextlib.contextmanager
def _no_context() -> Iterator[None]:
    yield


@dataclass
class Prepared:
    """A model and clip made ready for one variant, and how to call them."""

    call: Callable[[], Any]
    note: str = ""
    compile_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: What ``combined`` stacks: every variant that keeps the model's arithmetic (no compile).
COMBINED = ("inference_mode", "channels_last", "bn_folded", "bf16")


def prepare(variant: str, model: Any, clip: Any, device: str) -> Prepared:
    """Apply ``variant`` to ``model``/``clip``; the returned ``call`` runs one inference.

    ``combined`` applies each of :data:`COMBINED` that fits the model (BatchNorm folding
    only where hartutor's ``Unit3D`` layers are).
    """
    import time

    import torch

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    steps = set(COMBINED) if variant == "combined" else {variant}
    grad_context: Callable[[], Any] = torch.no_grad
    autocast: Callable[[], Any] = _no_context
    notes = []
    compile_s = None
    if "inference_mode" in steps:
        grad_context = torch.inference_mode
    if "channels_last" in steps:
        to_channels_last(model)
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    if "bn_folded" in steps:
        count = fold_batch_norm(model)
        if not count and variant == "bn_folded":
            raise RuntimeError("no hartutor Unit3D BatchNorm to fold")
        if count:
            notes.append(f"{count} BatchNorms folded")
    if "bf16" in steps:
        dtype = torch.float16 if device.startswith("cuda") else torch.bfloat16
        notes.append("autocast " + str(dtype).removeprefix("torch."))

        def autocast() -> Any:
            return torch.autocast(device.split(":")[0], dtype=dtype)

    if "int8_dynamic" in steps:
        if device.startswith("cuda"):
            raise RuntimeError("dynamic quantisation runs on CPUs only")
        from hartutor.edge import quantize_dynamic_int8

        model, count = quantize_dynamic_int8(model)
        notes.append(f"{count} Linear/LSTM layers quantised" if count else "no Linear/LSTM layer")
    if "compile" in steps:
        model = torch.compile(model)

    def call() -> Any:
        with grad_context(), autocast():
            return model(clip)

    if "compile" in steps:
        start = time.perf_counter()
        call()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        notes.append(f"first call (compiling) {compile_s:.0f} s")
    return Prepared(call, "; ".join(notes), compile_s)


# --------------------------------------------------------------------------- worker


def _infer_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """One (model, variant) in this fresh process: times, peak memory, output difference."""
    import torch

    import hartutor  # noqa: F401

    torch.set_num_threads(int(payload["threads"]))
    device = payload["device"]
    case = CASE_BY_KEY[payload["case"]]
    base_mb = current_rss_mb()
    torch.manual_seed(0)
    with torch.device(device):
        model = build(case).eval()
    clip = make_clip(case, device)
    built_mb = current_rss_mb()
    prepared = prepare(payload["variant"], model, clip, device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with LoadMonitor() as load:
        timing = time_call(
            prepared.call, repeats=int(payload["repeats"]), warmup=int(payload["warmup"]), sync=sync
        )
    output = scores(prepared.call()).detach().float().cpu()
    reference_path = Path(payload["reference"])
    if payload["variant"] == "plain":
        torch.save(output, reference_path)
        difference = 0.0
    elif reference_path.exists():
        reference = torch.load(reference_path, weights_only=True)
        difference = float((output - reference).abs().max() / reference.abs().max())
    else:
        difference = None
    return {
        "seconds": list(timing.seconds),
        "peak_mb": peak_rss_mb(),
        "base_mb": base_mb,
        "built_mb": built_mb,
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "note": prepared.note,
        "compile_s": prepared.compile_s,
        "relative_difference": difference,
        "others_cores": load.others_cores,
    }


def _minor_page_faults() -> int:
    """Minor page faults of this process so far (pages the kernel mapped in and zeroed)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _head_to_head_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """I3D, r3d_18 (I3D's input and its own) and a matmul, timed in turn in one process;
    with ``keep_freed_memory`` set, under :func:`hartutor.config.keep_freed_memory`."""
    import torch

    import hartutor  # noqa: F401
    from hartutor.config import keep_freed_memory

    if payload.get("keep_freed_memory") and not keep_freed_memory():
        raise RuntimeError("this C library does not take glibc's mallopt() settings")
    torch.set_num_threads(int(payload["threads"]))
    device = payload["device"]
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else None
    keys = list(payload["cases"])
    calls = {}
    for key in keys:
        case = CASE_BY_KEY[key]
        torch.manual_seed(0)
        with torch.device(device):
            model = build(case).eval()
        clip = make_clip(case, device)
        calls[key] = (lambda m, x: lambda: m(x))(model, clip)
    best: dict[str, list[float]] = {key: [] for key in keys}
    faults: dict[str, list[int]] = {key: [] for key in keys}
    matmul: list[float] = []
    with torch.no_grad(), LoadMonitor() as load:
        for key in keys:
            calls[key]()  # warm-up
        for _ in range(int(payload["rounds"])):
            matmul.append(matmul_gflops(repeats=3, device=device))
            for key in keys:
                before = _minor_page_faults()
                best[key].append(time_call(calls[key], repeats=1, warmup=0, sync=sync).best)
                faults[key].append(_minor_page_faults() - before)
    return {
        "seconds": best,
        "matmul_gflops": matmul,
        "others_cores": load.others_cores,
        "page_faults": {key: min(counts) for key, counts in faults.items()},
        "peak_mb": peak_rss_mb(),
    }


#: Profiler op names by kind, for :func:`breakdown` (self CPU time of each aten op).
OP_KINDS: dict[str, tuple[str, ...]] = {
    "convolution": ("conv", "mkldnn_convolution"),
    "batch norm": ("batch_norm",),
    # hartutor.accel runs stride-1 max-pools as elementwise maxima (ops.separable_max_pool3d)
    "pooling": ("pool", "aten::maximum"),
    "activation": ("clamp_min", "relu", "threshold", "hardtanh", "sigmoid"),
    "concatenation": ("aten::cat",),
    "copies and padding": ("copy_", "clone", "contiguous", "fill_", "pad"),
    "matmul / linear": ("addmm", "aten::mm", "bmm", "linear", "matmul"),
}


def op_kind(name: str) -> str:
    """The kind of a profiler op name (``other`` if none matches)."""
    for kind, patterns in OP_KINDS.items():
        if any(p in name for p in patterns):
            return kind
    return "other"


def _profile_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Self CPU milliseconds per kind of op in one profiled plain call (after a warm-up)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    import hartutor  # noqa: F401

    torch.set_num_threads(int(payload["threads"]))
    case = CASE_BY_KEY[payload["case"]]
    torch.manual_seed(0)
    model = build(case).eval()
    clip = make_clip(case)
    with torch.no_grad():
        model(clip)
        with LoadMonitor() as load, profile(activities=[ProfilerActivity.CPU]) as prof:
            model(clip)
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        kind = op_kind(event.key)
        kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total / 1e3
    return {"ms": kinds, "others_cores": load.others_cores}


def breakdown(
    keys: Sequence[str], *, threads: int, runner: Runner = run_worker
) -> dict[str, dict[str, Any]]:
    """Where each model's time goes (``torch.profiler``), each in a fresh process."""
    out = {}
    for key in keys:
        payload = {"kind": "profile", "case": key, "threads": threads}
        result = runner("benchmarks.bench_models", payload, threads=threads)
        if "error" not in result:
            result["flops"] = model_cost(CASE_BY_KEY[key]).flops
        out[key] = result
    return out


def breakdown_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: share of profiled time per kind of op; the convolutions' own GFLOP/s."""
    kinds = [*OP_KINDS, "other"]
    header = ("model", "input", "profiled ms", "conv GFLOP/s", *(f"{k} %" for k in kinds))
    body = []
    for key, result in results.items():
        case = CASE_BY_KEY[key]
        if "error" in result:
            body.append([case.label, case.input_label, f"error: {result['error']}", "—"])
            body[-1] += ["—"] * len(kinds)
            continue
        ms = result["ms"]
        total = sum(ms.values())
        conv = ms.get("convolution", 0.0)
        body.append(
            [
                case.label,
                case.input_label,
                f"{total:,.0f}",
                fmt(result["flops"] / (conv / 1e3) / 1e9, 0) if conv else "—",
                *(f"{100 * ms.get(k, 0.0) / total:.0f}" for k in kinds),
            ]
        )
    return markdown_table(header, body)


# --------------------------------------------------------------------------- parent side


@dataclass
class Row:
    """One measured (model, variant)."""

    case: ModelCase
    variant: str
    cost: Cost
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return "error" not in self.result

    @property
    def timing(self) -> Timing:
        return Timing(tuple(self.result["seconds"]))

    @property
    def gflops(self) -> float:
        """GFLOP/s of the best timed call."""
        return gflops_per_second(self.cost.flops, self.timing.best)


def measure(
    cases: Sequence[ModelCase],
    variants_for: Callable[[ModelCase], Sequence[str]],
    *,
    threads: int,
    device: str,
    repeats: int,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
    runner: Runner = run_worker,
) -> list[Row]:
    """Every (case, variant) in its own worker process; plain first (the reference)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="hartutor-bench-") as tmp:
        for case in cases:
            cost = model_cost(case)
            for variant in variants_for(case):
                payload = {
                    "kind": "infer",
                    "case": case.key,
                    "variant": variant,
                    "threads": threads,
                    "device": device,
                    "repeats": repeats,
                    "warmup": warmup,
                    "reference": str(Path(tmp) / f"{case.key}.pt"),
                }
                result = runner("benchmarks.bench_models", payload, threads=threads)
                rows.append(Row(case, variant, cost, result))
                if progress:
                    progress(_progress_line(rows[-1]))
    return rows


def _progress_line(row: Row) -> str:
    if not row.ok:
        return f"  {row.case.label} {row.case.input_label} {row.variant}: {row.result['error']}"
    return (
        f"  {row.case.label} {row.case.input_label} {row.variant}: "
        f"{row.timing.best * 1e3:.0f} ms/clip, {row.gflops:.0f} GFLOP/s, "
        f"peak {row.result['peak_mb']:.0f} MiB"
    )


def head_to_head(
    *,
    threads: int,
    device: str,
    rounds: int,
    same_input: bool = True,
    runner: Runner = run_worker,
    env: Mapping[str, str] | None = None,
    keep_freed_memory: bool = False,
) -> dict[str, Any]:
    """Best-of-``rounds`` seconds of I3D and r3d_18 timed alternately, and the matmul peak
    (``env``: extra environment variables for the worker process; ``keep_freed_memory``:
    the worker first calls :func:`hartutor.config.keep_freed_memory`, as the CLI does)."""
    keys = ["i3d", "r3d_18", *(["r3d_18_64"] if same_input else [])]
    payload = {
        "kind": "head_to_head",
        "cases": keys,
        "threads": threads,
        "device": device,
        "rounds": rounds,
        "keep_freed_memory": keep_freed_memory,
    }
    extra = {"env": dict(env)} if env else {}
    result = runner("benchmarks.bench_models", payload, threads=threads, **extra)
    if "error" in result:
        return result
    result["flops"] = {key: model_cost(CASE_BY_KEY[key]).flops for key in keys}
    return result


def plain_table(rows: Sequence[Row], peak: float) -> str:
    """Markdown: each model's plain fp32 inference."""
    header = (
        "model",
        "input (TxHxW)",
        "params (M)",
        "GFLOP/clip",
        "ms/clip, best (median)",
        "clips/s",
        "GFLOP/s",
        "% of matmul peak",
        "peak RSS (MiB)",
        "RSS over imports (MiB)",
        "others' load (cores)",
    )
    gpu = any(row.ok and row.result.get("gpu_peak_mb") is not None for row in rows)
    if gpu:
        header = (*header, "GPU peak allocated (MiB)")
    body = []
    for row in rows:
        if row.variant != "plain":
            continue
        cells: list[object] = [
            row.case.label,
            row.case.input_label,
            fmt(row.cost.params / 1e6),
            fmt(row.cost.flops / 1e9),
        ]
        if not row.ok:
            body.append([*cells, f"error: {row.result['error']}", *["—"] * (6 + gpu)])
            continue
        r = row.result
        cells += [
            f"{row.timing.best * 1e3:,.0f} ({row.timing.median * 1e3:,.0f})",
            fmt(1 / row.timing.best, 2),
            fmt(row.gflops, 0),
            fmt(100 * row.gflops / peak, 0, suffix="%"),
            fmt(r["peak_mb"], 0),
            fmt(r["peak_mb"] - r["base_mb"], 0),
            fmt(r["others_cores"], 2),
        ]
        if gpu:
            cells.append(fmt(r.get("gpu_peak_mb"), 0))
        body.append(cells)
    return markdown_table(header, body)


def variant_table(rows: Sequence[Row], peak: float) -> str:
    """Markdown: each optimisation as a ratio to the same model's plain run."""
    plain = {row.case.key: row for row in rows if row.variant == "plain" and row.ok}
    header = (
        "model",
        "variant",
        "ms/clip, best (median)",
        "speed-up vs plain",
        "GFLOP/s",
        "% of fp32 matmul peak",
        "peak RSS (MiB)",
        "max |Δ| / max |plain|",
        "others' load (cores)",
        "note",
    )
    body = []
    for row in rows:
        if row.variant == "plain" and not any(
            r.case.key == row.case.key and r.variant != "plain" for r in rows
        ):
            continue
        label = f"{row.case.label} {row.case.input_label}"
        if not row.ok:
            body.append(
                [label, row.variant, "—", "—", "—", "—", "—", "—", "—", row.result["error"]]
            )
            continue
        base = plain.get(row.case.key)
        ratio = base.timing.best / row.timing.best if base else None
        r = row.result
        diff = r["relative_difference"]
        note = r["note"]
        if row.variant == "int8_dynamic" and row.cost.linear_flops:
            note += f" ({row.cost.linear_flops / row.cost.flops:.0%} of the FLOPs)"
        body.append(
            [
                label,
                row.variant,
                f"{row.timing.best * 1e3:,.0f} ({row.timing.median * 1e3:,.0f})",
                fmt(ratio, 2, suffix="x"),
                fmt(row.gflops, 0),
                fmt(100 * row.gflops / peak, 0, suffix="%"),
                fmt(r["peak_mb"], 0),
                "—" if diff is None else f"{diff:.1e}",
                fmt(r["others_cores"], 2),
                note,
            ]
        )
    return markdown_table(header, body)


def head_to_head_table(result: dict[str, Any]) -> str:
    """Markdown: the alternating I3D / r3d_18 / matmul measurement."""
    if "error" in result:
        return f"error: {result['error']}"
    peak = max(result["matmul_gflops"])
    faults = result.get("page_faults", {})
    rows = [["fp32 matmul 4096x4096", "—", "—", "—", fmt(peak, 0), "100%", "—"]]
    for key, seconds in result["seconds"].items():
        case = CASE_BY_KEY[key]
        best = min(seconds)
        gflops = gflops_per_second(result["flops"][key], best)
        rows.append(
            [
                case.label,
                case.input_label,
                fmt(result["flops"][key] / 1e9),
                f"{best * 1e3:,.0f}",
                fmt(gflops, 0),
                fmt(100 * gflops / peak, 0, suffix="%"),
                f"{faults[key]:,}" if key in faults else "—",
            ]
        )
    header = (
        "what",
        "input",
        "GFLOP/clip",
        "ms (best)",
        "GFLOP/s",
        "% of matmul peak",
        "page faults per call (fewest)",
    )
    return markdown_table(header, rows)


def head_to_head_gflops(result: dict[str, Any]) -> dict[str, float]:
    """GFLOP/s of each model in :func:`head_to_head` (best of its rounds) and the peak."""
    out = {
        key: gflops_per_second(result["flops"][key], min(seconds))
        for key, seconds in result["seconds"].items()
    }
    out["matmul"] = max(result["matmul_gflops"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    payload = worker_payload(argv)
    if payload is not None:
        workers = {
            "head_to_head": _head_to_head_worker,
            "profile": _profile_worker,
            "infer": _infer_worker,
        }
        emit(workers[payload["kind"]](payload))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=list(CASE_BY_KEY), default=None)
    parser.add_argument("--all-variants", action="store_true", help="every variant, every model")
    args = parser.parse_args(argv)
    from benchmarks._common import available_cores

    threads = args.threads or available_cores()
    cases = [CASE_BY_KEY[k] for k in args.models] if args.models else list(CASES)
    peak = matmul_gflops(device=args.device)

    def variants_for(case: ModelCase) -> Sequence[str]:
        return VARIANTS if args.all_variants or case.key == "i3d" else ("plain",)

    rows = measure(
        cases,
        variants_for,
        threads=threads,
        device=args.device,
        repeats=args.repeats,
        progress=print,
    )
    print(f"\nfp32 matmul peak: {peak:.0f} GFLOP/s, {threads} thread(s)\n")
    print(plain_table(rows, peak))
    print()
    print(variant_table(rows, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
