"""Pretrain the transfer world's source streams and measure transfer and fusion (issue 18).

    python scripts/transfer_world.py pretrain            # writes the two source checkpoints
    python scripts/transfer_world.py measure --seeds 0 1 2 [--split test] [--json out.json]

``pretrain``: the tiny I3D on the video source (17 classes, ``--video-clips`` per class, seed 0)
and the tiny Xception on the image source (10 object classes, ``--images`` images, seed 0),
both with ``hartutor.train.fit`` and the recipes of ``hartutor.transfer``; the checkpoints go to
``hartutor/assets/checkpoints/`` (``i3d_tiny_video_source.pt``, ``xception_tiny_image_source.pt``).

``measure``: for every training seed, each stream fine-tuned on the target training set (20
clips per class, data seed 0) from its source checkpoint and from scratch, then scored on
held-out clips of ``--split`` (``val`` for choosing recipes, ``test`` for the reported figures:
no choice is ever made on it); the fusion of the two fine-tuned streams (softmax mean and logit
sum) per family; Table 1 of the source temporal stream; the data-efficiency curve with
``--curve 2 5 10 20``. One thread; everything is deterministic on a given machine.
"""

from __future__ import annotations

import argparse
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
        model = T.pretrain("temporal", source, seed=0)
        T.save_stream(
            model,
            "temporal",
            out / T.SOURCE_CHECKPOINTS["temporal"],
            class_names=source.class_names,
            recipe=T.PRETRAIN_RECIPES["temporal"],
            seed=0,
            data=f"video source: {len(source)} clips ({args.video_clips} per class), "
            "render seed 0, split train, 16x96x96 adapted to 16x32x32",
        )
        val = T.render_streams(VIDEO_SOURCE_CLASSES, 10, seed=0, split="val", streams=("temporal",))
        acc = T.accuracy(T.stream_logits(model, val.inputs["temporal"]), val.labels)
        print(f"temporal source: val top-1 {acc:.1%} ({time.perf_counter() - t:.0f} s)")
    if "frame" in args.streams:
        t = time.perf_counter()
        images = T.render_images(args.images, seed=0, split="train")
        model = T.pretrain("frame", images, seed=0)
        T.save_stream(
            model,
            "frame",
            out / T.SOURCE_CHECKPOINTS["frame"],
            class_names=images.class_names,
            recipe=T.PRETRAIN_RECIPES["frame"],
            seed=0,
            data=f"image source: {len(images)} images of 96x96, render seed 0, split train",
        )
        val = T.render_images(200, seed=0, split="val")
        acc = T.accuracy(T.stream_logits(model, val.inputs["frame"]), val.labels)
        print(f"frame source: val top-1 {acc:.1%} ({time.perf_counter() - t:.0f} s)")


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _source(args: argparse.Namespace, kind: str) -> Path:
    return Path(args.checkpoints) / T.SOURCE_CHECKPOINTS[kind]


def _recipe(args: argparse.Namespace, kind: str) -> T.Recipe:
    recipe = T.FINETUNE_RECIPES[kind]
    return T.Recipe(args.epochs or recipe.epochs, args.lr or recipe.lr, recipe.batch_size)


def measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    train = T.render_streams(clips_per_class=args.clips, seed=0, split="train")
    held = T.render_streams(clips_per_class=args.eval_clips, seed=0, split=args.split)
    results: dict = {"split": args.split, "clips_per_class": args.clips, "seeds": args.seeds}
    runs: dict[str, list[float]] = {}
    families: dict[str, list[float]] = {}
    classes: dict[str, dict[str, list[float]]] = {}
    wins: list[dict] = []
    for seed in args.seeds:
        models = {}
        for kind in args.streams:
            for init in args.inits:
                t = time.perf_counter()
                model = T.finetune(
                    kind,
                    train,
                    init=init,
                    seed=seed,
                    source=_source(args, kind),
                    recipe=_recipe(args, kind),
                )
                seconds = time.perf_counter() - t
                acc = T.accuracy(T.stream_logits(model, held.inputs[kind]), held.labels)
                runs.setdefault(f"{kind}/{init}", []).append(acc)
                runs.setdefault(f"{kind}/{init}/seconds", []).append(seconds)
                print(f"seed {seed} {kind:8s} {init:10s} top-1 {acc:.1%} ({seconds:.0f} s)")
                models[(kind, init)] = model
        if len(args.streams) < 2:
            continue
        init = "pretrained" if "pretrained" in args.inits else args.inits[0]
        report = T.fusion_report(models[("temporal", init)], models[("frame", init)], held)
        for row in report.family_table():
            for rule in report.predictions:
                families.setdefault(f"{row['family']}/{rule}", []).append(row[rule])
        for row in report.class_table():
            for rule in report.predictions:
                classes.setdefault(row["class"], {}).setdefault(rule, []).append(row[rule])
        dis = report.disagreements()
        wins.append({k: len(v) for k, v in dis.items()})
        print(T.markdown_table(report.family_table()))
    for curve_n in args.curve:
        for kind in args.streams:
            for init in args.inits:
                values = []
                for seed in args.seeds:
                    model = T.finetune(
                        kind,
                        train.subset(curve_n),
                        init=init,
                        seed=seed,
                        source=_source(args, kind),
                        recipe=_recipe(args, kind),
                    )
                    values.append(
                        T.accuracy(T.stream_logits(model, held.inputs[kind]), held.labels)
                    )
                runs[f"curve/{curve_n}/{kind}/{init}"] = values
                print(f"curve {curve_n}/class {kind} {init}: {values}")
    if args.no_table:
        print(json.dumps({k: v for k, v in runs.items()}))
        return results
    source, _ = T.load_stream("temporal", _source(args, "temporal"))
    table = T.source_table(
        T.stream_logits(source, held.inputs["temporal"]), held.labels, class_names=held.class_names
    )
    results["runs"] = {k: _spread(v) for k, v in runs.items()}
    results["families"] = {k: _spread(v) for k, v in families.items()}
    results["classes"] = {
        c: {r: _spread(v)["mean"] for r, v in d.items()} for c, d in classes.items()
    }
    results["disagreements"] = wins
    results["table1"] = {
        "score": str(table.score),
        "top1": table.score.accuracy[1],
        "top5": table.score.accuracy[5],
        "rows": table.rows[:: max(1, len(table.rows) // 13)][:13],
    }
    print(table.score)
    print(json.dumps({k: (v["mean"], v["std"]) for k, v in results["families"].items()}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain")
    p.add_argument("--out", default=str(T.CHECKPOINT_DIR))
    p.add_argument("--streams", nargs="+", default=list(T.STREAMS))
    p.add_argument("--video-clips", type=int, default=80)
    p.add_argument("--images", type=int, default=4000)
    m = sub.add_parser("measure")
    m.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    m.add_argument("--split", choices=("val", "test"), default="val")
    m.add_argument("--clips", type=int, default=20)
    m.add_argument("--eval-clips", type=int, default=40)
    m.add_argument("--inits", nargs="+", default=["pretrained", "scratch"])
    m.add_argument("--curve", type=int, nargs="*", default=[])
    m.add_argument("--json", default=None)
    m.add_argument("--checkpoints", default=str(T.CHECKPOINT_DIR))
    m.add_argument("--streams", nargs="+", default=list(T.STREAMS))
    m.add_argument("--epochs", type=int, default=None, help="override the fine-tuning epochs")
    m.add_argument("--lr", type=float, default=None, help="override the fine-tuning lr")
    m.add_argument("--no-table", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "pretrain":
        pretrain(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
