"""``hartutor demo``: the poster's I3D + Xception late fusion, run end to end in seconds.

By default (offline, from the checkpoints shipped in the package) it shows the poster's lesson
in the synthetic transfer world (:mod:`hartutor.synth.world`): the fine-tuned temporal stream
(tiny I3D, 16 frames of 32x32) and frame stream (tiny Xception, 4 frames of 96x96) and their
softmax-mean fusion on one held-out test clip of each family of classes (motion-defined,
appearance-defined, both), chosen by :func:`world_demo_clips`' rule and never by whether a
model is right on it. It prints each stream's top-3 and the fusion's beside the true label and
writes a figure marking each top-1 right or wrong. One clip can be one a stream happens to
miss, so each family's row also gives every scorer's top-1 on that family's clips of the same
held-out test split (:func:`world_family_top1`, :data:`WORLD_FAMILY_CLIPS` per class).

``motion=True`` runs the older tiny fusion of the motion-only synthetic set (reversal pairs, so
the single-frame stream's blind spot shows). Given a real video, it runs the full-size models
instead when their pretrained weights are in the cache (I3D Kinetics, Xception ImageNet), or
says how to get them and falls back to the tiny models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hartutor.course import shipped_checkpoint
from hartutor.errors import WeightsError

#: The shipped tiny fusion of the motion-only synthetic set (``motion=True``; see
#: hartutor/assets/checkpoints).
FUSION_CHECKPOINT = "i3d_xception_fusion_tiny.pt"
#: ``motion=True`` clips: a reversal pair first (one frame cannot separate it), then others.
DEMO_CLASSES = (
    "sit_down",
    "stand_up",
    "walk",
    "run",
    "wave",
    "jumping_jacks",
    "raise_arms",
    "lower_arms",
)
#: Full-size weights tried for a real video, in order of preference (the poster used K600).
FULL_I3D_WEIGHTS = (
    "i3d_rgb_kinetics600_scratch",
    "i3d_rgb_kinetics400_imagenet",
    "i3d_rgb_kinetics400_imagenet_piergiaj",
)
FULL_XCEPTION_WEIGHTS = "xception_imagenet1k_tf"
#: How the default demo picks its clips, as the figure and ``hartutor demo --help`` state it.
WORLD_DEMO_RULE = (
    "per family, its class number (seed mod family size) and that class's first clip in the "
    "held-out test set of this seed, whatever the models predict"
)
#: Clips per class of the seed's held-out test split on which the default demo measures each
#: scorer's top-1 per family (13 classes: 60 motion, 30 appearance, 40 both clips; about ten
#: seconds on one core). docs/results.md gives the 520-clip figures.
WORLD_FAMILY_CLIPS = 10
#: The demo's scorer names of the world fusion -> the rules of
#: :class:`~hartutor.transfer.FusionReport`.
WORLD_SCORER_RULES = {
    "temporal (i3d)": "temporal",
    "frame (xception)": "frame",
    "fused": "softmax_mean",
}


@dataclass
class Prediction:
    """Top-k classes and probabilities of one scorer (a stream, or the fusion) on one clip."""

    scorer: str
    labels: list[str]
    probabilities: list[float]

    def describe(self) -> str:
        return ", ".join(
            f"{n} {p:.0%}" for n, p in zip(self.labels, self.probabilities, strict=True)
        )


@dataclass
class FamilyTop1:
    """Each scorer's top-1 on the ``clips`` held-out test clips of one family of classes."""

    family: str
    clips: int
    top1: dict[str, float]  # scorer (as in :class:`Prediction`) -> top-1 in [0, 1]

    def describe(self) -> str:
        scores = ", ".join(f"{scorer} {value:.0%}" for scorer, value in self.top1.items())
        return f"top-1 on the {self.clips} test clips of family {self.family}: {scores}"


@dataclass
class ClipResult:
    """What the demo found for one clip."""

    name: str
    true_label: str | None
    predictions: list[Prediction]
    frames: np.ndarray = field(repr=False)  # uint8 (T, H, W, 3), for the figure
    caption: str | None = None  # the figure's row label, where shorter lines than ``name`` fit
    family: FamilyTop1 | None = None  # the scorers on the clip's whole family (default demo)

    @property
    def fused(self) -> Prediction | None:
        return next((p for p in self.predictions if p.scorer == "fused"), None)


@dataclass
class DemoResult:
    mode: str  # "world" (default), "tiny" (motion-only or fallback) or "full"
    clips: list[ClipResult]
    figure: Path | None
    notes: list[str]

    @property
    def fused_accuracy(self) -> float | None:
        scored = [c for c in self.clips if c.true_label is not None and c.fused is not None]
        if not scored:
            return None
        return sum(c.fused.labels[0] == c.true_label for c in scored) / len(scored)


def _top(probabilities: torch.Tensor, names: Sequence[str], k: int, scorer: str) -> Prediction:
    values, indices = probabilities.topk(min(k, len(names)))
    return Prediction(scorer, [names[int(i)] for i in indices], values.tolist())


def run_tiny(
    clips: Sequence[tuple[str, np.ndarray, str | None]], *, top: int = 3
) -> tuple[list[ClipResult], list[str]]:
    """Run the shipped tiny I3D + Xception fusion on ``(name, frames uint8 (T,H,W,3), label)``."""
    from hartutor.accel import optimize
    from hartutor.data import model_transform
    from hartutor.train import load_checkpoint

    model, meta = load_checkpoint(shipped_checkpoint(FUSION_CHECKPOINT))
    optimize(model)
    names = list(meta.get("class_names") or [str(i) for i in range(model.num_classes)])
    spec = model.input_spec
    normalise = model_transform(model)
    batch = []
    for _, frames, _ in clips:
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 255
        video = _fit_clip(video, spec.num_frames, spec.size)
        batch.append(normalise({"video": video})["video"])
    with torch.inference_mode():
        output = model(torch.stack(batch))
    results = []
    for i, (name, frames, label) in enumerate(clips):
        predictions = [
            _top(torch.softmax(logits[i], -1), names, top, stream)
            for stream, logits in output.streams.items()
        ]
        predictions.append(_top(output.probabilities[i], names, top, "fused"))
        results.append(ClipResult(name, label, predictions, frames))
    return results, []


def world_demo_clips(seed: int = 0) -> list[tuple[str, int]]:
    """(class, index in the target test set) of the clip the default demo shows per family.

    The rule (:data:`WORLD_DEMO_RULE`), fixed before any model runs: in each family of
    :data:`~hartutor.synth.world.FAMILIES`, class number ``seed % len(family)``; its clip is
    that class's first item of ``SyntheticActions(split="test", seed=seed)`` over
    :data:`~hartutor.synth.world.TARGET_CLASSES` (item ``i`` is class ``i % 13``), a clip no
    training or choice saw. ``--seed`` thus walks through every class of each family.
    """
    from hartutor.synth.world import FAMILIES, TARGET_CLASSES

    picks = []
    for names in FAMILIES.values():
        name = names[seed % len(names)]
        picks.append((name, TARGET_CLASSES.index(name)))
    return picks


def world_family_top1(
    fusion: torch.nn.Module, seed: int = 0, clips_per_class: int = WORLD_FAMILY_CLIPS
) -> dict[str, FamilyTop1]:
    """Family -> each scorer's top-1 (:data:`WORLD_SCORER_RULES`) of the world ``fusion``'s
    streams on the first ``clips_per_class`` clips of every class of the held-out test split
    rendered with ``seed``: the split :func:`world_demo_clips` takes its clips from (they are
    among these), scored by :func:`hartutor.transfer.fusion_report`."""
    from hartutor import transfer
    from hartutor.synth.world import FAMILIES, TARGET_CLASSES
    from hartutor.validation import int_rule

    int_rule("family_clips", 1, 256)(clips_per_class, "family_clips")
    test = transfer.render_streams(TARGET_CLASSES, clips_per_class, seed=seed, split="test")
    report = transfer.fusion_report(fusion.streams["temporal"], fusion.streams["frame"], test)
    return {
        family: FamilyTop1(
            family,
            report.clips(family),
            {scorer: report.accuracy(rule, family) for scorer, rule in WORLD_SCORER_RULES.items()},
        )
        for family in FAMILIES
    }


def run_world(
    seed: int = 0, *, top: int = 3, family_clips: int = WORLD_FAMILY_CLIPS
) -> tuple[list[ClipResult], list[str]]:
    """The transfer world's fusion (:func:`hartutor.transfer.world_fusion`: the temporal stream
    on 16 frames of 32x32, the frame stream on 4 of 96x96, both fine-tuned from their source
    checkpoints, fused by softmax mean) on :func:`world_demo_clips`, with each stream's and the
    fusion's top-``top``, and their top-1 on each clip's family (:func:`world_family_top1` on
    ``family_clips`` test clips per class)."""
    from hartutor import transfer
    from hartutor.synth.world import FAMILY_OF, TARGET_CLASSES

    fusion, names = transfer.world_fusion()
    families = world_family_top1(fusion, seed, family_clips)
    test = transfer.target_clips(len(TARGET_CLASSES), seed=seed, split="test")
    results = []
    for name, index in world_demo_clips(seed):
        item = test[index]
        assert item["action"] == name  # the rule and the dataset agree on the class
        frames = item["video"].mul(255).round().byte().permute(1, 2, 3, 0).numpy()
        with torch.inference_mode():
            output = fusion(item["video"].mul(2).sub(1)[None])
        predictions = [
            _top(torch.softmax(z[0], -1), names, top, f"{kind} ({transfer.STREAM_MODELS[kind]})")
            for kind, z in output.streams.items()
        ]
        predictions.append(_top(output.probabilities[0], names, top, "fused"))
        assert [p.scorer for p in predictions] == list(WORLD_SCORER_RULES)
        family = FAMILY_OF[name]
        results.append(
            ClipResult(
                f"{name} ({family}, test clip {index})",
                name,
                predictions,
                frames,
                caption=f"{name}\n{family}\ntest clip {index}",
                family=families[family],
            )
        )
    return results, [
        f"clips: {WORLD_DEMO_RULE} (seed {seed})",
        f"family top-1: on the first {family_clips} clips of every class of the same held-out "
        f"test split (seed {seed}), the shown clips among them",
        "transfer world: temporal stream (i3d) 16 frames of 32x32, frame stream (xception) "
        "4 frames of 96x96, fused by softmax mean; measured over 520 test clips in "
        "docs/results.md",
    ]


def _fit_clip(video: torch.Tensor, num_frames: int, size: tuple[int, int]) -> torch.Tensor:
    """Uniformly sample ``num_frames`` and resize (C, T, H, W) to ``size`` (bilinear)."""
    t = video.shape[1]
    index = torch.linspace(0, t - 1, num_frames).round().long()
    video = video[:, index]
    if tuple(video.shape[-2:]) != tuple(size):
        video = torch.nn.functional.interpolate(
            video.transpose(0, 1), size=size, mode="bilinear", align_corners=False, antialias=True
        ).transpose(0, 1)
    return video


def _cached(name: str) -> bool:
    from hartutor.weights import weights_files

    try:
        weights_files(name, download=False, progress=False)
    except WeightsError:
        return False
    return True


def full_weights_available() -> tuple[str | None, bool]:
    """(the first I3D weights in the cache or None, whether Xception's are cached)."""
    i3d = next((name for name in FULL_I3D_WEIGHTS if _cached(name)), None)
    return i3d, _cached(FULL_XCEPTION_WEIGHTS)


def run_full(
    path: Path, i3d_weights: str | None, with_xception: bool, *, top: int = 3
) -> tuple[list[ClipResult], list[str]]:
    """Full-size pretrained streams on a real video, each in its own label set.

    I3D (Kinetics) and Xception (ImageNet) were pretrained on different label sets; the poster
    fine-tuned both on UCF101 before fusing them, so pretrained-only streams are reported side
    by side, and I3D's Kinetics scores are also read as UCF101 classes through hartutor's
    Kinetics-to-UCF101 mapping.
    """
    from hartutor.accel import optimize
    from hartutor.labels.ucf101 import kinetics_mapping
    from hartutor.video import read_video
    from hartutor.weights import get_weights, load_pretrained

    predictions: list[Prediction] = []
    notes = []
    shown: np.ndarray | None = None
    if i3d_weights is not None:
        entry = get_weights(i3d_weights)
        model = optimize(load_pretrained(entry, download=False))
        pre = entry.preprocessing
        video = read_video(path, num_frames=pre.num_frames, fps=pre.fps, on_short="loop")
        shown = video.frames.numpy()
        with torch.inference_mode():
            probs = torch.softmax(model(entry.transforms()(video.frames)[None])[0], -1)
        names = entry.categories()
        predictions.append(_top(probs, names, top, f"i3d ({entry.label_set})"))
        mapping = kinetics_mapping(entry.label_set)
        ucf = {
            ucf_name: float(sum(probs[names.index(k)] for k in kinetics))
            for ucf_name, kinetics in mapping.items()
            if kinetics
        }
        best = sorted(ucf.items(), key=lambda item: -item[1])[:top]
        predictions.append(Prediction("i3d as UCF101", [n for n, _ in best], [p for _, p in best]))
    if with_xception:
        entry = get_weights(FULL_XCEPTION_WEIGHTS)
        model = optimize(load_pretrained(entry, download=False))
        video = read_video(path, num_frames=8, on_short="loop")
        shown = video.frames.numpy() if shown is None else shown
        with torch.inference_mode():
            probs = model(entry.transforms()(video.frames)[None]).softmax(-1)[0]
        predictions.append(_top(probs, entry.categories(), top, "xception (imagenet)"))
    notes.append(
        "pretrained streams predict different label sets (Kinetics vs ImageNet), so they are "
        "shown side by side; the poster fuses them after fine-tuning both on UCF101 "
        "(docs/frozen_features.md shows how)"
    )
    assert shown is not None
    return [ClipResult(path.name, None, predictions, shown)], notes


def run_demo(
    *,
    video: str | Path | None = None,
    num_clips: int = 4,
    seed: int = 0,
    out: str | Path | None = "hartutor-demo.png",
    top: int = 3,
    motion: bool = False,
    family_clips: int = WORLD_FAMILY_CLIPS,
) -> DemoResult:
    """The main job (see the module docstring); returns what it printed, for notebooks.

    Default: the transfer world's fusion on one test clip per family (``num_clips`` is not
    used), and each scorer's top-1 per family on ``family_clips`` test clips per class.
    ``motion=True``: the motion-only tiny fusion on ``num_clips`` synthetic clips.
    ``video``: a real video file.
    """
    from hartutor.synth import render_clip

    notes: list[str] = []
    title = None
    if video is None and not motion:
        results, extra = run_world(seed, top=top, family_clips=family_clips)
        mode = "world"
        title = (
            f"Transfer world, seed {seed}. Clips: {WORLD_DEMO_RULE}\n"
            f"above each panel: its top-1 on the row's family, over the first {family_clips} "
            "clips of each class of the same test split"
        )
    elif video is None:
        from hartutor.validation import DEMO_CLIPS

        DEMO_CLIPS(num_clips, "num_clips")  # the rule of `hartutor demo --clips`
        classes = [DEMO_CLASSES[i % len(DEMO_CLASSES)] for i in range(num_clips)]
        # Consecutive classes share a seed, so a reversal pair shows the very same frames.
        clips = [
            (f"{name} (seed {seed + i // 2})", render_clip(name, seed + i // 2).frames, name)
            for i, name in enumerate(classes)
        ]
        results, extra = run_tiny(clips, top=top)
        mode = "tiny"
    else:
        path = Path(video)
        i3d_weights, xception = full_weights_available()
        if i3d_weights or xception:
            results, extra = run_full(path, i3d_weights, xception, top=top)
            mode = "full"
        else:
            from hartutor.video import read_video

            frames = read_video(path, num_frames=16, size=64, on_short="loop").frames.numpy()
            results, extra = run_tiny([(path.name, frames, None)], top=top)
            mode = "tiny"
            notes.append(
                "no pretrained full-size weights in the cache, so the tiny models trained on "
                "the synthetic actions ran: their classes are the synthetic ones. Get the real "
                f"ones with: hartutor weights download {FULL_I3D_WEIGHTS[0]} "
                f"{FULL_XCEPTION_WEIGHTS}"
            )
    notes += extra
    figure = None
    if out is not None:
        from hartutor.viz import prediction_figure, save_figure

        figure = save_figure(
            prediction_figure(
                [
                    (
                        c.caption or c.name,
                        c.frames,
                        c.true_label,
                        [(p.scorer, p.labels, p.probabilities) for p in c.predictions],
                    )
                    for c in results
                ],
                title=title,
                notes=_family_notes(results),
            ),
            out,
        )
    return DemoResult(mode, results, figure, notes)


def _family_notes(results: Sequence[ClipResult]) -> list[list[str]] | None:
    """Per row, per scorer, the line above its panel: its top-1 on the clip's family."""
    if not any(c.family for c in results):
        return None
    return [
        [
            f"top-1 on {c.family.clips} {c.family.family} clips: {c.family.top1[p.scorer]:.0%}"
            if c.family and p.scorer in c.family.top1
            else ""
            for p in c.predictions
        ]
        for c in results
    ]


def format_result(result: DemoResult) -> str:
    """The text ``hartutor demo`` prints."""
    lines = [f"mode: {result.mode}"]
    for clip in result.clips:
        truth = f"  (true: {clip.true_label})" if clip.true_label else ""
        lines.append(f"\n{clip.name}{truth}")
        width = max(len(p.scorer) for p in clip.predictions)
        for p in clip.predictions:
            mark = ""
            if clip.true_label is not None:
                mark = "  correct" if p.labels[0] == clip.true_label else "  wrong"
            lines.append(f"  {p.scorer:<{width}}  {p.describe()}{mark}")
        if clip.family is not None:
            lines.append(f"  {clip.family.describe()}")
    accuracy = result.fused_accuracy
    if accuracy is not None:
        lines.append(f"\nfused top-1 on these clips: {accuracy:.0%}")
    lines += [f"note: {n}" for n in result.notes]
    if result.figure is not None:
        lines.append(f"figure: {result.figure}")
    return "\n".join(lines)


__all__ = [
    "DemoResult",
    "FamilyTop1",
    "format_result",
    "full_weights_available",
    "run_demo",
    "shipped_checkpoint",
    "world_demo_clips",
    "world_family_top1",
]
