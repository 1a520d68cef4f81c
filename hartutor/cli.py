"""The ``hartutor`` command line: thin wrappers over the library, one subcommand each."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hartutor.errors import HartutorError


def _cmd_info(args: argparse.Namespace) -> int:
    """Versions, the compatibility shim's findings, directories and threads."""
    import importlib.metadata as md

    import torch

    from hartutor import __version__, _compat, config

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    report = _compat.report()
    if report.torchvision_ops_loaded is None:
        ops = "not checked (torchvision absent or imported before hartutor)"
    elif report.torchvision_ops_loaded:
        ops = "yes"
    else:
        ops = (
            "no; compatibility shim active (defined "
            + ", ".join(report.defined_op_schemas or ["nothing"])
            + "). torchvision.ops.nms and image decoding are unavailable; "
            "transforms, models, timm and pytorchvideo work."
        )
    rows = [
        ("hartutor", __version__),
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        *((dist, version(dist)) for dist in _DISTRIBUTIONS),
        ("torch CUDA available", str(torch.cuda.is_available())),
        ("torchvision compiled ops loaded", ops),
        ("module aliases", ", ".join(f"{k} -> {v}" for k, v in report.aliases_installed.items())),
        ("cache dir", str(config.cache_dir())),
        ("weights dir", str(config.weights_dir())),
        ("data dir", str(config.data_dir())),
        ("torch threads", str(config.configure_threads())),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


_DISTRIBUTIONS = (
    "torch",
    "torchvision",
    "pytorchvideo",
    "timm",
    "captum",
    "av",
    "numpy",
    "opencv-contrib-python-headless",
    "matplotlib",
    "ipywidgets",
    "jupyterlab",
)


def _cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic action dataset in UCF101's layout."""
    from hartutor.synth import generate_dataset

    out = generate_dataset(
        args.out,
        num_clips=args.clips,
        seed=args.seed,
        num_frames=args.frames,
        size=args.size,
        progress=not args.quiet,
    )
    print(f"wrote {args.clips} clips to {out} (manifest: {out / 'manifest.csv'})")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    """Contact sheet of a video file, or of a synthetic clip of a class (with its true flow)."""
    from hartutor.viz import show

    out = show(args.target, args.out, seed=args.seed, num_frames=args.frames)
    print(f"wrote {out}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    """The poster's Table 2 beside hartutor's measured parameters and GFLOPs."""
    from hartutor.params import format_table, parameter_table

    rows = parameter_table(preset=args.preset, num_classes=args.classes)
    print(format_table(rows, fmt=args.format))
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hartutor",
        description="Video human activity recognition, from single frames to I3D + Xception.",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="versions, compatibility shims, directories, threads")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("synth", help="generate the synthetic action dataset (UCF101 layout)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--clips", type=int, default=200, help="number of clips (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--size", type=int, default=64, help="frame height and width (default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("show", help="contact sheet of a video file or a synthetic action class")
    p.add_argument("target", help="a video file, or a synthetic class name such as sit_down")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic clip")
    p.add_argument("--frames", type=int, default=16, help="frames to sample")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("params", help="parameters and GFLOPs of every model vs the poster")
    p.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p.add_argument("--classes", type=int, default=101, help="classifier size (default 101)")
    p.add_argument("--format", choices=["markdown", "text"], default="markdown")
    p.set_defaults(func=_cmd_params)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hartutor`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        from hartutor.config import configure_threads

        configure_threads(args.threads)
    try:
        return args.func(args)
    except HartutorError as err:
        print(f"hartutor {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hartutor {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
