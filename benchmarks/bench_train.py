"""Training speed of every tiny preset on the synthetic set, with ``hartutor.train.fit``.

Per preset and thread count, in a fresh process, these figures tell where the time goes:

- **render**: :class:`~hartutor.synth.SyntheticActions` items per second (numpy, one core);
- **model only**: ``fit`` on clips rendered beforehand (forward, backward, AdamW step);
- **1st epoch**: ``fit`` on the dataset itself, rendering on the fly in the training process
  (``num_workers=0``, the default): about ``1 / (1/render + 1/model)``. The dataset keeps the
  rendered clips (``cache_mb=TRAINING_CACHE_MB``, as ``build_datasets`` and ``hartutor train``
  build it);
- **later epochs**: ``fit`` again on the same dataset, reading the cached clips;
- **run**: a run of :data:`RUN_EPOCHS` epochs, from the two above (the target's figure);
- with ``--loader-worker``: ``fit`` with ``num_workers=1``, rendering in a DataLoader worker
  process while the model trains (workers never fill the cache, so every epoch renders).

Batches of 16 clips of 16x64x64 (two-stream presets also get flow), AdamW, one epoch each
after a one-batch warm-up. ::

    python -m benchmarks.bench_train                 # 1 and 2 threads, 128 clips each
    python -m benchmarks.bench_train --presets i3d c3d --clips 64 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    LoadMonitor,
    Runner,
    fmt,
    markdown_table,
    measure_rows,
    run_worker,
    serve_worker,
)

TARGET_CLIPS_PER_S = 50.0
BATCH_SIZE = 16
#: Epochs of the shortest run that trains a shipped tiny checkpoint (single_frame and xception
#: in ``scripts/train_tiny_checkpoints.sh``): the run whose average speed the target judges.
RUN_EPOCHS = 6


#: The transfer world's two streams (``hartutor.transfer``), trained on target clips rendered
#: at 16x96x96 and cut to their inputs (temporal 16x32x32, frame 4x96x96).
WORLD_PRESETS = {"world_temporal": "temporal", "world_frame": "frame"}


def presets() -> list[str]:
    """Every registered model (each has a ``tiny`` preset), then the world's streams."""
    import hartutor  # noqa: F401
    from hartutor.models import list_models

    return [*list_models(), *WORLD_PRESETS]


def _worker(payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    import hartutor  # noqa: F401
    from hartutor.models import build_model
    from hartutor.params import count_flops, example_inputs
    from hartutor.synth import TRAINING_CACHE_MB, SyntheticActions
    from hartutor.train import TrainConfig, fit

    threads, clips, name = int(payload["threads"]), int(payload["clips"]), payload["preset"]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name in WORLD_PRESETS:
        from hartutor import transfer

        kind = WORLD_PRESETS[name]
        model = transfer.build_stream(kind, 13)
        with torch.device("meta"):
            meta = transfer.build_stream(kind, 13)
        flops, _ = count_flops(meta, example_inputs(meta))
        uncached: Any = transfer.WorldClips(clips, kind)
        data: Any = transfer.WorldClips(clips, kind, cache_mb=TRAINING_CACHE_MB)
    else:
        model = build_model(name, preset="tiny", num_classes=13)
        keys = tuple(getattr(model, "input_keys", ("video",)))
        with torch.device("meta"):
            meta = build_model(name, preset="tiny", num_classes=13)
        flops, _ = count_flops(meta, example_inputs(meta))
        with_flow = "flow" in keys
        uncached = SyntheticActions(clips, with_flow=with_flow)
        data = SyntheticActions(clips, with_flow=with_flow, cache_mb=TRAINING_CACHE_MB)

    start = time.perf_counter()
    rendered = [uncached[i] for i in range(clips)]
    render_s = time.perf_counter() - start

    def config(workers: int = 0) -> TrainConfig:
        return TrainConfig(
            epochs=1,
            batch_size=BATCH_SIZE,
            num_threads=threads,
            num_workers=workers,
            device="cpu",
            progress=False,
        )

    def timed(run: Callable[[], object]) -> tuple[float, float | None]:
        with LoadMonitor() as load:
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
        return seconds, load.others_cores

    fit(model, rendered[:BATCH_SIZE], config=config())  # warm-up: allocations, kernels
    model_s, model_load = timed(lambda: fit(model, rendered, config=config()))
    fit_s, fit_load = timed(lambda: fit(model, data, config=config()))
    if data.cached_clips != clips:
        raise RuntimeError(
            f"only {data.cached_clips} of {clips} clips fit the {TRAINING_CACHE_MB:g} MiB cache; "
            "use fewer --clips"
        )
    cached_s, cached_load = timed(lambda: fit(model, data, config=config()))
    result = {
        "flops": flops,
        "render": clips / render_s,
        "model": clips / model_s,
        "fit": clips / fit_s,
        "cached": clips / cached_s,
        "others_cores": max(v for v in (model_load, fit_load, cached_load, 0.0) if v is not None),
    }
    if payload.get("loader_worker"):
        worker_s, _ = timed(lambda: fit(model, uncached, config=config(1)))
        result["fit_worker"] = clips / worker_s
    return result


def measure(
    names: Sequence[str],
    thread_counts: Sequence[int],
    *,
    clips: int,
    loader_worker: bool = False,
    progress: Callable[[str], None] | None = None,
    runner: Runner = run_worker,
) -> list[dict[str, Any]]:
    """One worker per (preset, threads); rows of figures (or an ``error``)."""
    payloads = [
        {
            "preset": name,
            "threads": threads,
            "clips": clips,
            "loader_worker": loader_worker and threads == 1,
        }
        for name in names
        for threads in thread_counts
    ]

    def report(row: dict[str, Any]) -> None:
        if progress:
            progress(
                f"  {row['preset']} x{row['threads']}: "
                + (
                    row["error"]
                    if "error" in row
                    else f"run {run_speed(row):.1f} clips/s (1st epoch {row['fit']:.1f}, later "
                    f"{row['cached']:.1f}; model {row['model']:.1f}, render {row['render']:.0f})"
                )
            )

    return measure_rows(
        "benchmarks.bench_train",
        payloads,
        keep=("preset", "threads"),
        runner=runner,
        on_row=report,
    )


def run_speed(row: dict[str, Any], epochs: int = RUN_EPOCHS) -> float:
    """Average clips/s of an ``epochs``-epoch run: the first renders, the rest read the cache."""
    return epochs / (1.0 / row["fit"] + (epochs - 1) / row["cached"])


def best_fit(rows: Sequence[dict[str, Any]], name: str) -> tuple[float, str] | None:
    """The fastest measured way to train ``name`` for a run: (clips/s, configuration)."""
    options = []
    for row in rows:
        if row["preset"] != name or "error" in row:
            continue
        options.append((run_speed(row), f"{row['threads']} thread(s), in-process, cached"))
        if "fit_worker" in row:
            options.append((row["fit_worker"], f"{row['threads']} thread + 1 loader worker"))
    return max(options) if options else None


def bound_by(row: dict[str, Any]) -> str:
    """Which of rendering and the model is the slower half of a first (rendering) epoch."""
    return "rendering" if row["render"] < row["model"] else "model"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per (preset, threads)."""
    header = (
        "tiny preset",
        "threads",
        "fwd GFLOP/clip",
        "render (clips/s)",
        "model only (clips/s)",
        "1st epoch, rendering (clips/s)",
        "later epochs, cached (clips/s)",
        f"{RUN_EPOCHS}-epoch run (clips/s)",
        "+1 loader worker (clips/s)",
        "1st epoch's slower half",
        f">= {TARGET_CLIPS_PER_S:.0f}",
        "others' load (cores)",
    )
    body = []
    for row in rows:
        if "error" in row:
            body.append([row["preset"], row["threads"], f"error: {row['error']}", *["—"] * 9])
            continue
        best = max(run_speed(row), row.get("fit_worker", 0.0))
        body.append(
            [
                row["preset"],
                row["threads"],
                fmt(row["flops"] / 1e9, 3),
                fmt(row["render"], 0),
                fmt(row["model"]),
                fmt(row["fit"]),
                fmt(row["cached"]),
                fmt(run_speed(row)),
                fmt(row.get("fit_worker")),
                bound_by(row),
                "yes" if best >= TARGET_CLIPS_PER_S else "**no**",
                fmt(row["others_cores"], 2),
            ]
        )
    return markdown_table(header, body)


def main(argv: Sequence[str] | None = None) -> int:
    if serve_worker(argv, _worker):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=None, help="default: all")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--loader-worker", action="store_true", help="also num_workers=1")
    args = parser.parse_args(argv)
    rows = measure(
        args.presets or presets(),
        args.threads,
        clips=args.clips,
        loader_worker=args.loader_worker,
        progress=print,
    )
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
