"""How fast the synthetic dataset renders: clips per second on one CPU thread.

Target: at least 100 clips/s of 16x64x64 without flow on one core, so that rendering on the
fly is never what slows training down. Prints a markdown table::

    python benchmarks/bench_synth.py --clips 300    # or: python -m benchmarks.bench_synth
"""

from __future__ import annotations

import os

# One thread for numpy's BLAS (the background texture uses a batched matmul) and for torch;
# these must be set before numpy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import hartutor  # noqa: E402, F401
from hartutor.synth import CLASS_NAMES, SyntheticActions, render_clip  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import markdown_table  # noqa: E402


def clips_per_second(num_clips: int, *, num_frames: int, size: int, with_flow: bool) -> float:
    """Render ``num_clips`` clips cycling through the classes; the best of three runs."""
    best = 0.0
    for repeat in range(3):
        start = time.perf_counter()
        for i in range(num_clips):
            render_clip(
                CLASS_NAMES[i % len(CLASS_NAMES)],
                repeat * num_clips + i,
                num_frames=num_frames,
                size=size,
                with_flow=with_flow,
            )
        best = max(best, num_clips / (time.perf_counter() - start))
    return best


def dataset_items_per_second(num_clips: int, *, num_frames: int, size: int) -> float:
    """Items of :class:`SyntheticActions` per second (render + conversion to a float tensor)."""
    data = SyntheticActions(num_clips, num_frames=num_frames, size=size)
    start = time.perf_counter()
    for i in range(num_clips):
        data[i]
    return num_clips / (time.perf_counter() - start)


def measure(num_clips: int, *, num_frames: int = 16, size: int = 64) -> list[tuple[str, float]]:
    """(what, clips/s) for rendering without and with flow, and for dataset items."""
    torch.set_num_threads(1)
    render_clip("walk", 0, with_flow=True)  # warm-up (imports, caches)
    rows = []
    for with_flow in (False, True):
        rate = clips_per_second(num_clips, num_frames=num_frames, size=size, with_flow=with_flow)
        rows.append((f"render_clip, flow {'on' if with_flow else 'off'}", rate))
    rows.append(
        (
            "SyntheticActions item (flow off)",
            dataset_items_per_second(num_clips, num_frames=num_frames, size=size),
        )
    )
    return rows


def table(rows: list[tuple[str, float]]) -> str:
    """Markdown: clips/s and ms/clip per row of :func:`measure`."""
    return markdown_table(
        ("what", "clips/s", "ms/clip"),
        [(name, f"{rate:.0f}", f"{1000 / rate:.1f}") for name, rate in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="clips per measurement")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    rows = measure(args.clips, num_frames=args.frames, size=args.size)
    print(
        f"synthetic clips of {args.frames}x{args.size}x{args.size}, 1 thread, "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
