"""Run every benchmark, print its tables and write the results file (``docs/benchmarks.md``).

::

    python -m benchmarks                  # full run (tens of minutes on 2 CPU cores)
    python -m benchmarks --quick          # a few minutes: fewer repeats, a subset
    python -m benchmarks --only training  # re-measure one section, keep the others
    python -m benchmarks --out /tmp/b.md  # write elsewhere

Sections: inference (full-size models, plain and optimised, against a matmul peak), gpu (the
same on CUDA when a GPU is present: float16 autocast instead of bfloat16, no int8), training
(tiny presets on the synthetic set), decode (hartutor's reader beside pytorchvideo), synthetic
(rendering), flow (estimators), attribution (time and memory of each method) and notebooks
(each tutorial's time and memory on one core). Timing rows run in fresh processes; on a shared
machine each first waits (``--wait-quiet``) until other processes leave the cores alone, and
every table reports how busy they kept them.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    bench_explain,
    bench_models,
    bench_notebooks,
    bench_train,
    bench_video,
    report,
)
from benchmarks._common import (
    BINDER_LIMIT_MB,
    REPO,
    LoadMonitor,
    Machine,
    Runner,
    available_cores,
    describe_machine,
    fmt,
    free_cores_threshold,
    matmul_gflops,
    quiet_runner,
    run_worker,
    serve_worker,
)

#: What ``--only`` may name: every measured section of the results file, in its order.
SECTIONS = tuple(name for name in report.SECTION_ORDER if name not in ("summary", "machine"))
I3D_PEAK_FRACTION = 0.40
SYNTH_TARGET = 100.0


@dataclass(frozen=True)
class Settings:
    """How much to measure: ``quick`` trades repeats and coverage for minutes."""

    quick: bool
    threads: int
    wait_quiet: float
    runner: Runner
    notebooks: tuple[str, ...] = ()  # name prefixes: measure only these notebooks
    record: Path | None = None  # the notebook times record to update (None: do not write)

    @property
    def repeats(self) -> int:
        return 2 if self.quick else 5

    @property
    def rounds(self) -> int:
        return 2 if self.quick else 4


def say(text: str = "") -> None:
    """Print at once (the run is long; progress should show)."""
    print(text, flush=True)


# --------------------------------------------------------------------------- small workers


def _worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Measurements run here in a fresh process: matmul peaks, rendering, flow."""
    import torch

    import hartutor  # noqa: F401

    threads = int(payload["threads"])
    torch.set_num_threads(threads)
    task = payload["task"]
    if task == "matmul":
        device = payload["device"]
        result: dict[str, Any] = {"fp32": matmul_gflops(device=device)}
        low = torch.float16 if device.startswith("cuda") else torch.bfloat16
        result["low"] = matmul_gflops(device=device, dtype=low)
        result["low_name"] = str(low).removeprefix("torch.")
        return result
    if task == "synthetic":
        from benchmarks import bench_synth

        rows = bench_synth.measure(int(payload["clips"]))
        return {"rows": [[name, rate] for name, rate in rows]}
    if task == "flow":
        from benchmarks import bench_flow

        scores = bench_flow.measure(clips=int(payload["clips"]), threads=threads)
        rates = bench_flow.measure_cost(quick=bool(payload.get("quick", False)))
        return {
            "table": bench_flow.table(scores),
            "scores": [vars(s) for s in scores],
            "cost": bench_flow.cost_table(rates),
            "rates": [vars(r) for r in rates],
        }
    raise ValueError(f"unknown task {task!r}")


def machine_peak(settings: Settings, device: str) -> dict[str, Any]:
    """fp32 and low-precision matmul GFLOP/s in a fresh process with the run's threads."""
    payload = {"task": "matmul", "threads": settings.threads, "device": device}
    return run_worker("benchmarks.run_all", payload, threads=settings.threads)


# --------------------------------------------------------------------------- sections


def measured_line(machine: Machine, others: float | None, threads: Sequence[int]) -> str:
    """The provenance line every section starts with; says if others slowed it down."""
    where = f"{machine.gpu} + {machine.cpu}" if machine.gpu else machine.cpu
    busy = ""
    if others is not None:
        busy = f" Other processes kept {others:.2f} of {machine.cores} cores busy on average"
        slowed = others > free_cores_threshold(max(threads), machine.cores)
        busy += (
            ", so its threads had to share cores at times: timings are lower than on a quiet "
            "machine (rows give their own figure)."
            if slowed
            else ", leaving its threads a core each."
        )
    count = " and ".join(str(t) for t in threads)
    return f"_Measured {machine.date} on {where}, {count} torch thread(s).{busy}_"


def printed_section(name: str, title: str, lines: Sequence[str]) -> report.Section:
    """Print a section's Markdown as it is measured, and return it for the results file."""
    body = "\n".join(lines)
    say(body)
    return report.Section(name, title, body)


def inference_section(settings: Settings, machine: Machine, device: str) -> report.Section:
    """Full-size models: head-to-head, plain table, optimisations; targets 1-3."""
    quick = settings.quick
    with LoadMonitor() as load:
        say(f"[inference on {device}] matmul peak")
        peaks = [machine_peak(settings, device)]
        duel_in = functools.partial(
            bench_models.head_to_head,
            threads=settings.threads,
            device=device,
            rounds=settings.rounds,
            runner=settings.runner,
        )
        say(f"[inference on {device}] I3D vs r3d_18, timed in turn ({settings.rounds} rounds)")
        duel = duel_in()
        huge: dict[str, Any] | None = None
        kept: dict[str, Any] | None = None
        if device == "cpu" and not quick and platform.libc_ver()[0] == "glibc":
            say(f"[inference on {device}] the same with transparent huge pages")
            huge = duel_in(env=HUGE_PAGES_ENV)
            say(f"[inference on {device}] the same with freed memory kept for reuse")
            kept = duel_in(keep_freed_memory=True)
        profiled = ["i3d", "r3d_18"] if quick else ["i3d", "r3d_18", "r3d_18_64"]
        say(f"[inference on {device}] where the time goes: {', '.join(profiled)}")
        where = (
            bench_models.breakdown(profiled, threads=settings.threads, runner=settings.runner)
            if device == "cpu"
            else {}
        )
        cases = [c for c in bench_models.CASES if not (quick and c.full_only)]
        say(f"[inference on {device}] plain and optimised runs")
        rows = bench_models.measure(
            cases,
            lambda case: variants_for(case, device=device, quick=quick),
            threads=settings.threads,
            device=device,
            repeats=settings.repeats if not quick else 2,
            progress=say,
            runner=settings.runner,
        )
        peaks.append(machine_peak(settings, device))
    fp32 = [p["fp32"] for p in peaks if "fp32" in p]
    if "error" not in duel:
        fp32 += duel["matmul_gflops"]
    peak = max(fp32) if fp32 else float("nan")
    low = max((p["low"] for p in peaks if "low" in p), default=None)
    low_name = next((p["low_name"] for p in peaks if "low_name" in p), "bfloat16")

    lines = [
        measured_line(machine, load.others_cores, [settings.threads]),
        "",
        f"Machine peak, a 4096x4096 matrix product (best seen in this run): **{peak:.0f} GFLOP/s "
        f"fp32**" + (f", {low:.0f} GFLOP/s {low_name}" if low else "") + ". Percentages below "
        "are of the fp32 figure.",
        "",
        "Batch 1 (one clip), random weights, 400 classes; each (model, variant) in a fresh "
        "process, so its peak RSS is its own (Python, torch, the model, the clip and the "
        f"activations). Best of {settings.repeats if not quick else 2} timed calls after one "
        "warm-up, median in brackets; GFLOP/s and clips/s from the best call.",
        "",
        "### I3D against r3d_18 and the matmul peak, timed in turn",
        "",
        "One process times the matmul, hartutor's I3D and torchvision's r3d_18 (on I3D's "
        f"64x224x224 clip and on its own 16x112x112) in turn, {settings.rounds} rounds, best "
        "of each: load from other processes hits them alike.",
        "",
        bench_models.head_to_head_table(duel),
        "",
        f"Other processes kept {fmt(duel.get('others_cores'), 2)} cores busy on average "
        "during these rounds.",
        "",
        *inference_targets(duel, rows, where="on the GPU: " if device != "cpu" else ""),
        "",
        *([huge_pages_paragraph(huge, duel), ""] if huge is not None else []),
        *([kept_memory_paragraph(kept, duel), ""] if kept is not None else []),
        *(
            [
                "Where the time goes (`torch.profiler`, self CPU time of one plain call by kind "
                "of op; *conv GFLOP/s*: the model's FLOPs over its convolutions' time alone):",
                "",
                bench_models.breakdown_table(where),
                "",
            ]
            if where
            else []
        ),
        "### Plain fp32 inference",
        "",
        bench_models.plain_table(rows, peak),
        "",
        "### Optimisations, as ratios to the plain run",
        "",
        "`inference_mode`: `torch.inference_mode()` for `no_grad`. `channels_last`: weights and "
        "clip stored channels-last (hartutor's models run through `hartutor.accel.optimize`, "
        "so they already compute channels-last on a CPU and its frame models store their conv "
        "weights so in eval: this only saves I3D's and C3D's per-call weight reorders). `bf16`: "
        f"`torch.autocast` ({'float16 on CUDA' if device.startswith('cuda') else 'bfloat16'}). "
        "`int8_dynamic`: `quantize_dynamic` converts Linear/LSTM layers only; convolutions stay "
        "fp32, so 3D CNNs barely change. `bn_folded`: BatchNorm folded for good into hartutor's "
        "`Unit3D` convs (optimised, they fold it in every eval call where the output is larger "
        "than the weights, so this saves that folding and the small maps' BatchNorms). "
        "`compile`: `torch.compile` (default inductor), compile time in the note. "
        "`combined`: inference_mode + channels_last + bn_folded (where it applies) + bf16. "
        "max |Δ| is the largest difference from the plain run's scores over their largest "
        "magnitude."
        + (
            " `--quick` measures the variants of hartutor's I3D only and skips `compile`."
            if quick
            else ""
        ),
        "",
        bench_models.variant_table(rows, peak),
    ]
    name = "gpu" if device.startswith("cuda") else "inference"
    title = "GPU inference" if name == "gpu" else "Inference of the full-size models (CPU)"
    return printed_section(name, title, lines)


def variants_for(case: bench_models.ModelCase, *, device: str, quick: bool) -> Sequence[str]:
    """Which variants a case gets: all applicable ones; in quick mode I3D's, no compile."""
    if case.full_only:
        return ("plain",)
    if quick and case.key != "i3d":
        return ("plain",)
    chosen = []
    for variant in bench_models.VARIANTS:
        if variant == "compile" and quick:
            continue
        if variant == "int8_dynamic" and device.startswith("cuda"):
            continue
        if variant == "bn_folded" and case.key not in ("i3d", "fusion"):
            continue
        chosen.append(variant)
    return chosen


#: glibc (2.35+) tunable: back large malloc blocks with transparent huge pages.
HUGE_PAGES_ENV = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


def transparent_huge_pages_mode() -> str:
    """The kernel's THP mode (``always``, ``madvise`` or ``never``), or ``unknown``."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    chosen = [word[1:-1] for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else "unknown"


def _changes_from_default(other: dict[str, Any], duel: dict[str, Any]) -> str:
    """Each model's GFLOP/s in ``other`` (a head-to-head under other settings) and its change
    from the default ``duel``, with page faults per call where both counted them."""
    gflops = bench_models.head_to_head_gflops(other)
    default = bench_models.head_to_head_gflops(duel) if "error" not in duel else {}
    faults = other.get("page_faults", {})
    default_faults = duel.get("page_faults", {})
    parts = []
    for key in other["seconds"]:
        case = bench_models.CASE_BY_KEY[key]
        part = f"{case.label} {case.input_label} {gflops[key]:.0f}"
        if default.get(key):
            part += f" ({gflops[key] / default[key] - 1:+.0%})"
        if key in faults and key in default_faults:
            part += f", {default_faults[key]:,} -> {faults[key]:,} page faults a call"
        parts.append(part)
    return "; ".join(parts)


def huge_pages_paragraph(huge: dict[str, Any], duel: dict[str, Any]) -> str:
    """The head-to-head again with huge pages, beside the default allocator's figures."""
    if "error" in huge:
        return f"With transparent huge pages: not measured ({huge['error']})."
    return (
        "The same rounds in a process started with glibc's transparent huge pages for large "
        f"blocks (`GLIBC_TUNABLES={HUGE_PAGES_ENV['GLIBC_TUNABLES']}`; this kernel's THP mode: "
        f"`{transparent_huge_pages_mode()}`), GFLOP/s and change from the rounds above: "
        + _changes_from_default(huge, duel)
        + ". By default glibc serves each block above its mmap threshold (which grows to at "
        "most 32 MB) with a fresh `mmap` and unmaps it when it is freed, and trims the top of "
        "its heap once more than twice that threshold lies free there; either way the next "
        "forward pass faults those pages in again, 4 KB at a time, each zeroed by the kernel "
        "(the page faults counted above). Users can set the variable before starting Python "
        "or Jupyter; the targets above are judged without it."
    )


def i3d_against_r3d_18(gflops: dict[str, float], *, where: str = "") -> tuple[bool, str]:
    """The I3D-vs-r3d_18 verdict and its line, from ``head_to_head_gflops``.

    Judged on the same 64x224x224 clip, as the issue measures every model "on the same
    inputs" (on r3d_18's own 16x112x112 clip alone when the run left the same-clip row out);
    the 16x112x112 figure is reported beside it either way, with I3D's distance to it.
    """
    judged = "r3d_18_64" if "r3d_18_64" in gflops else "r3d_18"
    label = bench_models.CASE_BY_KEY[judged].input_label
    i3d = gflops["i3d"]
    text = (
        f"{where}full-size I3D at 64x224x224 runs at least as many GFLOP/s as torchvision's "
        f"r3d_18 on the same clip in the same run: I3D {i3d:.0f} GFLOP/s, r3d_18 {label} "
        f"{gflops[judged]:.0f} GFLOP/s."
    )
    if judged == "r3d_18":
        text += " (r3d_18 was not timed on I3D's 64x224x224 clip in this run.)"
    elif "r3d_18" in gflops:
        own = gflops["r3d_18"]
        side = "above" if own > i3d else "at or below"
        text += (
            f" Beside it, r3d_18 on its own {bench_models.CASE_BY_KEY['r3d_18'].input_label} "
            f"clip: {own:.0f} GFLOP/s, {abs(own / i3d - 1):.0%} {side} I3D's."
        )
    return i3d >= gflops[judged], text


def kept_memory_paragraph(kept: dict[str, Any], duel: dict[str, Any]) -> str:
    """The head-to-head again under :func:`hartutor.config.keep_freed_memory` (what the
    ``hartutor`` command runs under), and whether I3D then beats r3d_18 on both inputs."""
    from hartutor.config import KEEP_FREED_MB

    if "error" in kept:
        return f"With freed memory kept for reuse: not measured ({kept['error']})."
    gflops = bench_models.head_to_head_gflops(kept)
    rivals = [k for k in ("r3d_18_64", "r3d_18") if k in gflops]
    behind = [k for k in rivals if gflops["i3d"] < gflops[k]]
    if behind:
        verdict = "fewer GFLOP/s than r3d_18 on " + " and ".join(
            bench_models.CASE_BY_KEY[k].input_label for k in behind
        )
    else:
        verdict = "at least as many GFLOP/s as r3d_18 on " + (
            "both inputs" if len(rivals) > 1 else "its input"
        )
    rss = ""
    if "peak_mb" in kept and "peak_mb" in duel:
        rss = f" Peak RSS of the process: {duel['peak_mb']:.0f} -> {kept['peak_mb']:.0f} MiB."
    return (
        "The same rounds in a process that first calls `hartutor.config.keep_freed_memory()` "
        f"(glibc keeps up to {KEEP_FREED_MB} MiB of freed memory for reuse instead of "
        "unmapping every block over 32 MB; the `hartutor` command does this), GFLOP/s and "
        "change from the rounds above: "
        + _changes_from_default(kept, duel)
        + f".{rss} With it, I3D runs {verdict}. The targets above are judged on glibc's "
        "defaults, as a notebook kernel runs."
    )


def inference_targets(
    duel: dict[str, Any], rows: Sequence[bench_models.Row], *, where: str = ""
) -> list[str]:
    """Verdicts: I3D vs r3d_18, I3D vs 40 % of peak, fusion within 2 GB (``where``: a prefix
    such as "on the GPU: ")."""
    lines = []
    if "error" in duel:
        lines.append(report.target_line(False, f"I3D vs r3d_18: not measured ({duel['error']})"))
    else:
        g = bench_models.head_to_head_gflops(duel)
        lines.append(report.target_line(*i3d_against_r3d_18(g, where=where)))
        share = g["i3d"] / g["matmul"]
        lines.append(
            report.target_line(
                share >= I3D_PEAK_FRACTION,
                f"{where}full-size I3D at >= {I3D_PEAK_FRACTION:.0%} of the measured fp32 matmul "
                f"peak: {g['i3d']:.0f} of {g['matmul']:.0f} GFLOP/s = {share:.0%}.",
            )
        )
    fusion = next((r for r in rows if r.case.key == "fusion" and r.variant == "plain"), None)
    if fusion is None or not fusion.ok:
        lines.append(report.target_line(False, "fusion inference within 2 GB: not measured."))
    else:
        peak = fusion.result["peak_mb"]
        lines.append(
            report.target_line(
                peak < BINDER_LIMIT_MB,
                f"{where}the I3D + Xception fusion's inference (64x224x224 clip, fp32) fits in "
                f"2 GB: peak RSS of its whole process {peak:.0f} MiB.",
            )
        )
    return lines


def gpu_placeholder(machine: Machine) -> report.Section:
    """The GPU section on a machine without one."""
    body = (
        f"{report.NO_GPU_MARK} on {machine.date}: this machine has no GPU "
        "(`torch.cuda.is_available()` is False). On a machine with CUDA, "
        "`python -m benchmarks --only gpu` measures the inference tables on the GPU (float16 "
        "autocast for mixed precision, `torch.cuda.max_memory_allocated` beside the RSS; no "
        "int8, which is CPU-only) and fills this section, keeping the CPU sections. "
        "`bash scripts/gpu_check.sh` runs it together with a full-mode smoke run on CUDA "
        "(stand-in data and weights, mixed precision) and prints what it measured."
    )
    return report.Section("gpu", "GPU inference", body)


def training_section(settings: Settings, machine: Machine) -> report.Section:
    """Tiny presets with ``fit``: rendering vs model; target 4."""
    from hartutor.synth import TRAINING_CACHE_MB

    names = bench_train.presets()
    threads = [2] if settings.quick else sorted({1, settings.threads})
    clips = 48 if settings.quick else 160
    say(f"[training] {len(names)} tiny presets x threads {threads}, {clips} clips each")
    with LoadMonitor() as load:
        rows = bench_train.measure(
            names,
            threads,
            clips=clips,
            loader_worker=not settings.quick,
            progress=say,
            runner=settings.runner,
        )
    bests = {name: bench_train.best_fit(rows, name) for name in names}
    failing = [
        (name, best)
        for name, best in bests.items()
        if best is None or best[0] < bench_train.TARGET_CLIPS_PER_S
    ]
    goal = (
        f"every tiny preset trains at >= {bench_train.TARGET_CLIPS_PER_S:.0f} clips/s on the "
        f"synthetic set (a {bench_train.RUN_EPOCHS}-epoch run, rendering included)"
    )
    if failing:
        parts = []
        for name, best in failing:
            row = max(
                (r for r in rows if r["preset"] == name and "error" not in r),
                key=bench_train.run_speed,
                default=None,
            )
            if best is None or row is None:
                parts.append(f"{name} (not measured)")
                continue
            parts.append(f"{name} {best[0]:.1f} clips/s ({training_reason(row)})")
        verdict = report.target_line(
            False,
            f"{goal}: {len(names) - len(failing)} of {len(names)} do; " + "; ".join(parts) + ".",
        )
    else:
        slowest = min(best[0] for best in bests.values() if best is not None)
        verdict = report.target_line(True, f"{goal}: the slowest trains {slowest:.1f} clips/s.")
    lines = [
        measured_line(machine, load.others_cores, threads),
        "",
        f"`hartutor.train.fit` on {clips} clips of 16x64x64, batch {bench_train.BATCH_SIZE}, "
        "AdamW, one epoch each after a one-batch warm-up, each (preset, threads) in a fresh "
        "process. *render*: `SyntheticActions` items/s (numpy, one core); *model only*: `fit` on "
        "clips rendered beforehand; *1st epoch*: `fit` on the dataset, rendering in the "
        "training process (`num_workers=0`, the default) and keeping the clips "
        f"(`cache_mb={TRAINING_CACHE_MB:g}`, as `build_datasets` and `hartutor train` build "
        "it); *later epochs*: `fit` again, on the cached clips; "
        f"*{bench_train.RUN_EPOCHS}-epoch run*: the average of one first and "
        f"{bench_train.RUN_EPOCHS - 1} later epochs ({bench_train.RUN_EPOCHS} epochs is the "
        "shortest run that trains a shipped checkpoint)"
        + (
            "; *+1 loader worker*: `num_workers=1` with one torch thread, rendering every epoch "
            "in a second process (workers do not fill the cache)."
            if not settings.quick
            else "."
        )
        + " A preset meets the target if its best measured configuration does.",
        "",
        bench_train.table(rows),
        "",
        verdict,
    ]
    return printed_section("training", "Training the tiny presets", lines)


def training_reason(row: dict[str, Any]) -> str:
    """Why a preset falls short, from its figures."""
    work = row["model"] * 3 * row["flops"] / 1e9  # forward + backward ~ 3x forward FLOPs
    if row["model"] < bench_train.TARGET_CLIPS_PER_S:
        return (
            f"the model alone trains {row['model']:.1f} clips/s: "
            f"{row['flops'] / 1e9:.2f} forward GFLOP per clip, ~{work:.0f} GFLOP/s of "
            "training arithmetic"
        )
    return (
        f"the model alone trains {row['model']:.1f} clips/s and {row['cached']:.1f} on cached "
        f"clips, but the first epoch renders at {row['render']:.0f} clips/s in the same process "
        f"({row['fit']:.1f} clips/s)"
    )


def decode_section(settings: Settings, machine: Machine) -> report.Section:
    """hartutor.video vs pytorchvideo's EncodedVideo."""
    from hartutor.course import fixtures_dir

    shared = fixtures_dir(REPO)  # HARTUTOR_FIXTURES, or shared/fixtures beside the clone
    fixtures = shared / "videos" if shared is not None else REPO.parent / "shared" / "fixtures"
    with tempfile.TemporaryDirectory(prefix="hartutor-decode-") as tmp:
        workdir = Path(tmp)
        found = bench_video.cases(
            fixtures if fixtures.is_dir() else None,
            seconds=2.0 if settings.quick else 60.0,
            pv_seconds=1.0 if settings.quick else 2.0,
            workdir=workdir,
        )
        if settings.quick:
            keep = {name for name, *_ in found[:4]}
            found = [c for c in found if c[0] in keep or "generated" in c[0]]
        say(f"[decode] {len(found)} decodes")
        with LoadMonitor() as load:
            rows = bench_video.measure_all(found, progress=say)
    lines = [
        measured_line(machine, load.others_cores, [settings.threads]),
        "",
        "Each decode in a fresh process. *source frames/s*: frames of the source covered per "
        "second (with 16 frames asked, hartutor seeks and decodes only what it needs; "
        "*hartutor-noseek* decodes straight through). pytorchvideo's `EncodedVideo` "
        '(`decoder="pyav"`) decodes the whole span to float32 before subsampling, so on '
        "the generated 1080p clip it runs on the first seconds only."
        + ("" if fixtures.is_dir() else f" (Fixture clips absent: {fixtures}.)"),
        "",
        bench_video.table(rows),
    ]
    return printed_section("decode", "Video decoding", lines)


def synthetic_section(settings: Settings, machine: Machine) -> report.Section:
    """Rendering speed of the synthetic set (one thread)."""
    clips = 50 if settings.quick else 200
    say(f"[synthetic] {clips} clips per measurement")
    with LoadMonitor() as load:
        result = settings.runner(
            "benchmarks.run_all", {"task": "synthetic", "threads": 1, "clips": clips}, threads=1
        )
    if "error" in result:
        body = f"error: {result['error']}"
        verdict = report.target_line(False, "synthetic rendering: not measured.")
    else:
        rows = [(name, rate) for name, rate in result["rows"]]
        from benchmarks import bench_synth

        body = bench_synth.table(rows)
        rate = rows[0][1]
        verdict = report.target_line(
            rate >= SYNTH_TARGET,
            f"(the synthetic set's own) rendering >= {SYNTH_TARGET:.0f} clips/s of 16x64x64 "
            f"without flow on one thread: {rate:.0f} clips/s.",
        )
    lines = [
        measured_line(machine, load.others_cores, [1]),
        "",
        f"`hartutor.synth.render_clip` on {clips} clips of 16x64x64 cycling through the classes, "
        "best of three passes; `SyntheticActions` items add the conversion to a float tensor.",
        "",
        body,
        "",
        verdict,
    ]
    return printed_section("synthetic", "Synthetic clip generation", lines)


def flow_section(settings: Settings, machine: Machine) -> report.Section:
    """Flow estimators: EPE against the exact flow, fields per second."""
    clips = 2 if settings.quick else 6
    say(f"[flow] {clips} synthetic clips")
    with LoadMonitor() as load:
        result = settings.runner(
            "benchmarks.run_all",
            {"task": "flow", "threads": 1, "clips": clips, "quick": settings.quick},
            threads=1,
        )
    body = result["table"] if "error" not in result else f"error: {result['error']}"
    cost = result.get("cost", "")
    lines = [
        measured_line(machine, load.others_cores, [1]),
        "",
        f"OpenCV estimators on {clips} noise-free synthetic clips of 16x64x64 (15 frame pairs "
        "each), scored against the renderer's exact flow; *flow fields/s* is frame pairs per "
        "second on one thread.",
        "",
        body,
        "",
        "The cost of flow at the networks' input size (`hartutor.flow.measure_flow_rate`: "
        "consecutive frame pairs of a synthetic clip rendered at that size, one thread; "
        "TV-L1 with OpenCV's default settings). A flow stream pays this before its network runs.",
        "",
        cost,
    ]
    return printed_section("flow", "Optical-flow estimation", lines)


def attribution_section(settings: Settings, machine: Machine) -> report.Section:
    """Each attribution method's time and peak memory."""
    models = ["tiny"] if settings.quick else ["tiny", "full"]
    say(f"[attribution] models {models}, every method, 1 thread")
    with LoadMonitor() as load:
        rows = bench_explain.measure(models, threads=1, full_ig_steps=8, progress=say)
    measured = [r for r in rows if "error" not in r]
    worst = max(measured, key=lambda r: r["peak_mb"], default=None)
    verdict = (
        report.target_line(
            worst["peak_mb"] < BINDER_LIMIT_MB,
            "(the course's own) every attribution method within Binder's 2 GB: largest peak "
            f"{worst['peak_mb']:.0f} MiB ({worst['method']}, "
            f"{bench_explain.MODEL_LABELS[worst['model']]}).",
        )
        if worst
        else report.target_line(False, "attribution within 2 GB: not measured.")
    )
    lines = [
        measured_line(machine, load.others_cores, [1]),
        "",
        "`hartutor.explain.explain` with its default memory budget (1500 MiB), each (model, "
        "method) in a fresh process on one thread (a Binder session). The tiny fusion row "
        "explains each stream and the fused score; the paper I3D row uses 8 integrated-gradient "
        "steps (memory does not depend on the steps, only time does)."
        + (" `--quick` runs the tiny fusion only." if settings.quick else ""),
        "",
        bench_explain.table(rows),
        "",
        verdict,
    ]
    return printed_section("attribution", "Attribution methods", lines)


def notebooks_section(settings: Settings, machine: Machine) -> report.Section:
    """Every tutorial notebook in fast mode on one core: wall time and kernel peak memory.

    The measured rows update the record the index notebook reads (``settings.record``); the
    section's table and verdicts are rendered from the whole record, each row with its own
    date and load, so measuring some notebooks keeps the others' last figures.
    """
    from hartutor.course import update_notebook_times

    prefixes = settings.notebooks or (("00", "index") if settings.quick else ())
    notebooks = bench_notebooks.select(prefixes)
    if not notebooks:
        raise SystemExit(f"no tutorial notebook starts with {' or '.join(prefixes)}")
    say(f"[notebooks] {len(notebooks)} notebooks, fast mode, one core")
    rows = bench_notebooks.measure(notebooks, 0, progress=say)  # core 0 where taskset exists
    record = update_notebook_times(rows, settings.record) if settings.record is not None else rows
    how = ""
    if prefixes:
        how = f"`--notebooks {' '.join(settings.notebooks)}`" if settings.notebooks else "`--quick`"
    section = bench_notebooks.section(record, rows, how=how, record_path=settings.record)
    say(section.body)
    return section


def machine_section(settings: Settings, machine: Machine) -> report.Section:
    """What the run was measured on, and the mode."""
    mode = "`--quick` (fewer repeats, a subset)" if settings.quick else "full"
    body = "\n".join(
        [
            machine.markdown(),
            f"- run: {mode}; rows wait up to {settings.wait_quiet:.0f} s for other processes "
            "to leave the cores alone before they start",
        ]
    )
    return report.Section("machine", "Machine", body)


RUNNERS: dict[str, Callable[[Settings, Machine], report.Section]] = {
    "inference": lambda s, m: inference_section(s, m, "cpu"),
    "training": training_section,
    "decode": decode_section,
    "synthetic": synthetic_section,
    "flow": flow_section,
    "attribution": attribution_section,
    "notebooks": notebooks_section,
}


def main(argv: Sequence[str] | None = None) -> int:
    if serve_worker(argv, _worker):
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a few minutes: a subset")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="seconds a row may wait for a quiet machine (default 10 quick, 90 full)",
    )
    parser.add_argument("--no-write", action="store_true", help="print tables only")
    parser.add_argument(
        "--notebooks",
        nargs="+",
        default=(),
        metavar="PREFIX",
        help="notebooks section: only the notebooks whose names start so (e.g. 08 09)",
    )
    args = parser.parse_args(argv)

    import torch

    import hartutor  # noqa: F401
    from hartutor.course import NOTEBOOK_TIMES

    threads = args.threads or available_cores()
    wait = args.wait_quiet if args.wait_quiet is not None else (10.0 if args.quick else 90.0)
    settings = Settings(
        quick=args.quick,
        threads=threads,
        wait_quiet=wait,
        runner=quiet_runner(wait, retries=0 if args.quick else 1),
        notebooks=tuple(args.notebooks),
        record=None if args.no_write else NOTEBOOK_TIMES,
    )
    machine = describe_machine(threads)
    say(report.section_body(machine_section(settings, machine).render()))
    wanted = list(args.only or SECTIONS)
    sections = [machine_section(settings, machine)]
    start = time.perf_counter()
    for name in wanted:
        if name == "gpu":
            if torch.cuda.is_available():
                sections.append(inference_section(settings, machine, "cuda"))
            else:
                sections.append(gpu_placeholder(machine))
            continue
        sections.append(RUNNERS[name](settings, machine))
        say()
    say(f"all done in {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        path = report.write(args.out, sections)
        say(f"wrote {path}")
        say(report.section_body(report.parse_sections(path.read_text())["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
