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

    python benchmarks/bench_explain.py            # tiny fusion, < 1 minute
    python benchmarks/bench_explain.py --full     # + full-size I3D, ~10-15 minutes on 1 core
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

METHODS = ("saliency", "integrated_gradients", "grad_cam", "guided_grad_cam", "occlusion")
BINDER_LIMIT_MB = 2048


def _rss_peak_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _worker(args: argparse.Namespace) -> None:
    """Run one method on one model and print a JSON line of figures."""
    import torch

    import hartutor  # noqa: F401
    from hartutor.explain import explain
    from hartutor.models import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "full":
        model = build_model("i3d", preset="paper", num_classes=101)
        clip = torch.rand(3, 64, 224, 224) * 2 - 1
        streams: list[str | None] = [None]
        options = {"n_steps": args.full_ig_steps} if args.method == "integrated_gradients" else {}
    else:
        model = build_model("i3d_xception_fusion", preset="tiny", num_classes=13)
        clip = torch.rand(3, 16, 64, 64) * 2 - 1
        streams = ["i3d", "xception"]
        if args.method not in ("grad_cam", "guided_grad_cam"):
            streams.append(None)
        options = {}
    model.eval()
    base = _rss_peak_mb()
    start = time.perf_counter()
    chosen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for stream in streams:
            result = explain(model, clip, target=3, method=args.method, stream=stream, **options)
            used = result.options
            chosen.append(
                {
                    "stream": stream or ("fused" if args.model == "tiny" else "i3d"),
                    "checkpoint": used.get("checkpoint"),
                    "internal_batch_size": used.get("internal_batch_size"),
                    "perturbations_per_eval": used.get("perturbations_per_eval"),
                    "estimate_mb": round(used["memory_estimate"].grad_bytes / 2**20),
                }
            )
    seconds = time.perf_counter() - start
    print(
        json.dumps({"seconds": seconds, "peak_mb": _rss_peak_mb(), "base_mb": base, "runs": chosen})
    )


def _run(model: str, method: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--model",
        model,
        "--method",
        method,
        "--threads",
        str(args.threads),
        "--full-ig-steps",
        str(args.full_ig_steps),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the full-size I3D, 64x224x224")
    parser.add_argument("--only-full", action="store_true", help="skip the tiny fusion")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--full-ig-steps", type=int, default=8)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("tiny", "full"), help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    models = [] if args.only_full else ["tiny"]
    if args.full or args.only_full:
        models.append("full")
    import torch

    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}; default memory_budget_mb=1500\n"
    )
    print("| model | method | time (s) | peak RSS (MiB) | RSS before (MiB) | < 2 GB | batching |")
    print("|---|---|---:|---:|---:|:---:|---|")
    for model in models:
        label = (
            "tiny fusion 16x64x64 (i3d, xception, fused)"
            if model == "tiny"
            else "I3D paper 64x224x224"
        )
        for method in args.methods:
            row = _run(model, method, args)
            if "error" in row:
                print(f"| {label} | {method} | - | - | - | - | error: {row['error']} |", flush=True)
                continue
            ok = "yes" if row["peak_mb"] < BINDER_LIMIT_MB else "**no**"
            print(
                f"| {label} | {method} | {row['seconds']:.1f} | {row['peak_mb']:.0f} | "
                f"{row['base_mb']:.0f} | {ok} | {_describe(row['runs'])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
