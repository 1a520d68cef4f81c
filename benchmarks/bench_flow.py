"""Optical-flow estimators against the synthetic set's exact flow: end-point error and speed.

python benchmarks/bench_flow.py                  # 64x64, every available method
python benchmarks/bench_flow.py --size 128 --clips 12
python benchmarks/bench_flow.py --cost           # fields/s at 224x224 and 64x64 (TV-L1 is slow)
"""

from __future__ import annotations

import argparse

import torch

import hartutor  # noqa: F401
from hartutor.flow import (
    FlowRate,
    FlowScore,
    available_methods,
    compare_to_truth,
    flow_cost,
    flow_cost_markdown,
    scores_markdown,
)

#: Frame sizes of the cost table: the paper-size networks' input and the course's tiny clips.
COST_SIZES = ((224, 224), (64, 64))
#: Frame pairs timed per estimator (TV-L1 takes about a second a pair at 224x224 on one core).
COST_PAIRS = {"tvl1": 5, "farneback": 40, "dis": 40}


def measure(*, clips: int, size: int = 64, frames: int = 16, threads: int = 1) -> list[FlowScore]:
    """Every available estimator on ``clips`` synthetic clips, with ``threads`` threads."""
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    return compare_to_truth(available_methods(), num_clips=clips, size=size, num_frames=frames)


def measure_cost(*, quick: bool = False) -> list[FlowRate]:
    """Fields per second of every available estimator at :data:`COST_SIZES`, one thread
    (:func:`hartutor.flow.measure_flow_rate`, the figure the two-stream rows of Table 2 use)."""
    pairs = {m: (max(1, n // 5) if quick else n) for m, n in COST_PAIRS.items()}
    methods = available_methods()
    return flow_cost(methods, COST_SIZES, pairs={m: pairs[m] for m in methods})


def cost_table(rates: list[FlowRate]) -> str:
    """Markdown: fields per second and core-seconds per second of 25 fps video."""
    return flow_cost_markdown(rates)


def table(scores: list[FlowScore]) -> str:
    """Markdown: EPE and flow fields (frame pairs) per second per estimator."""
    return scores_markdown(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cost", action="store_true", help="only the cost table, one thread")
    args = parser.parse_args()
    if args.cost:
        print("# Optical flow cost: fields per second on one thread\n")
        print(cost_table(measure_cost()))
        return
    scores = measure(clips=args.clips, size=args.size, frames=args.frames, threads=args.threads)
    print(
        f"# Flow estimators vs exact flow: {args.clips} synthetic clips of "
        f"{args.frames}x{args.size}x{args.size}, {args.threads} thread(s)\n"
    )
    print(table(scores))


if __name__ == "__main__":
    main()
