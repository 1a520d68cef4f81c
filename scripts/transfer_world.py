"""Pretrain the transfer world's source streams and measure transfer and fusion (issue 18).

    python scripts/transfer_world.py pretrain            # writes the three source checkpoints
    python scripts/transfer_world.py measure --logits DIR --seeds 0 1 2 [--split test]
    python scripts/transfer_world.py report --logits DIR [--split test] --table1 [--json F]
    python scripts/transfer_world.py targets --logits DIR0 DIR1 DIR2 [--shared DIR ...]

``pretrain``: the tiny I3D on the video source (17 classes, ``--video-clips`` per class, seed 0)
and the tiny Xception on the image source (10 object classes, ``--images`` object-centred
images, ``--zoom``: the crop's side a fraction of the frame; training seed ``--pretrain-seed``,
default 0, render seed 0),
and the tiny I3D's 2D twin on the image source at 32x32 (``--twin-images``, one-frame clips),
all with ``hartutor.train.fit`` and the recipes of ``hartutor.transfer``; the checkpoints go to
``hartutor/assets/checkpoints/`` (``i3d_tiny_video_source.pt``, ``xception_tiny_image_source.pt``,
``i3d_tiny_image_source.pt``).

``measure``: for every training seed, each stream fine-tuned on the target training set (20
clips per class, data seed 0) from its source checkpoint and from scratch (and the temporal
stream from its inflated image twin, ``--inits inflated``), then scored on
held-out clips of ``--split`` (``val`` for choosing recipes, ``test`` for the reported figures:
no choice is ever made on it); the fusion of the two fine-tuned streams (softmax mean and logit
sum) per family; Table 1 of the source temporal stream; the data-efficiency curve with
``--curve 2 5 10 20``. One thread; everything is deterministic on a given machine.

``targets``: issue 18's targets (``transfer.TARGETS``) with their mean and spread over every
pair of an image-source pretraining run (one ``measure`` folder each, ``--pretrain-seed N``)
and a fine-tuning seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hartutor import transfer as T
from hartutor.synth.world import VIDEO_SOURCE_CLASSES


def pretrain(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if "temporal" in args.streams:
        t = time.perf_counter()
        source = T.render_streams(
            VIDEO_SOURCE_CLASSES, args.video_clips, seed=0, split="train", streams=("temporal",)
        )
        model = T.pretrain("temporal", source, seed=args.pretrain_seed)
        T.save_stream(
            model,
            "temporal",
            out / T.SOURCE_CHECKPOINTS["temporal"],
            class_names=source.class_names,
            recipe=T.PRETRAIN_RECIPES["temporal"],
            seed=args.pretrain_seed,
            data=f"video source: {len(source)} clips ({args.video_clips} per class), "
            "render seed 0, split train, 16x96x96 adapted to 16x32x32",
        )
        val = T.render_streams(VIDEO_SOURCE_CLASSES, 10, seed=0, split="val", streams=("temporal",))
        acc = T.accuracy(T.stream_logits(model, val.inputs["temporal"]), val.labels)
        print(f"temporal source: val top-1 {acc:.1%} ({time.perf_counter() - t:.0f} s)")
    zoom = tuple(args.zoom) if args.zoom else None
    for kind in [kind for kind in args.streams if kind in ("frame", "twin")]:
        t = time.perf_counter()
        # the frame stream's source is object-centred (zoom); the 32x32 twin's is not
        stream = "frame" if kind == "frame" else "temporal"
        n, crops = (args.images, zoom) if kind == "frame" else (args.twin_images, None)
        data = T.render_images(n, seed=0, split="train", streams=(stream,), zoom=crops)
        val = T.render_images(200, seed=0, split="val", streams=(stream,))
        print(f"{len(data)} images rendered ({time.perf_counter() - t:.0f} s)", flush=True)
        recipe = T.PRETRAIN_RECIPES["frame"] if kind == "frame" else T.TWIN_RECIPE
        if kind == "frame" and (
            args.frame_epochs or args.frame_lr or args.frame_augment is not None
        ):
            recipe = dataclasses.replace(
                recipe,
                epochs=args.frame_epochs or recipe.epochs,
                lr=args.frame_lr or recipe.lr,
                augment=recipe.augment if args.frame_augment is None else args.frame_augment,
            )
        name = T.SOURCE_CHECKPOINTS["frame"] if kind == "frame" else T.INFLATION_SOURCE_CHECKPOINT
        model = T.pretrain(stream, data, seed=args.pretrain_seed, recipe=recipe)
        side = 96 if kind == "frame" else 32
        T.save_stream(
            model,
            stream,
            out / name,
            class_names=data.class_names,
            recipe=recipe,
            seed=args.pretrain_seed,
            data=f"image source: {len(data)} images of 96x96, render seed 0, split train"
            + (
                ""
                if crops is None
                else f", object-centred crops of {crops[0]:g}-{crops[1]:g} frame"
            )
            + ("" if kind == "frame" else ", resized to 32x32 (one-frame clips: the 2D twin)"),
        )
        acc = T.accuracy(T.stream_logits(model, val.inputs[stream]), val.labels)
        centred = ""
        if crops is not None:  # the source's own task: object-centred val images
            held = T.render_images(200, seed=0, split="val", streams=(stream,), zoom=crops)
            top1 = T.accuracy(T.stream_logits(model, held.inputs[stream]), held.labels)
            centred = f", centred val top-1 {top1:.1%}"
        print(
            f"{kind} ({side}x{side}) image source, pretraining seed {args.pretrain_seed}: "
            f"val top-1 {acc:.1%}{centred} ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _source(args: argparse.Namespace, kind: str, init: str = "pretrained") -> Path:
    if init == "inflated":
        return Path(args.checkpoints) / T.INFLATION_SOURCE_CHECKPOINT
    return Path(args.checkpoints) / T.SOURCE_CHECKPOINTS[kind]


def _recipe(args: argparse.Namespace, kind: str) -> T.Recipe:
    recipe = T.FINETUNE_RECIPES[kind]
    return dataclasses.replace(recipe, epochs=args.epochs or recipe.epochs, lr=args.lr or recipe.lr)


def measure(args: argparse.Namespace) -> None:
    """Fine-tune, score the held-out clips, and keep every run's logits in ``--logits``."""
    torch.set_num_threads(1)
    out = Path(args.logits)
    out.mkdir(parents=True, exist_ok=True)
    train = T.render_streams(clips_per_class=args.clips, seed=0, split="train")
    held = T.render_streams(clips_per_class=args.eval_clips, seed=0, split=args.split)
    torch.save(held.labels, out / "labels.pt")
    sizes = [("", train)] if not args.curve_only else []
    sizes += [(f"curve{n}_", train.subset(n)) for n in args.curve]
    for seed in args.seeds:
        for prefix, data in sizes:
            for kind in args.streams:
                for init in args.inits:
                    if init == "inflated" and kind != "temporal":
                        continue  # only the 3D stream inflates
                    t = time.perf_counter()
                    model = T.finetune(
                        kind,
                        data,
                        init=init,
                        seed=seed,
                        source=_source(args, kind, init),
                        recipe=_recipe(args, kind),
                    )
                    seconds = time.perf_counter() - t
                    logits = T.stream_logits(model, held.inputs[kind])
                    torch.save(
                        {"logits": logits, "seconds": seconds, "clips": len(data)},
                        out / f"{prefix}{kind}_{init}_s{seed}.pt",
                    )
                    acc = T.accuracy(logits, held.labels)
                    print(f"{prefix}seed {seed} {kind} {init}: top-1 {acc:.1%} ({seconds:.0f} s)")
                    if args.save_dir and not prefix and init == "pretrained" and seed == 0:
                        T.save_stream(
                            model,
                            kind,
                            Path(args.save_dir) / T.TARGET_CHECKPOINTS[kind],
                            class_names=train.class_names,
                            recipe=_recipe(args, kind),
                            seed=seed,
                            data=f"target: {len(train)} clips ({args.clips} per class), render "
                            f"seed 0, split train; from {T.SOURCE_CHECKPOINTS[kind]}",
                        )


def _load_runs(folder: Path, shared: list[Path]) -> tuple[torch.Tensor, dict[str, dict[int, dict]]]:
    """The held-out labels of ``folder`` and its runs by name and seed (``measure``'s files),
    then the runs of the ``shared`` folders it lacks; shared runs scored on other clips (their
    ``labels.pt`` differs) are refused."""
    if not (folder / "labels.pt").is_file():
        raise SystemExit(f"{folder}: no labels.pt; run measure into it")
    labels = torch.load(folder / "labels.pt", weights_only=True)
    for other in shared:
        path = other / "labels.pt"
        if path.is_file() and not torch.equal(torch.load(path, weights_only=True), labels):
            raise SystemExit(f"{other}: its runs scored other clips (labels.pt differs)")
    runs: dict[str, dict[int, dict]] = {}
    for source in [folder, *shared]:
        for path in sorted(source.glob("*_s*.pt")):
            name, seed = path.stem.rsplit("_s", 1)
            runs.setdefault(name, {}).setdefault(int(seed), torch.load(path, weights_only=True))
    return labels, runs


def report(args: argparse.Namespace) -> dict:
    """Read the logits of ``measure`` runs and summarise: streams, transfer, fusion, Table 1."""
    labels, runs = _load_runs(Path(args.logits), [Path(f) for f in args.shared])
    results: dict = {"clips": len(labels), "runs": {}, "families": {}, "classes": {}}
    for name, by_seed in sorted(runs.items()):
        accs = [T.accuracy(r["logits"], labels) for r in by_seed.values()]
        results["runs"][name] = {**_spread(accs), "seeds": sorted(by_seed)}
        results["runs"][name]["seconds"] = _spread([r["seconds"] for r in by_seed.values()])
    families: dict[str, list[float]] = {}
    classes: dict[str, dict[str, list[float]]] = {}
    flips = []
    seeds = sorted(set(runs.get("temporal_pretrained", {})) & set(runs.get("frame_pretrained", {})))
    for seed in seeds:
        rep = T.FusionReport(
            T.TARGET_CLASSES,
            labels,
            {
                "temporal": runs["temporal_pretrained"][seed]["logits"],
                "frame": runs["frame_pretrained"][seed]["logits"],
            },
        )
        for row in rep.family_table():
            for rule in rep.predictions:
                families.setdefault(f"{row['family']}/{rule}", []).append(row[rule])
        for row in rep.class_table():
            for rule in rep.predictions:
                classes.setdefault(row["class"], {}).setdefault(rule, []).append(row[rule])
        flips.append({k: len(v) for k, v in rep.disagreements().items()})
    results["fusion_seeds"] = seeds
    results["families"] = {k: _spread(v) for k, v in families.items()}
    results["classes"] = {
        c: {r: statistics.fmean(v) for r, v in d.items()} for c, d in classes.items()
    }
    results["disagreements"] = flips
    if args.table1:
        held = T.render_streams(
            clips_per_class=len(labels) // len(T.TARGET_CLASSES),
            seed=0,
            split=args.split,
            streams=("temporal",),
        )
        assert torch.equal(held.labels, labels)
        source, _ = T.load_stream("temporal", _source(args, "temporal"))
        table = T.source_table(
            T.stream_logits(source, held.inputs["temporal"]), labels, class_names=T.TARGET_CLASSES
        )
        results["table1"] = {
            "score": str(table.score),
            "top1": table.score.accuracy[1],
            "top5": table.score.accuracy[5],
            "markdown": table.markdown([r for r in table.rows if r["clip"].endswith("_c01")]),
        }
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return results


def targets(args: argparse.Namespace) -> dict:
    """Issue 18's targets (``transfer.TARGETS``) over every pair of an image-source pretraining
    run (one ``--logits`` folder each) and a fine-tuning seed; runs that do not depend on the
    image source (temporal stream, frame from scratch) may come from ``--shared``."""
    shared = [Path(f) for f in args.shared]
    names = [(kind, init) for kind in T.STREAMS for init in ("pretrained", "scratch")]
    margins: dict[str, list[float]] = {name: [] for name in T.TARGETS}
    per_source: dict[str, dict[str, float]] = {}
    for folder in map(Path, args.logits):
        seeds = sorted(
            int(p.stem.rsplit("_s", 1)[1]) for p in folder.glob("frame_pretrained_s*.pt")
        )
        if not seeds:
            raise SystemExit(f"{folder}: no frame_pretrained_s*.pt; run measure into it")
        labels, found = _load_runs(folder, shared)
        runs = []
        for seed in seeds:
            lacking = [
                f"{k}_{i}_s{seed}.pt" for k, i in names if seed not in found.get(f"{k}_{i}", {})
            ]
            if lacking:
                raise SystemExit(f"{folder} and --shared lack {', '.join(lacking)}: run measure")
            logits = {(k, i): found[f"{k}_{i}"][seed]["logits"] for k, i in names}
            runs.append(T.target_margins(T.TARGET_CLASSES, labels, logits))
        for name in T.TARGETS:
            margins[name].extend(run[name] for run in runs)
        per_source[str(folder)] = {
            name: statistics.fmean(run[name] for run in runs) for name in T.TARGETS
        }
    results = {
        "runs": len(margins[next(iter(T.TARGETS))]),
        "targets": {
            name: {**_spread(values), "bound": T.TARGETS[name]} for name, values in margins.items()
        },
        "per_source": per_source,
    }
    lines = [
        "| target | bound | mean ± sd | min | per source (mean) | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["targets"].items():
        sources = ", ".join(f"{m[name]:+.1f}" for m in per_source.values())
        lines.append(
            f"| {name} | {row['bound']:g} | {row['mean']:+.1f} ± {row['std']:.1f} | "
            f"{row['min']:+.1f} | {sources} | {'yes' if row['mean'] >= row['bound'] else 'NO'} |"
        )
    results["markdown"] = "\n".join(lines)
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(results["markdown"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain")
    p.add_argument("--out", default=str(T.CHECKPOINT_DIR))
    p.add_argument(
        "--streams",
        nargs="+",
        default=[*T.STREAMS, "twin"],
        choices=[*T.STREAMS, "twin"],
        help="twin: the temporal stream's 2D twin on the image source, for init='inflated'",
    )
    p.add_argument("--video-clips", type=int, default=80)
    p.add_argument("--images", type=int, default=12000, help="image-source images (frame)")
    p.add_argument("--twin-images", type=int, default=8000, help="images for the 2D twin")
    p.add_argument(
        "--zoom",
        type=float,
        nargs=2,
        default=list(T.IMAGE_SOURCE_ZOOM),
        metavar=("LO", "HI"),
        help="object-centred crops of the frame source (SyntheticImages' zoom)",
    )
    p.add_argument(
        "--no-zoom", dest="zoom", action="store_const", const=None, help="the whole frames"
    )
    p.add_argument(
        "--pretrain-seed",
        type=int,
        default=0,
        help="training seed of the sources (initial weights, shuffling); render seed stays 0",
    )
    p.add_argument("--frame-epochs", type=int, default=None, help="override its epochs")
    p.add_argument("--frame-lr", type=float, default=None, help="override its learning rate")
    p.add_argument(
        "--frame-augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flips and shifts of the frame source's images (default: its recipe's)",
    )
    m = sub.add_parser("measure")
    m.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    m.add_argument("--split", choices=("val", "test"), default="val")
    m.add_argument("--clips", type=int, default=20)
    m.add_argument("--eval-clips", type=int, default=40)
    m.add_argument(
        "--inits",
        nargs="+",
        default=["pretrained", "scratch", "inflated"],
        choices=["pretrained", "scratch", "inflated"],
        help="inflated: the temporal stream from its image-pretrained 2D twin",
    )
    m.add_argument("--curve", type=int, nargs="*", default=[])
    m.add_argument("--curve-only", action="store_true", help="skip the full training set")
    m.add_argument("--logits", required=True, help="folder for every run's test logits")
    m.add_argument("--checkpoints", default=str(T.CHECKPOINT_DIR))
    m.add_argument("--streams", nargs="+", default=list(T.STREAMS))
    m.add_argument("--epochs", type=int, default=None, help="override the fine-tuning epochs")
    m.add_argument("--lr", type=float, default=None, help="override the fine-tuning lr")
    m.add_argument("--save-dir", default=None, help="write the first seed's fine-tuned streams")
    r = sub.add_parser("report")
    r.add_argument("--logits", required=True)
    r.add_argument("--split", choices=("val", "test"), default="val")
    r.add_argument("--checkpoints", default=str(T.CHECKPOINT_DIR))
    r.add_argument("--table1", action="store_true")
    r.add_argument("--shared", nargs="*", default=[], help="folders of runs --logits lacks")
    r.add_argument("--json", default=None)
    g = sub.add_parser("targets")
    g.add_argument("--logits", nargs="+", required=True, help="a folder per image-source run")
    g.add_argument(
        "--shared", nargs="*", default=[], help="runs that do not depend on the image source"
    )
    g.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"pretrain": pretrain, "measure": measure, "report": report, "targets": targets}[args.command](
        args
    )


if __name__ == "__main__":
    main()
