"""The poster's Table 1 for any set of clips, beside the poster's own rows where the videos match.

The poster (S. Bose, "A general overview of SpatioTemporal Fusion Techniques for Human Activity
Recognition") scores five UCF101 videos with a Kinetics-pretrained I3D: for each, the true
label, the Kinetics label predicted, its probability and whether the true class is in the
top-1 / top-5, through a UCF101-to-Kinetics class mapping. This module builds that table for
any clips and any source-label classifier, with one scorer (:func:`topk_through_mapping`):

- :func:`table1_from_scores`: from logits you already have;
- :func:`kinetics_table1` (full mode): a registered Kinetics weights entry on the poster's five
  videos (``videos="poster"``), the whole test split (``"test"``) or named videos of a UCF101
  folder;
- :func:`world_table1` (fast mode): the synthetic transfer world's shipped video-source I3D on
  target clips, through ``TARGET_TO_VIDEO_SOURCE`` (no UCF101 or weights needed);
- :func:`kinetics_on_samples` (fast mode, when Binder's postBuild has cached piergiaj's
  Kinetics-400 I3D): the real model on the course's real sample clips, per-clip top-5 and the
  Table 1 rows of the UCF101 ones, stand-in weights flagged.

Each row carries the poster's row for the same video, when the poster scored it.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hartutor._markdown import markdown_table
from hartutor.errors import DataError
from hartutor.labels.ucf101 import KineticsTransferScore, topk_through_mapping

__all__ = [
    "POSTER_TABLE1",
    "SAMPLE_CLIPS",
    "KineticsSamples",
    "PosterTable1Row",
    "Table1",
    "Table1Row",
    "kinetics_on_samples",
    "kinetics_samples_missing",
    "kinetics_table1",
    "poster_row_for",
    "poster_table1_markdown",
    "table1_from_scores",
    "world_table1",
]

MISSING = "—"
NOT_SCORABLE = "n/a"


@dataclass(frozen=True)
class PosterTable1Row:
    """One row of the poster's Table 1, as printed (its video names' case included)."""

    number: int
    video: str
    predicted: str
    probability: str
    topk: str

    @property
    def key(self) -> str:
        """The video's name as UCF101 writes it (``v_Class_gNN_cNN``), for matching."""
        return _video_key(self.video)

    def __str__(self) -> str:
        return f"{self.predicted}, {self.probability}, {self.topk}"


#: The poster's Table 1 (Bose, "A general overview of SpatioTemporal Fusion Techniques for Human
#: Activity Recognition"). It prints three names with a capital ``C`` before the clip number;
#: UCF101's files use ``c`` (``v_BabyCrawling_g18_c06.avi``).
POSTER_TABLE1: tuple[PosterTable1Row, ...] = (
    PosterTable1Row(1, "v_Bowling_g22_c04", "Bowling", "99.9 (Highest)", "Yes/yes"),
    PosterTable1Row(
        2, "v_CricketBowling_g02_c01", "Playing squash or racketball", "71.2", "No/yes"
    ),
    PosterTable1Row(3, "v_BabyCrawling_g18_C06", "Crawling baby", "98.1", "Yes/yes"),
    PosterTable1Row(4, "v_HammerThrow_g23_C05", "Hammer throw", "99.5", "Yes/yes"),
    PosterTable1Row(5, "v_BrushingTeeth_g17_C02", "Brushing Teeth", "97.6", "Yes/yes"),
)

_VIDEO = re.compile(r"^v_(?P<cls>[A-Za-z]+)_g(?P<group>\d+)_c(?P<clip>\d+)$", re.IGNORECASE)


def _video_key(name: str) -> str:
    stem = Path(name).stem if name.lower().endswith((".avi", ".mp4")) else Path(name).name
    match = _VIDEO.match(stem)
    if match is None:
        return stem
    return f"v_{match['cls']}_g{int(match['group']):02d}_c{int(match['clip']):02d}"


def poster_table1_markdown() -> str:
    """The poster's Table 1 as printed, for showing beside a computed one."""
    header = ("SL No.", "True label", "Predicted label", "Prediction %", "Top 1/Top-5")
    body = [(f"{r.number}.", r.video, r.predicted, r.probability, r.topk) for r in POSTER_TABLE1]
    return markdown_table(header, body)


def poster_row_for(video: str) -> PosterTable1Row | None:
    """The poster's row for ``video`` (a name or path, any case of ``c``), or None."""
    key = _video_key(video)
    return next((row for row in POSTER_TABLE1 if row.key == key), None)


@dataclass(frozen=True)
class Table1Row:
    """One scored clip in the poster's columns, and the poster's row for the same video."""

    number: int
    video: str
    true: str
    predicted: str
    probability: float  # percent, of the predicted class
    topk: str  # "Yes/Yes", "No/Yes", ... or "n/a" when the class has no source equivalent
    poster: PosterTable1Row | None = None


@dataclass(frozen=True)
class Table1:
    """Table 1 rows, the top-k over the scorable clips, and what scored them."""

    rows: tuple[Table1Row, ...]
    score: KineticsTransferScore
    source: str  # the model or weights that predicted
    label_set: str

    def markdown(self, rows: Sequence[Table1Row] | None = None) -> str:
        """The poster's columns, plus the poster's own row where it scored the same video."""
        header = (
            "SL No.",
            "True label",
            "Class",
            f"Predicted label ({self.label_set})",
            "Prediction %",
            "Top-1/Top-5",
            "Poster, same video",
        )
        body = [
            (
                f"{r.number}.",
                r.video,
                r.true,
                r.predicted,
                f"{r.probability:.1f}",
                r.topk,
                str(r.poster) if r.poster is not None else MISSING,
            )
            for r in (self.rows if rows is None else rows)
        ]
        return markdown_table(header, body)

    def compared(self) -> list[Table1Row]:
        """The rows of videos the poster also scored."""
        return [r for r in self.rows if r.poster is not None]


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def table1_from_scores(
    logits: torch.Tensor | np.ndarray,
    videos: Sequence[str],
    true_classes: Sequence[str],
    *,
    source_labels: Sequence[str],
    mapping: Mapping[str, Sequence[str]],
    target_classes: Sequence[str],
    label_set: str,
    target_set: str = "UCF101",
    source: str = "",
) -> Table1:
    """Table 1 from a source-label classifier's logits ``(N, len(source_labels))`` on ``N``
    videos of ``true_classes`` (target class names), scored through ``mapping``."""
    scores = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    if scores.ndim != 2 or scores.shape[0] != len(videos) or len(videos) != len(true_classes):
        raise DataError(
            f"Table 1 needs one row of scores per video: got scores {tuple(scores.shape)}, "
            f"{len(videos)} videos, {len(true_classes)} labels"
        )
    probs = torch.softmax(scores.double(), dim=1).numpy()
    score = topk_through_mapping(
        probs,
        list(true_classes),
        mapping=mapping,
        target_classes=target_classes,
        source_labels=source_labels,
        k=(1, 5),
        label_set=label_set,
        target_set=target_set,
    )
    rows = []
    for i, (p, video, true) in enumerate(zip(probs, videos, true_classes, strict=True)):
        top, rank = int(p.argmax()), score.best_rank[i]
        rows.append(
            Table1Row(
                number=i + 1,
                video=_video_key(video),
                true=str(true),
                predicted=str(source_labels[top]),
                probability=100.0 * float(p[top]),
                topk=NOT_SCORABLE if rank < 0 else f"{_yes(rank < 1)}/{_yes(rank < 5)}",
                poster=poster_row_for(video),
            )
        )
    return Table1(tuple(rows), score, source, label_set)


def _poster_entries(root: str | os.PathLike[str], split: int) -> list:
    """The poster's five videos among the entries of ``split`` (train or test: the poster's
    Bowling g22 and HammerThrow g23 are in no official test split)."""
    from hartutor.ucf101 import read_split

    entries = read_split(root, split, "train") + read_split(root, split, "test")
    by_key = {_video_key(e.relpath): e for e in entries}
    missing = [row.video for row in POSTER_TABLE1 if row.key not in by_key]
    if missing:
        raise DataError(
            f"{root}: the poster's Table 1 videos {missing} are not in split {split}'s lists; "
            "is it a complete UCF101?"
        )
    return [by_key[row.key] for row in POSTER_TABLE1]


def kinetics_table1(
    root: str | os.PathLike[str],
    *,
    weights: str = "i3d_rgb_kinetics600_scratch",
    videos: Literal["poster", "test"] | Sequence[str] = "poster",
    split: int = 1,
    limit: int | None = None,
    num_frames: int | None = None,
    path: str | os.PathLike[str] | None = None,
    download: bool = False,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str = "auto",
) -> Table1:
    """Table 1 of a Kinetics weights entry on UCF101 videos, with no fine-tuning.

    Every video is read once with the entry's preprocessing (uniform clip, shorter side and
    centre crop as the weights were trained), scored, and its Kinetics prediction scored through
    the UCF101 mapping of the entry's label set. ``videos``: ``"poster"`` (the poster's five),
    ``"test"`` (every video of the split's test list; ``limit`` evenly spaced ones) or video
    names. ``num_frames`` shortens the clip (default: the entry's).
    """
    from torch.utils.data import DataLoader

    from hartutor.features import pretrained_stream
    from hartutor.labels import UCF101_CLASSES, kinetics400, kinetics600, kinetics_mapping
    from hartutor.train import collect_scores
    from hartutor.ucf101 import Layout
    from hartutor.weights import get_weights

    Layout.find(root)  # a missing or wrong folder is named before any download
    entry = get_weights(weights)
    if entry.label_set not in ("kinetics400", "kinetics600"):
        raise DataError(
            f"weights {weights!r} predict {entry.label_set}, not Kinetics: Table 1 needs a "
            "Kinetics model (see 'hartutor weights list')"
        )
    # the label map is a small checksummed text file, fetched once whatever ``download`` says
    labels = kinetics600() if entry.label_set == "kinetics600" else kinetics400()
    stream = pretrained_stream(
        weights, root, split=split, num_frames=num_frames, path=path, download=download
    )
    data = copy.copy(stream.test)  # the test subset's reading, on the videos asked for
    if isinstance(videos, str) and videos == "poster":
        data.entries = _poster_entries(root, split)
    elif isinstance(videos, str) and videos == "test":
        if limit:
            keep = np.linspace(0, len(data.entries) - 1, min(limit, len(data.entries)))
            data.entries = [data.entries[int(i)] for i in np.unique(keep.round())]
    else:
        from hartutor.ucf101 import read_split

        wanted = [_video_key(v) for v in videos]
        entries = read_split(root, split, "train") + read_split(root, split, "test")
        by_key = {_video_key(e.relpath): e for e in entries}
        unknown = [v for v in wanted if v not in by_key]
        if unknown:
            raise DataError(f"{root}: videos {unknown} are not in split {split}'s lists")
        data.entries = [by_key[v] for v in wanted]
    data._lengths = {}  # frame counts are cached by entry position: start afresh
    loader = DataLoader(data, batch_size=batch_size, num_workers=num_workers)
    scores, targets = collect_scores(stream.model, loader, device=device)
    names = [Path(e.relpath).stem for e in data.entries]
    true = [data.class_names[int(t)] for t in targets]
    return table1_from_scores(
        scores["model"],
        names,
        true,
        source_labels=labels,
        mapping=kinetics_mapping(entry.label_set),
        target_classes=UCF101_CLASSES,
        label_set=entry.label_set,
        source=weights,
    )


def world_table1(
    *, clips_per_class: int = 1, seed: int = 0, split: str = "test", path: str | None = None
) -> Table1:
    """Table 1 in the synthetic transfer world (fast mode): the shipped video-source I3D
    (``i3d_tiny_video_source.pt``, or ``path``), not fine-tuned, on ``clips_per_class`` target
    clips of every class, scored through ``TARGET_TO_VIDEO_SOURCE``. Clips are named
    ``v_<Class>_cNN`` (no group: the world has no actors)."""
    from hartutor import transfer
    from hartutor.synth.world import TARGET_CLASSES, TARGET_TO_VIDEO_SOURCE

    model, source_names = transfer.load_stream("temporal", path)
    world = transfer.render_streams(
        TARGET_CLASSES, clips_per_class, seed=seed, split=split, streams=("temporal",)
    )
    logits = transfer.stream_logits(model, world.inputs["temporal"])
    true = [TARGET_CLASSES[int(c)] for c in world.labels]
    seen: dict[str, int] = {}
    videos = []
    for name in true:
        seen[name] = seen.get(name, 0) + 1
        camel = "".join(part.capitalize() for part in name.split("_"))
        videos.append(f"v_{camel}_c{seen[name]:02d}")
    return table1_from_scores(
        logits,
        videos,
        true,
        source_labels=source_names,
        mapping=TARGET_TO_VIDEO_SOURCE,
        target_classes=TARGET_CLASSES,
        label_set="video source",
        target_set="target",
        source=str(path or "i3d_tiny_video_source.pt"),
    )


# ----------------------------------------------------------------- the real I3D on real clips

#: The course's real sample clips (``hartutor samples list``) and their true class: the three
#: UCF101 clips (a UCF101 class, scored through the Kinetics mapping) and the Kinetics-400 clip
#: (a Kinetics class, scored directly).
SAMPLE_CLIPS: tuple[tuple[str, str, str], ...] = (
    ("v_ApplyEyeMakeup_g01_c01.avi", "UCF101", "ApplyEyeMakeup"),
    ("v_BaseballPitch_g01_c01.avi", "UCF101", "BaseballPitch"),
    ("v_CricketShot_g04_c01_rgb.gif", "UCF101", "CricketShot"),
    ("kinetics_arm_wrestling.mp4", "kinetics400", "arm wrestling"),
)
#: Frames per clip in fast mode: the fewest that fill I3D's final 2x7x7 average pool at
#: 224x224 (time is strided 8x), so one window of the head sees the whole clip. The entry's
#: own 64 frames take four times the time and about 200 MB more (measured in 07's kernel).
SAMPLE_FRAMES = 16


@dataclass(frozen=True)
class SampleTop5:
    """One real clip: its true class, the Kinetics classes that count as it, and the top-k."""

    video: str
    true_set: str  # "UCF101" or the weights' Kinetics label set
    true: str
    equivalents: tuple[str, ...]  # Kinetics classes that are the true class (empty: none)
    top: tuple[tuple[str, float], ...]  # (Kinetics label, probability), best first
    rank: int  # 0-based rank of the best equivalent among all classes; -1 when none

    def hits(self) -> str:
        """``"Yes/No"`` etc.: an equivalent within the top 1 / top 5; ``"n/a"`` without one."""
        return NOT_SCORABLE if self.rank < 0 else f"{_yes(self.rank < 1)}/{_yes(self.rank < 5)}"


@dataclass(frozen=True)
class KineticsSamples:
    """:func:`kinetics_on_samples`' result: per-clip top-k, the Table 1 rows of the UCF101
    clips, what ran, and whether the weights were random-valued stand-ins."""

    weights: str
    label_set: str
    num_frames: int
    side: int
    standin: bool
    clips: tuple[SampleTop5, ...]
    table1: Table1 | None  # the UCF101 clips in the poster's columns (None: none available)
    missing: tuple[str, ...] = ()  # sample clips not in the cache (``hartutor samples fetch``)
    preprocessing: str = ""  # the weights entry's description of its input

    def markdown(self) -> str:
        """Every clip's top-k: one row per rank, the true class's equivalents in bold."""
        body = []
        for clip in self.clips:
            for rank, (label, p) in enumerate(clip.top, 1):
                shown = f"**{label}**" if label in clip.equivalents else label
                first = rank == 1
                body.append(
                    (
                        clip.video if first else "",
                        f"{clip.true} ({clip.true_set})" if first else "",
                        str(rank),
                        shown,
                        f"{100 * p:.1f}",
                        clip.hits() if first else "",
                    )
                )
        header = ("Clip", "True class", "Rank", f"{self.label_set} label", "%", "Top-1/Top-5")
        return markdown_table(header, body)

    def summary(self) -> str:
        """One line on what ran; with stand-ins, that the predictions are no result."""
        line = (
            f"{self.weights} ({self.label_set}), not fine-tuned, on {len(self.clips)} real "
            f"clips: {self.num_frames} frames of {self.side}x{self.side} around each clip's "
            f"middle, read as the weights prescribe ({self.preprocessing})"
        )
        if self.missing:
            line += f" ({len(self.missing)} sample clips missing: hartutor samples fetch)"
        if self.standin:
            line += (
                ". STAND-IN WEIGHTS: these files have the real format but random values, so "
                "the predictions below are random, not results; Binder's postBuild downloads "
                "the real ones"
            )
        return line


def _centred_indices(path: Path, num_frames: int, fps: float) -> list[int]:
    """Frame indices of a ``num_frames`` window at ``fps`` around the clip's middle, looping
    a clip shorter than the window (as ``read_video(on_short="loop")``)."""
    from hartutor.video import probe_video

    info = probe_video(path)
    native = info.fps if info.fps > 0 else fps
    start = max(0.0, (info.duration - num_frames / fps) / 2)
    return [round((start + k / fps) * native) % info.num_frames for k in range(num_frames)]


def kinetics_on_samples(
    *,
    weights: str | None = None,
    num_frames: int = SAMPLE_FRAMES,
    top: int = 5,
    clips: Sequence[tuple[str, str, str]] = SAMPLE_CLIPS,
) -> KineticsSamples:
    """The cached pretrained Kinetics I3D (default: piergiaj's Kinetics-400 port, the one
    Binder's postBuild downloads), not fine-tuned, on the course's real sample clips.

    Each clip is read as the weights entry prescribes (its frame rate, shorter side, centre
    crop and value range), ``num_frames`` frames around its middle, and run alone without
    gradients, so the peak stays a few hundred MB above the model's; the model is freed on
    return. UCF101 clips are scored through the entry's UCF101 mapping (as Table 1), the
    Kinetics clip directly. Raises :class:`~hartutor.errors.WeightsError` naming the download
    command when the weights are not cached, :class:`~hartutor.errors.DataError` when no sample
    clip is.
    """
    import dataclasses
    import gc

    from hartutor.course import sample_clip
    from hartutor.data import ClipTransform
    from hartutor.errors import WeightsError
    from hartutor.labels import UCF101_CLASSES, kinetics_mapping
    from hartutor.pretrained_explain import PRETRAINED_STREAMS, how_to_get, missing_weights
    from hartutor.video import read_video
    from hartutor.weights import get_weights, load_pretrained, standin_weights

    name = weights or PRETRAINED_STREAMS["i3d"]
    if missing_weights({"i3d": name}):
        raise WeightsError(
            f"pretrained weights {name!r} are not in the cache; run '{how_to_get({'i3d': name})}'"
        )
    entry = get_weights(name)
    if entry.label_set not in ("kinetics400", "kinetics600"):
        raise DataError(f"weights {name!r} predict {entry.label_set}, not Kinetics")
    available = [(sample_clip(f), f, s, c) for f, s, c in clips]
    missing = tuple(f for path, f, _, _ in available if path is None)
    available = [a for a in available if a[0] is not None]
    if not available:
        raise DataError(
            f"none of the sample clips {[f for f, _, _ in clips]} is available; run "
            "'hartutor samples fetch'"
        )
    spec = dataclasses.replace(entry.preprocessing, num_frames=num_frames)
    transform = ClipTransform(spec)
    labels = entry.categories()
    mapping = kinetics_mapping(entry.label_set)
    model = load_pretrained(entry, download=False, progress=False).eval()
    logits = []
    try:
        for path, _, _, _ in available:
            indices = _centred_indices(path, num_frames, spec.fps or 25.0)
            x = transform(read_video(path, indices=indices).frames)
            with torch.inference_mode():
                logits.append(model(x[None]).float()[0])
            del x
    finally:
        del model
        gc.collect()
    rows = []
    for (_, file, true_set, true), z in zip(available, logits, strict=True):
        probs = torch.softmax(z.double(), -1)
        equivalents = tuple(mapping.get(true, ())) if true_set == "UCF101" else (true,)
        order = probs.argsort(descending=True).tolist()
        ranks = [order.index(labels.index(k)) for k in equivalents if k in labels]
        best = torch.topk(probs, top)
        rows.append(
            SampleTop5(
                file,
                true_set if true_set == "UCF101" else entry.label_set,
                true,
                equivalents,
                tuple((labels[int(i)], float(p)) for p, i in zip(*best, strict=True)),
                min(ranks) if ranks else -1,
            )
        )
    ucf = [
        (Path(f).stem.removesuffix("_rgb"), c, z)
        for (_, f, s, c), z in zip(available, logits, strict=True)
        if s == "UCF101"
    ]
    table = None
    if ucf:
        table = table1_from_scores(
            torch.stack([z for _, _, z in ucf]),
            [f for f, _, _ in ucf],
            [c for _, c, _ in ucf],
            source_labels=labels,
            mapping=mapping,
            target_classes=UCF101_CLASSES,
            label_set=entry.label_set,
            source=name,
        )
    return KineticsSamples(
        name,
        entry.label_set,
        num_frames,
        spec.size[0],
        standin_weights(entry),
        tuple(rows),
        table,
        missing,
        entry.preprocessing.description,
    )


def kinetics_samples_missing(weights: str | None = None) -> str | None:
    """None when :func:`kinetics_on_samples` can run (its weights are cached), else the one
    line a notebook prints instead: what is missing and the command that gets it."""
    from hartutor.pretrained_explain import PRETRAINED_STREAMS, how_to_get, missing_weights

    streams = {"i3d": weights or PRETRAINED_STREAMS["i3d"]}
    if not missing_weights(streams):
        return None
    return (
        f"the pretrained Kinetics-400 I3D ({streams['i3d']}) is not in the cache, so its "
        f"predictions on the real clips are not shown; get it with: {how_to_get(streams)} "
        "(Binder's postBuild does)"
    )
