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
  target clips, through ``TARGET_TO_VIDEO_SOURCE`` (no UCF101 or weights needed).

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
    "PosterTable1Row",
    "Table1",
    "Table1Row",
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
