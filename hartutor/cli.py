"""The ``hartutor`` command line: thin wrappers over the library, one subcommand each."""

from __future__ import annotations

import argparse
import math
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


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a registry model on the synthetic set or a UCF101-style folder."""
    from hartutor.data import build_datasets
    from hartutor.models import build_model
    from hartutor.synth import CLASS_NAMES
    from hartutor.train import TrainConfig, fit, seed_everything

    num_classes = args.classes or (len(CLASS_NAMES) if args.data == "synthetic" else None)
    if num_classes is None:
        from hartutor.ucf101 import Layout, read_class_index

        num_classes = len(read_class_index(Layout.find(args.data).splits / "classInd.txt"))
    kwargs = {"preset": args.preset, "num_classes": num_classes}
    # --seed also sets the initial weights: torch seeds its generator anew in every process.
    seed_everything(args.seed)
    model = build_model(args.model, **kwargs)
    bundle = build_datasets(
        args.data,
        model=model,
        train_clips=args.clips,
        val_clips=args.val_clips,
        seed=args.seed,
        cache_mb=args.cache_mb,
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        warmup_epochs=args.warmup,
        fusion_loss=args.fusion_loss,
        seed=args.seed,
        num_workers=args.workers,
        num_threads=args.threads,
        device=args.device,
        progress=not args.quiet,
    )
    out = args.out or Path("checkpoints") / f"{args.model}_{args.preset}.pt"
    print(
        f"training {args.model} ({args.preset}, {_count(model):,} parameters) on "
        f"{bundle.description}"
    )
    result = fit(
        model,
        bundle.train,
        val_data=bundle.val,
        config=config,
        checkpoint_path=out,
        resume=args.resume,
        model_meta={
            "name": args.model,
            "kwargs": kwargs,
            "data": str(args.data),
            "input_spec": _spec_dict(model),
        },
        class_names=bundle.class_names,
    )
    for record in result.history:
        val = "  ".join(f"val {k} {v:.3f}" for k, v in record.val.items())
        print(
            f"epoch {record.epoch:3d}  loss {record.train_loss:.3f}  "
            f"train top1 {record.train_top1:.3f}  {val}"
        )
    print(f"checkpoint: {out}")
    if args.export:
        from hartutor.train import export_checkpoint

        exported = export_checkpoint(out, args.export)
        print(f"release copy (weights only): {exported} ({exported.stat().st_size / 1e6:.2f} MB)")
    return 0


def _cmd_fuse(args: argparse.Namespace) -> int:
    """Late fusion of separately trained streams, saved as one checkpoint."""
    from hartutor.train import fuse_checkpoints

    streams = {}
    for item in args.stream:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"hartutor fuse: --stream wants NAME=CHECKPOINT, got {item!r}")
        streams[name] = Path(path)
    out = fuse_checkpoints(args.model, streams, args.out, preset=args.preset, mode=args.mode)
    print(f"fused {', '.join(streams)} into {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Top-1/top-5 and per-class accuracy of a checkpoint; optionally the temporal diagnostics."""
    from torch import nn

    from hartutor.data import build_datasets
    from hartutor.diagnostics import temporal_diagnostics
    from hartutor.train import evaluate, load_checkpoint

    model, meta = load_checkpoint(args.checkpoint)
    data = args.data or meta.get("data", "synthetic")
    bundle = build_datasets(data, model=model, val_clips=args.clips, seed=args.seed)
    names = bundle.class_names
    if args.diagnostics:
        report = temporal_diagnostics(
            model,
            bundle.val,
            batch_size=args.batch_size,
            class_names=names,
            ks=(1, 5),
            progress=not args.quiet,
        )
        result = report.results["original"]
    else:
        result = evaluate(
            model,
            bundle.val,
            batch_size=args.batch_size,
            class_names=names,
            progress=not args.quiet,
        )
    print(f"{meta['name']} on {bundle.description} (validation part)")
    print(result.summary())
    width = max(len(n) for n in names)
    for name, accuracy in result.per_class().items():
        print(f"  {name:<{width}}  {accuracy:.1%}")
    if isinstance(getattr(model, "streams", None), nn.ModuleDict):  # a fusion: score each stream
        from hartutor.train import evaluate_streams

        scored = evaluate_streams(
            model, bundle.val, batch_size=args.batch_size, class_names=names, progress=False
        )
        from hartutor._markdown import markdown_table

        rows = [(name, f"{r.top1:.1%}", f"{r.top5:.1%}") for name, r in scored.items()]
        print("\n" + markdown_table(("scorer", "top-1", "top-5"), rows))
    if args.diagnostics:
        print()
        print(report.to_markdown())
        if data == "synthetic":
            from hartutor.diagnostics import pair_report, pairs_markdown
            from hartutor.synth import REVERSAL_PAIRS

            for condition in ("original", "reversed"):
                pairs = pair_report(report.results[condition], REVERSAL_PAIRS)
                print(f"\ntime-reversal pairs, {condition} clips:\n{pairs_markdown(pairs)}")
    return 0


def _count(model: object) -> int:
    return sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]


def _spec_dict(model: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(model.input_spec)  # type: ignore[attr-defined]


def _cmd_ucf101(args: argparse.Namespace) -> int:
    """Download/unpack/check UCF101 in its official layout."""
    from hartutor import ucf101

    if args.action == "prepare":
        report = ucf101.prepare(
            args.root, download_archives=not args.no_download, progress=not args.quiet
        )
    else:
        report = ucf101.check_layout(args.root, expect_full=not args.subset)
    print(f"{args.root}: {report.num_classes} classes, {report.num_videos} videos")
    for split, (train, test) in sorted(report.split_sizes.items()):
        print(f"  split {split}: {train} train / {test} test")
    for problem in report.problems:
        print(f"  problem: {problem}")
    print("OK" if report.ok else "NOT OK")
    return 0 if report.ok else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the I3D + Xception fusion on synthetic clips (or a video), in seconds."""
    from hartutor.demo import format_result, run_demo

    result = run_demo(
        video=args.video, num_clips=args.clips, seed=args.seed, out=args.out, world=args.world
    )
    print(format_result(result))
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    """List, download or locate pretrained weights."""
    from hartutor.weights import describe, list_weights, weights_files

    if args.action == "list":
        for name in list_weights():
            info = describe(name)
            cached = all(Path(f["path"]).is_file() for f in info["files"])
            print(f"{name:<42} {info['label_set']:<12} {'cached' if cached else '-'}")
        return 0
    if not args.names:
        raise SystemExit(f"hartutor weights {args.action}: name at least one entry (see 'list')")
    for name in args.names:
        files = weights_files(name, download=args.action == "download", progress=not args.quiet)
        for path in files:
            print(path)
    return 0


def _cmd_frozen(args: argparse.Namespace) -> int:
    """The poster's I3D + Xception late fusion by the frozen-feature route (linear heads)."""
    from hartutor.features import HeadConfig, pretrained_stream, reproduce_fusion

    classes = [c for c in args.classes.split(",") if c] if args.classes else None
    common = {
        "split": args.split,
        "test_clips_per_video": args.test_clips,
        "classes": classes,
        "download": not args.no_download,
    }
    streams = {
        "i3d": pretrained_stream(args.i3d_weights, args.root, **common),
        "xception": pretrained_stream(
            args.xception_weights, args.root, frame_stride=args.xception_stride, **common
        ),
    }
    report = reproduce_fusion(
        streams,
        num_classes=len(streams["i3d"].train.class_names),
        cache=args.cache,
        head=HeadConfig(epochs=args.epochs, lr=args.lr, seed=args.seed),
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.workers,
        progress=not args.quiet,
    )
    print(report.table())
    return 0


Command = Callable[[argparse.Namespace], int]


def _mebibytes(text: str) -> float:
    """An argparse type: a memory budget in MiB, a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected MiB >= 0 (0: none), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from hartutor.synth.dataset import TRAINING_CACHE_MB

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

    p = sub.add_parser("train", help="train a model on the synthetic set or a UCF101-style folder")
    p.add_argument("model", help="registry name, e.g. i3d, c3d, single_frame (see hartutor params)")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a UCF101-layout folder")
    p.add_argument("--preset", choices=["paper", "tiny"], default="tiny")
    p.add_argument("--classes", type=int, default=None, help="default: from the data")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up epochs (default 0.5)")
    p.add_argument(
        "--fusion-loss",
        choices=["streams", "fused"],
        default="streams",
        help="fusions (two_stream, i3d_xception_fusion): train each stream on its own loss "
        "(default, as the papers) or on the fused score",
    )
    p.add_argument("--clips", type=int, default=1300, help="synthetic training clips")
    p.add_argument("--val-clips", type=int, default=260, help="synthetic validation clips")
    p.add_argument(
        "--cache-mb",
        type=_mebibytes,
        default=None,
        help="MiB of rendered synthetic clips kept in memory per split, so later epochs skip "
        f"rendering (default {TRAINING_CACHE_MB:g}; 0: render every time)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", type=Path, default=None, help="checkpoint file to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--export", type=Path, default=None, help="also write a weights-only release copy here"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("fuse", help="late-fuse separately trained streams into one checkpoint")
    p.add_argument("model", help="fusion model, e.g. i3d_xception_fusion")
    p.add_argument(
        "--stream",
        action="append",
        required=True,
        metavar="NAME=CHECKPOINT",
        help="a trained stream, e.g. i3d=i3d_tiny.pt (repeat per stream)",
    )
    p.add_argument("--preset", choices=["paper", "tiny"], default="tiny")
    p.add_argument("--mode", choices=["softmax_mean", "logit_sum"], default="softmax_mean")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("evaluate", help="accuracy of a checkpoint, with temporal diagnostics")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", default=None, help="default: the data it was trained on")
    p.add_argument("--clips", type=int, default=520, help="synthetic clips to evaluate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="also evaluate on time-reversed and frame-shuffled clips",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "frozen", help="I3D + Xception fusion from frozen features and linear heads (UCF101)"
    )
    p.add_argument("root", type=Path, help="UCF101 folder (UCF-101/ and ucfTrainTestlist/)")
    p.add_argument("--cache", type=Path, required=True, help="folder for the feature files")
    p.add_argument("--split", type=int, choices=[1, 2, 3], default=1)
    p.add_argument("--classes", default=None, help="comma-separated class names (a subset)")
    p.add_argument("--test-clips", type=int, default=3, help="clips per test video")
    p.add_argument("--i3d-weights", default="i3d_rgb_kinetics600_scratch")
    p.add_argument("--xception-weights", default="xception_imagenet1k_tf")
    p.add_argument("--xception-stride", type=int, default=8, help="frame stride of its 8 frames")
    p.add_argument("--epochs", type=int, default=60, help="linear-head epochs")
    p.add_argument("--lr", type=float, default=1e-3, help="linear-head learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-download", action="store_true", help="use cached weights only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_frozen)

    p = sub.add_parser("demo", help="the I3D + Xception late fusion on synthetic clips or a video")
    p.add_argument(
        "--video",
        type=Path,
        default=None,
        help="a video file (full-size models when their weights are cached)",
    )
    p.add_argument("--clips", type=int, default=4, help="synthetic clips to render (default 4)")
    p.add_argument(
        "--world",
        action="store_true",
        help="the transfer world's fusion on one clip per family (motion, appearance, both)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("hartutor-demo.png"), help="figure to write")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("weights", help="list, download or locate pretrained weights")
    p.add_argument("action", choices=["list", "download", "path"])
    p.add_argument("names", nargs="*", help="weights names (see 'hartutor weights list')")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("ucf101", help="obtain and check UCF101 (official layout)")
    p.add_argument(
        "action",
        choices=["prepare", "check"],
        help="prepare: download, unpack and check; check: verify a layout",
    )
    p.add_argument("root", type=Path, help="folder holding (or to hold) UCF-101/ and splits")
    p.add_argument(
        "--no-download", action="store_true", help="prepare from archives already in ROOT/archives"
    )
    p.add_argument(
        "--subset",
        action="store_true",
        help="check: accept a partial copy (consistency only, not the counts)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_ucf101)

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


def console_main() -> int:
    """The ``hartutor`` console script and ``python -m hartutor``: :func:`main` in a process
    of its own, which first lets glibc keep freed memory for reuse
    (:func:`hartutor.config.keep_freed_memory`; I3D on a 64x224x224 clip ran 6-17 %
    faster here with it). A program that calls :func:`main` keeps its own allocator settings."""
    from hartutor.config import keep_freed_memory

    keep_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
