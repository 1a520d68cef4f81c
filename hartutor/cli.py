"""The ``hartutor`` command line: thin wrappers over the library, one subcommand each."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shlex
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from hartutor import validation as rules
from hartutor._fileio import check_writable, describe_os_error
from hartutor.errors import HartutorError
from hartutor.validation import cli_type


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

    check_writable(args.out, folder=True, what="dataset folder")
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

    check_writable(args.out, what="figure")
    out = show(args.target, args.out, seed=args.seed, num_frames=args.frames)
    print(f"wrote {out}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    """The poster's Table 2 beside hartutor's measured parameters and GFLOPs."""
    from hartutor.params import (
        flow_rate,
        format_table,
        parameter_table,
        poster_table2,
        table2_markdown,
    )

    if args.preset == "paper" and args.format == "markdown":
        rate = flow_rate("tvl1", (224, 224)) if args.flow_rate else None
        print(table2_markdown(poster_table2(num_classes=args.classes, flow_rate=rate)))
        return 0
    rows = parameter_table(preset=args.preset, num_classes=args.classes)
    print(format_table(rows, fmt=args.format))
    return 0


def _silent(*args: object, **kwargs: object) -> None:
    """``print`` for the ranks other than 0 under torchrun: they say nothing."""


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a registry model on the synthetic set or a UCF101-style folder."""
    from hartutor.data import build_datasets
    from hartutor.distributed import init_from_env
    from hartutor.models import build_model
    from hartutor.synth import CLASS_NAMES
    from hartutor.train import TrainConfig, build_sized, fit, seed_everything

    here = init_from_env(args.device)  # under torchrun: this process's rank; else one process
    say = print if here.is_main else _silent
    if args.data == "synthetic":
        data_classes = len(CLASS_NAMES)
    else:
        from hartutor.ucf101 import Layout, read_class_index

        data_classes = len(read_class_index(Layout.find(args.data).splits / "classInd.txt"))
    num_classes = args.classes if args.classes is not None else data_classes
    if num_classes < data_classes:
        raise HartutorError(
            f"--classes {num_classes} is fewer than the {data_classes} classes of {args.data}: "
            "their labels would not fit the classifier; leave --classes out"
        )
    kwargs = {"preset": args.preset, "num_classes": num_classes, **_builder_args(args)}
    out = args.out or Path("checkpoints") / f"{args.model}_{args.preset}.pt"
    _check_train_outputs(args, out, kwargs)
    # --seed also sets the initial weights: torch seeds its generator anew in every process.
    seed_everything(args.seed)
    model = (
        build_sized(args.model, kwargs, source="--arg")
        if args.arg
        else build_model(args.model, **kwargs)
    )
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
    say(
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
        say(
            f"epoch {record.epoch:3d}  loss {record.train_loss:.3f}  "
            f"train top1 {record.train_top1:.3f}  {val}"
        )
    say(f"checkpoint: {out}")
    if args.export and here.is_main:
        from hartutor.train import export_checkpoint

        exported = export_checkpoint(out, args.export)
        say(f"release copy (weights only): {exported} ({exported.stat().st_size / 1e6:.2f} MB)")
    return 0


def _builder_args(args: argparse.Namespace) -> dict[str, object]:
    """The model's own builder arguments given as ``--arg KEY=VALUE`` (e.g. ``fusion=slow``),
    converted to the builder's annotated types; a bad key or value is refused in one line."""
    from hartutor.models.registry import parse_builder_arguments

    if not args.arg:
        return {}
    try:
        return parse_builder_arguments(args.model, args.arg)
    except (ValueError, KeyError) as err:
        raise HartutorError(str(err).strip('"')) from None


def _check_train_outputs(args: argparse.Namespace, out: Path, kwargs: dict[str, object]) -> None:
    """Before any training: never replace a finished run by accident; outputs are writable;
    a resumed checkpoint was made for this model and class count."""
    from hartutor.train import check_resumable

    if out.exists() and not out.is_dir():
        if args.resume:
            check_resumable(out, args.model, kwargs)
        elif not args.overwrite:
            raise HartutorError(
                f"checkpoint {str(out)!r} exists: pass --resume to continue that run, "
                "--overwrite to replace it, or another --out"
            )
    check_writable(out, what="checkpoint")
    if args.export is not None:
        check_writable(args.export, what="release copy")


def _cmd_fuse(args: argparse.Namespace) -> int:
    """Late fusion of separately trained streams, saved as one checkpoint."""
    from hartutor.train import fuse_checkpoints

    streams = {}
    for item in args.stream or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise HartutorError(f"--stream wants NAME=CHECKPOINT, got {item!r}")
        if name in streams:
            raise HartutorError(f"stream {name!r} is given twice")
        streams[name] = Path(path)
    check_writable(args.out, what="fused checkpoint")
    out = fuse_checkpoints(
        args.model,
        streams,
        args.out,
        preset=args.preset,
        mode=args.mode,
        scratch=args.scratch or (),
    )
    untrained = f" ({', '.join(args.scratch)} untrained)" if args.scratch else ""
    print(f"fused {', '.join(streams)}{untrained} into {out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Top-1/top-5 and per-class accuracy of a checkpoint; optionally the temporal diagnostics."""
    from torch import nn

    from hartutor.accel import optimize
    from hartutor.data import build_datasets
    from hartutor.diagnostics import temporal_diagnostics
    from hartutor.train import evaluate, load_checkpoint

    if args.json is not None:
        check_writable(args.json, what="result record")
    model, meta = load_checkpoint(args.checkpoint)
    optimize(model)  # CPU speed: same scores (hartutor.accel)
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
    if args.json is not None:
        from hartutor.records import new_record, write_record
        from hartutor.weights.download import sha256sum

        diagnostics = (
            {c: r.top1 for c, r in report.results.items() if c != "original"}
            if args.diagnostics
            else {}
        )
        record = new_record(
            model=meta["name"],
            kwargs=dict(meta.get("kwargs", {})),
            checkpoint=str(args.checkpoint),
            checkpoint_sha256=sha256sum(args.checkpoint),
            data=str(data),
            clips=len(bundle.val),
            seed=args.seed,
            top1=result.top1,
            top5=result.top5,
            per_class=result.per_class(),
            diagnostics=diagnostics,
            command=args.command_line,
        )
        print(f"record: {write_record(args.json, record)}")
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
        report = ucf101.check_layout(
            args.root,
            expect_full=not args.subset,
            open_videos=not args.quick,
            progress=not args.quiet,
        )
    print(f"{args.root}: {report.num_classes} classes, {report.num_videos} videos")
    if report.standin:
        print(
            "  stand-in archives (hartutor.standins): consistency checked, not the official counts"
        )
    for split, (train, test) in sorted(report.split_sizes.items()):
        print(f"  split {split}: {train} train / {test} test")
    for problem in report.problems:
        print(f"  problem: {problem}")
    print("OK" if report.ok else "NOT OK")
    return 0 if report.ok else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the I3D + Xception fusion on one synthetic clip per family (or the
    motion-only fusion, or a video), in seconds."""
    from hartutor.demo import format_result, run_demo
    from hartutor.errors import ArgumentError

    if args.clips is not None and (args.video is not None or not args.motion):
        raise ArgumentError(
            "--clips sets how many clips --motion renders; the default demo shows one clip "
            "per family and --video one video"
        )
    if args.motion and args.video is not None:
        raise ArgumentError("give --motion or --video, not both")
    check_writable(args.out, what="figure")
    result = run_demo(
        video=args.video,
        num_clips=4 if args.clips is None else args.clips,
        seed=args.seed,
        out=args.out,
        motion=args.motion,
    )
    print(format_result(result))
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    """List, download or locate pretrained weights."""
    from hartutor.weights import describe, list_weights, standin_weights, weights_files

    if args.action == "list":
        for name in list_weights():
            info = describe(name)
            paths = [Path(f["path"]) for f in info["files"]]
            state = "-"
            if all(p.is_file() for p in paths):
                standin = standin_weights(name)
                state = "cached (stand-in: random values)" if standin else "cached"
            print(f"{name:<42} {info['label_set']:<12} {state}")
        return 0
    if not args.names:
        raise HartutorError("name at least one weights entry (see 'hartutor weights list')")
    from hartutor.labels import fetch_label_set_files
    from hartutor.weights import get_weights

    for name in args.names:
        files = weights_files(name, download=args.action == "download", progress=not args.quiet)
        if args.action == "download":  # the class names of its outputs, where they are a file
            label_set = get_weights(name).label_set
            files += fetch_label_set_files(label_set, progress=not args.quiet)
        for path in files:
            print(path)
    return 0


def _cmd_samples(args: argparse.Namespace) -> int:
    """List the course's sample files, or fetch them into the cache."""
    from hartutor.samples import fetch_samples, samples_dir, samples_markdown

    if args.action == "list":
        print(f"samples folder: {samples_dir()}")
        print(samples_markdown())
        return 0
    paths = fetch_samples(args.names or None, source=args.source, progress=not args.quiet)
    for path in paths:
        print(path)
    return 0


def _cmd_table1(args: argparse.Namespace) -> int:
    """The poster's Table 1 on UCF101 videos (a Kinetics model) or in the synthetic world."""
    from hartutor.errors import ArgumentError
    from hartutor.table1 import kinetics_table1, world_table1

    if args.world == (args.root is not None):
        raise ArgumentError("give a UCF101 folder (ROOT) or --world, not both and not neither")
    if args.world:
        table = world_table1(clips_per_class=args.clips_per_class, seed=args.seed)
    else:
        table = kinetics_table1(
            args.root,
            weights=args.weights,
            videos=args.videos,
            split=args.split,
            limit=args.limit,
            num_frames=args.frames,
            download=not args.no_download,
        )
    print(table.markdown())
    print(f"\n{table.source}: {table.score}")
    compared = table.compared()
    if compared:
        same = sum(r.predicted.lower() == r.poster.predicted.lower() for r in compared)
        print(f"the poster's prediction repeated on {same} of the {len(compared)} videos it scored")
    return 0


def _cmd_frozen(args: argparse.Namespace) -> int:
    """The poster's I3D + Xception late fusion by the frozen-feature route (linear heads)."""
    from hartutor.features import HeadConfig, pretrained_stream, reproduce_fusion

    check_writable(args.cache, folder=True, what="feature cache")
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


def _cmd_standins(args: argparse.Namespace) -> int:
    """Build or serve the stand-ins of UCF101 and the pretrained weights (a local mirror)."""
    from hartutor import standins

    folder = Path(args.folder)
    if args.action == "serve":
        with standins.serve(folder, port=args.port) as server:
            print(
                f"serving {folder} at {server.url}; in another shell: "
                f"export HARTUTOR_MIRROR={server.url}  (Ctrl-C stops)",
                flush=True,
            )
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
    from hartutor import ucf101
    from hartutor.course import fixtures_dir
    from hartutor.weights import get_weights

    for name in args.weights:  # every name known before any rendering starts
        get_weights(name)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not args.overwrite:
        raise HartutorError(f"{folder} is not empty; pass --overwrite to rebuild stand-ins there")
    check_writable(folder, folder=True, what="stand-in mirror")
    work = folder / ".build"
    mini = standins.make_ucf101(work / "ucf101", num_frames=args.frames, overwrite=True)
    archives = standins.pack_ucf101(mini, work / "archives")
    fixtures = fixtures_dir()
    label_maps = {}
    for key, name in (
        ("kinetics400_label_map", "kinetics400.txt"),
        ("kinetics600_label_map", "kinetics600.txt"),
    ):
        if fixtures is not None and (fixtures / "labels" / name).is_file():
            label_maps[key] = fixtures / "labels" / name
    extra = {ucf101.URLS[key]: path for key, path in archives.items()}
    standins.write_mirror(folder, weights=args.weights, label_maps=label_maps, extra=extra)
    shutil.rmtree(work, ignore_errors=True)
    print(f"stand-ins in {folder}: serve them with 'hartutor standins serve {folder}'")
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


CLIPS = cli_type(rules.NUM_CLIPS)
SEED = cli_type(rules.SEED)
FRAMES = cli_type(rules.NUM_FRAMES)
FIGURE = cli_type(rules.FIGURE_PATH)
CLASSES = cli_type(rules.NUM_CLASSES)
EPOCHS = cli_type(rules.EPOCHS)
BATCH = cli_type(rules.BATCH_SIZE)
LR = cli_type(rules.LEARNING_RATE)
WORKERS = cli_type(rules.NUM_WORKERS)
DEVICE = cli_type(rules.DEVICE)


def build_parser() -> argparse.ArgumentParser:
    from hartutor.synth.dataset import TRAINING_CACHE_MB

    parser = argparse.ArgumentParser(
        prog="hartutor",
        description="Video human activity recognition, from single frames to I3D + Xception.",
    )
    parser.add_argument(
        "--threads", type=cli_type(rules.NUM_THREADS), default=None, help="torch CPU threads"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="versions, compatibility shims, directories, threads")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("synth", help="generate the synthetic action dataset (UCF101 layout)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--clips", type=CLIPS, default=200, help="number of clips (default 200)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    p.add_argument("--frames", type=FRAMES, default=16, help="frames per clip (default 16)")
    p.add_argument(
        "--size", type=cli_type(rules.FRAME_SIZE), default=64, help="frame side (default 64)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("show", help="contact sheet of a video file or a synthetic action class")
    p.add_argument("target", help="a video file, or a synthetic class name such as sit_down")
    p.add_argument("--out", type=FIGURE, required=True, help="PNG file to write")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic clip")
    p.add_argument("--frames", type=FRAMES, default=16, help="frames to sample")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("params", help="the poster's Table 2: its figures, the papers', hartutor's")
    p.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p.add_argument("--classes", type=CLASSES, default=101, help="classifier size (default 101)")
    p.add_argument(
        "--format",
        choices=["markdown", "text"],
        default="markdown",
        help="markdown (default, paper preset): the poster's Table 2 completed; text: the "
        "measured models only",
    )
    p.add_argument(
        "--flow-rate",
        action="store_true",
        help="measure TV-L1 optical flow here and price the flow of the two-stream rows",
    )
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("table1", help="the poster's Table 1: Kinetics predictions on UCF101 videos")
    p.add_argument("root", nargs="?", type=Path, default=None, help="a UCF101 folder")
    p.add_argument("--world", action="store_true", help="the synthetic transfer world instead")
    p.add_argument("--weights", default="i3d_rgb_kinetics600_scratch", help="a Kinetics entry")
    p.add_argument("--videos", choices=["poster", "test"], default="poster")
    p.add_argument("--split", type=int, choices=[1, 2, 3], default=1)
    p.add_argument("--limit", type=CLIPS, default=None, help="test videos to score (default all)")
    p.add_argument("--frames", type=FRAMES, default=None, help="frames per clip (default weights')")
    p.add_argument("--clips-per-class", type=CLIPS, default=1, help="--world: clips per class")
    p.add_argument("--seed", type=SEED, default=0, help="--world: seed of the clips")
    p.add_argument("--no-download", action="store_true", help="use cached weights only")
    p.set_defaults(func=_cmd_table1)

    p = sub.add_parser("train", help="train a model on the synthetic set or a UCF101-style folder")
    p.add_argument(
        "model",
        type=cli_type(rules.MODEL_NAME),
        help="registry name, e.g. i3d, c3d, single_frame (see hartutor params)",
    )
    p.add_argument("--data", default="synthetic", help="'synthetic' or a UCF101-layout folder")
    p.add_argument("--preset", choices=["paper", "tiny"], default="tiny")
    p.add_argument("--classes", type=CLASSES, default=None, help="default: from the data")
    p.add_argument(
        "--arg",
        action="append",
        metavar="KEY=VALUE",
        help="one of the model's own builder arguments, e.g. --arg fusion=slow (repeatable)",
    )
    p.add_argument("--epochs", type=EPOCHS, default=10)
    p.add_argument("--batch-size", type=BATCH, default=16)
    p.add_argument("--lr", type=LR, default=2e-3)
    p.add_argument("--weight-decay", type=cli_type(rules.WEIGHT_DECAY), default=1e-4)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument(
        "--warmup",
        type=cli_type(rules.WARMUP_EPOCHS),
        default=0.5,
        help="warm-up epochs (default 0.5)",
    )
    p.add_argument(
        "--fusion-loss",
        choices=["streams", "fused"],
        default="streams",
        help="fusions (two_stream, i3d_xception_fusion): train each stream on its own loss "
        "(default, as the papers) or on the fused score",
    )
    p.add_argument("--clips", type=CLIPS, default=1300, help="synthetic training clips")
    p.add_argument("--val-clips", type=CLIPS, default=260, help="synthetic validation clips")
    p.add_argument(
        "--cache-mb",
        type=_mebibytes,
        default=None,
        help="MiB of rendered synthetic clips kept in memory per split, so later epochs skip "
        f"rendering (default {TRAINING_CACHE_MB:g}; 0: render every time)",
    )
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--workers", type=WORKERS, default=0, help="DataLoader worker processes")
    p.add_argument("--device", type=DEVICE, default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", type=Path, default=None, help="checkpoint file to write")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue the run in --out")
    resume.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out (a new run)"
    )
    p.add_argument(
        "--export", type=Path, default=None, help="also write a weights-only release copy here"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("fuse", help="late-fuse separately trained streams into one checkpoint")
    p.add_argument(
        "model", type=cli_type(rules.FUSION_MODEL), help="fusion model, e.g. i3d_xception_fusion"
    )
    p.add_argument(
        "--stream",
        action="append",
        metavar="NAME=CHECKPOINT",
        help="a trained stream, e.g. i3d=i3d_tiny.pt (repeat per stream)",
    )
    p.add_argument(
        "--scratch",
        action="append",
        metavar="NAME",
        help="a stream that starts untrained (random weights), said explicitly",
    )
    p.add_argument("--preset", choices=["paper", "tiny"], default="tiny")
    p.add_argument("--mode", choices=["softmax_mean", "logit_sum"], default="softmax_mean")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("evaluate", help="accuracy of a checkpoint, with temporal diagnostics")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", default=None, help="default: the data it was trained on")
    p.add_argument("--clips", type=CLIPS, default=520, help="synthetic clips to evaluate")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--batch-size", type=BATCH, default=32)
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="also evaluate on time-reversed and frame-shuffled clips",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the result, with the command, machine and checkpoint digest, as JSON",
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
    p.add_argument(
        "--test-clips",
        type=cli_type(rules.int_rule("clips per video", 1, 100)),
        default=3,
        help="clips per test video",
    )
    p.add_argument("--i3d-weights", default="i3d_rgb_kinetics600_scratch")
    p.add_argument("--xception-weights", default="xception_imagenet1k_tf")
    p.add_argument(
        "--xception-stride",
        type=cli_type(rules.int_rule("frame stride", 1, 1000)),
        default=8,
        help="frame stride of its 8 frames",
    )
    p.add_argument("--epochs", type=EPOCHS, default=60, help="linear-head epochs")
    p.add_argument("--lr", type=LR, default=1e-3, help="linear-head learning rate")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--batch-size", type=BATCH, default=8, help="clips per forward pass")
    p.add_argument("--workers", type=WORKERS, default=0, help="DataLoader worker processes")
    p.add_argument("--device", type=DEVICE, default="auto")
    p.add_argument("--no-download", action="store_true", help="use cached weights only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_frozen)

    p = sub.add_parser(
        "demo",
        help="the I3D + Xception late fusion on one clip per family of the transfer world",
        description=(
            "By default, the transfer world's fine-tuned temporal stream (tiny I3D), frame "
            "stream (tiny Xception) and their softmax-mean fusion on one motion-defined, one "
            "appearance-defined and one both clip, each stream's top-3 marked right or wrong. "
            "Clips: in each family, class number (--seed mod the family's size), its first "
            "clip in the held-out target test set rendered with --seed; never chosen by "
            "whether a model is right on it. Each family's row also gives each stream's and "
            "the fusion's top-1 on that family's clips of the same test split (10 per class), "
            "so one clip a stream misses does not stand for the whole family."
        ),
    )
    p.add_argument(
        "--video",
        type=Path,
        default=None,
        help="a video file (full-size models when their weights are cached)",
    )
    p.add_argument(
        "--motion",
        action="store_true",
        help="the older tiny fusion of the motion-only synthetic set (reversal pairs) instead",
    )
    p.add_argument(
        "--clips",
        type=cli_type(rules.DEMO_CLIPS),
        default=None,
        help="--motion: synthetic clips to render (default 4)",
    )
    p.add_argument("--world", action="store_true", help=argparse.SUPPRESS)  # now the default
    p.add_argument("--seed", type=SEED, default=0, help="which clips (see above; default 0)")
    p.add_argument("--out", type=FIGURE, default=Path("hartutor-demo.png"), help="figure to write")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("weights", help="list, download or locate pretrained weights")
    p.add_argument("action", choices=["list", "download", "path"])
    p.add_argument("names", nargs="*", help="weights names (see 'hartutor weights list')")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("samples", help="list or fetch the course's sample clips and label lists")
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("names", nargs="*", help="samples to fetch (default: all; see 'list')")
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="copy verified files from this folder (laid out like shared/fixtures) first",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_samples)

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
    p.add_argument(
        "--quick",
        action="store_true",
        help="check: listed videos exist and are not empty (default: each also opens)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_ucf101)

    p = sub.add_parser(
        "standins",
        help="stand-ins of UCF101 and the weights (real formats, random values) as a local mirror",
    )
    p.add_argument("action", choices=["build", "serve"])
    p.add_argument("folder", type=Path, help="the mirror folder")
    p.add_argument(
        "--weights",
        nargs="*",
        default=["i3d_rgb_kinetics600_scratch", "xception_imagenet1k_tf"],
        help="build: registry entries to stand in for (default: the poster's two)",
    )
    p.add_argument("--frames", type=FRAMES, default=64, help="build: frames per stand-in video")
    p.add_argument(
        "--port",
        type=cli_type(rules.int_rule("port", 0, 65535)),
        default=0,
        help="serve: port (default: a free one)",
    )
    p.add_argument("--overwrite", action="store_true", help="build: replace a non-empty folder")
    p.set_defaults(func=_cmd_standins)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hartutor`` console script.

    A bad argument is a usage error (exit 2, from the parser); an error the user can act on
    (:class:`~hartutor.errors.HartutorError`) is one line and exit 2; a file system error one
    line naming the file, exit 1; anything else one line, exit 1 (``HARTUTOR_DEBUG=1`` shows
    the traceback). Output cut short by a closed pipe (``| head -1``) ends quietly.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["hartutor", *argv])  # as typed, for result records
    prog = f"hartutor {args.command}"
    try:
        if args.threads is not None:
            from hartutor.config import configure_threads

            configure_threads(args.threads)
        return args.func(args)
    except HartutorError as err:
        _error(prog, str(err))
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except OSError as err:
        _error(prog, f"{describe_os_error(err)}; check the path, the free space and permissions")
        return 1
    except MemoryError:
        _error(prog, "out of memory; use a smaller model, batch or clip count")
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("HARTUTOR_DEBUG"):
            raise
        _error(
            prog,
            f"unexpected {type(err).__name__}: {err} (a bug: please report it with the command; "
            "HARTUTOR_DEBUG=1 shows the traceback)",
        )
        return 1


def _error(prog: str, message: str) -> None:
    """One line on stderr, whatever the message holds."""
    line = " ".join(message.split())
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(f"{prog}: error: {line}", file=sys.stderr)


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the exit flush raises nothing
    (the recipe of Python's documentation, signal module, "Note on SIGPIPE")."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # captured: no real fd
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def console_main() -> int:
    """The ``hartutor`` console script and ``python -m hartutor``: :func:`main` in a process
    of its own, which first lets glibc keep freed memory for reuse
    (:func:`hartutor.config.keep_freed_memory`: large activations are not faulted in again on
    every call; figures in ``docs/benchmarks.md``). A program that calls :func:`main` keeps
    its own allocator settings."""
    from hartutor.config import keep_freed_memory

    keep_freed_memory()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 1
    return code


if __name__ == "__main__":
    sys.exit(console_main())
