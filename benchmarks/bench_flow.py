"""Optical-flow estimators against the synthetic set's exact flow: end-point error and speed.

python benchmarks/bench_flow.py                  # 64x64, every available method
python benchmarks/bench_flow.py --size 128 --clips 12
"""

from __future__ import annotations

import argparse

import torch

import hartutor  # noqa: F401
from hartutor.flow import FlowScore, available_methods, compare_to_truth, scores_markdown


def measure(*, clips: int, size: int = 64, frames: int = 16, threads: int = 1) -> list[FlowScore]:
    """Every available estimator on ``clips`` synthetic clips, with ``threads`` threads."""
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    return compare_to_truth(available_methods(), num_clips=clips, size=size, num_frames=frames)


def table(scores: list[FlowScore]) -> str:
    """Markdown: EPE and flow fields (frame pairs) per second per estimator."""
    return scores_markdown(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    scores = measure(clips=args.clips, size=args.size, frames=args.frames, threads=args.threads)
    print(
        f"# Flow estimators vs exact flow: {args.clips} synthetic clips of "
        f"{args.frames}x{args.size}x{args.size}, {args.threads} thread(s)\n"
    )
    print(table(scores))


if __name__ == "__main__":
    main()
