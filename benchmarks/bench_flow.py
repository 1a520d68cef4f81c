"""Optical-flow estimators against the synthetic set's exact flow: end-point error and speed.

python benchmarks/bench_flow.py                  # 64x64, every available method
python benchmarks/bench_flow.py --size 128 --clips 12
"""

from __future__ import annotations

import argparse

import torch

import hartutor  # noqa: F401
from hartutor.flow import available_methods, compare_to_truth, scores_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import cv2

        cv2.setNumThreads(args.threads)
    except ImportError:
        pass
    scores = compare_to_truth(
        available_methods(), num_clips=args.clips, size=args.size, num_frames=args.frames
    )
    print(
        f"# Flow estimators vs exact flow: {args.clips} synthetic clips of "
        f"{args.frames}x{args.size}x{args.size}, {args.threads} thread(s)\n"
    )
    print(scores_markdown(scores))


if __name__ == "__main__":
    main()
