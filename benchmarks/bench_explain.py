"""Time and peak memory of every attribution method of :mod:`hartutor.explain`.

Each (model, method) runs in a fresh Python process so that peaks do not mix; the table shows
the process's peak resident memory (``ru_maxrss``: Python, torch, the model and the
attribution), its resident memory once the model is built and the clip made, and the batch
sizes :func:`hartutor.explain.explain` chose for the default budget (1500 MiB). Binder gives
2 GB; the full-size rows must stay under it.

- default: the tiny I3D + Xception fusion on a 16x64x64 clip, each stream and the fused score;
- ``--full``: also the full-size I3D (random weights) on a 64x224x224 clip. Slow on a CPU
  (minutes per method); IG uses ``--full-ig-steps`` steps (default 8: memory does not depend on
  the number of steps, only time does) and Occlusion its default 4x4x4 windows (64 forwards).

::

    python -m benchmarks.bench_explain            # tiny fusion, < 1 minute
    python -m benchmarks.bench_explain --full     # + full-size I3D, ~10-15 minutes on 1 core
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    BINDER_LIMIT_MB,
    markdown_table,
    measure_rows,
    peak_rss_mb,
    serve_worker,
)

METHODS = ("saliency", "integrated_gradients", "grad_cam", "guided_grad_cam", "occlusion")
MODEL_LABELS = {
    "tiny": "tiny fusion 16x64x64 (i3d, xception, fused)",
    "full": "I3D paper 64x224x224",
}


def _worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one method on one model in this fresh process: time, peak memory, batching."""
    import torch

    import hartutor  # noqa: F401
    from hartutor.accel import optimize
    from hartutor.explain import explain
    from hartutor.models import build_model

    torch.set_num_threads(int(payload["threads"]))
    torch.manual_seed(0)
    method = payload["method"]
    if payload["model"] == "full":
        model = build_model("i3d", preset="paper", num_classes=101)
        clip = torch.rand(3, 64, 224, 224) * 2 - 1
        streams: list[str | None] = [None]
        ig_steps = int(payload["full_ig_steps"])
        options = {"n_steps": ig_steps} if method == "integrated_gradients" else {}
    else:
        model = build_model("i3d_xception_fusion", preset="tiny", num_classes=13)
        clip = torch.rand(3, 16, 64, 64) * 2 - 1
        streams = ["i3d", "xception"]
        if method not in ("grad_cam", "guided_grad_cam"):
            streams.append(None)
        options = {}
    optimize(model).eval()
    base = peak_rss_mb()
    start = time.perf_counter()
    chosen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for stream in streams:
            result = explain(model, clip, target=3, method=method, stream=stream, **options)
            used = result.options
            chosen.append(
                {
                    "stream": stream or ("fused" if payload["model"] == "tiny" else "i3d"),
                    "checkpoint": used.get("checkpoint"),
                    "internal_batch_size": used.get("internal_batch_size"),
                    "perturbations_per_eval": used.get("perturbations_per_eval"),
                    "estimate_mb": round(used["memory_estimate"].grad_bytes / 2**20),
                }
            )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "base_mb": base, "runs": chosen}


def _describe(runs: list[dict]) -> str:
    parts = []
    for run in runs:
        bits = []
        if run["checkpoint"]:
            bits.append("ckpt")
        if run["internal_batch_size"]:
            bits.append(f"ibs={run['internal_batch_size']}")
        if run["perturbations_per_eval"]:
            bits.append(f"ppe={run['perturbations_per_eval']}")
        parts.append(f"{run['stream']}" + (f" ({', '.join(bits)})" if bits else ""))
    return "; ".join(parts)


def measure(
    models: Sequence[str],
    methods: Sequence[str] = METHODS,
    *,
    threads: int = 1,
    full_ig_steps: int = 8,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Each (model, method) in its own process; ``models`` from ``"tiny"``, ``"full"``."""
    payloads = [
        {"model": model, "method": method, "threads": threads, "full_ig_steps": full_ig_steps}
        for model in models
        for method in methods
    ]
    return measure_rows(
        "benchmarks.bench_explain",
        payloads,
        keep=("model", "method"),
        on_row=(lambda row: progress(table([row]).splitlines()[-1])) if progress else None,
    )


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: time, peak RSS and the batching :func:`hartutor.explain.explain` chose."""
    header = (
        "model",
        "method",
        "time (s)",
        "peak RSS (MiB)",
        "RSS before (MiB)",
        "< 2 GB",
        "batching",
    )
    body = []
    for row in rows:
        label = MODEL_LABELS[row["model"]]
        if "error" in row:
            body.append([label, row["method"], "—", "—", "—", "—", f"error: {row['error']}"])
            continue
        ok = "yes" if row["peak_mb"] < BINDER_LIMIT_MB else "**no**"
        body.append(
            [
                label,
                row["method"],
                f"{row['seconds']:.1f}",
                f"{row['peak_mb']:.0f}",
                f"{row['base_mb']:.0f}",
                ok,
                _describe(row["runs"]),
            ]
        )
    return markdown_table(header, body)


def main(argv: Sequence[str] | None = None) -> int:
    if serve_worker(argv, _worker):
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the full-size I3D, 64x224x224")
    parser.add_argument("--only-full", action="store_true", help="skip the tiny fusion")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--full-ig-steps", type=int, default=8)
    args = parser.parse_args(argv)
    models = [] if args.only_full else ["tiny"]
    if args.full or args.only_full:
        models.append("full")
    import torch

    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}; default memory_budget_mb=1500\n"
    )
    print(table([]).split("\n", 2)[0])
    print(table([]).split("\n", 2)[1])
    measure(
        models,
        args.methods,
        threads=args.threads,
        full_ig_steps=args.full_ig_steps,
        progress=print,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
