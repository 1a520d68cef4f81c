"""Writing the synthetic dataset to disk in UCF101's layout, and reading its manifest back.

Layout (``out_dir``)::

    videos/<ClassName>/v_<ClassName>_gXX_cYY.mp4   # H.264 clips, as UCF-101/<ClassName>/...avi
    splits/classInd.txt                            # "1 Walk" ... (1-based, as UCF101)
    splits/trainlist01.txt                         # "Walk/v_Walk_g01_c01.mp4 1" (path, label)
    splits/vallist01.txt                           # same format as trainlist
    splits/testlist01.txt                          # "Walk/v_Walk_g08_c01.mp4" (path only)
    manifest.csv                                   # one row per clip, paths relative to out_dir

As in UCF101, clips of one group (``gXX``) share an actor and a scene (here: the figure's look
and the background, drawn from the group's appearance seed) and differ in motion, camera and
noise; a group is never split between train, val and test, so a model cannot score by
recognising the scene. The manifest is removed first and written last (atomically), so an
interrupted run never leaves a manifest that lists missing files.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hartutor._fileio import atomic_write_text
from hartutor.errors import DataError
from hartutor.synth.actions import CLASS_NAMES, get_action
from hartutor.synth.render import DEFAULT_FPS, render_clip

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
    "path",
    "class_name",
    "action",
    "label",
    "seed",
    "appearance_seed",
    "group",
    "clip",
    "split",
    "frames",
    "size",
    "fps",
)
SPLIT_NAMES = ("train", "val", "test")
SPLIT_FILES = {"train": "trainlist01.txt", "val": "vallist01.txt", "test": "testlist01.txt"}
#: UCF101 has 25 groups per class; small datasets use one group per clip instead.
MAX_GROUPS = 25
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_GENERATED_CLIPS = 2**31


@dataclass(frozen=True)
class ManifestEntry:
    """One clip of a generated dataset (``path`` is absolute; ``relative_path`` as stored)."""

    path: Path
    relative_path: str
    class_name: str
    action: str
    label: int
    seed: int
    appearance_seed: int
    group: int
    clip: int
    split: str
    frames: int
    size: int
    fps: float


def _allocate(total: int, fractions: Sequence[float]) -> list[int]:
    """Split ``total`` items by ``fractions`` (largest remainder), giving every positive
    fraction at least one item when there are enough."""
    raw = [total * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    positive = [i for i, f in enumerate(fractions) if f > 0]
    if total >= len(positive):
        for i in positive:
            while counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def _check_splits(splits: Sequence[float]) -> tuple[float, float, float]:
    if len(splits) != 3 or any(not (f >= 0) for f in splits) or not sum(splits) > 0:
        raise ValueError(
            f"splits must be three non-negative fractions (train, val, test), got {splits!r}"
        )
    total = float(sum(splits))
    return tuple(float(f) / total for f in splits)  # type: ignore[return-value]


def plan_dataset(
    num_clips: int,
    *,
    seed: int = 0,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    classes: Sequence[str | int] | None = None,
) -> list[dict[str, object]]:
    """Which clips a dataset has (class, group, clip number, split, seeds), without rendering.

    Classes are balanced (the first ``num_clips % K`` classes get one more clip); each class's
    clips are dealt into up to 25 groups of near-equal size; whole groups go to train, then
    val, then test in the proportions of ``splits``.
    """
    fractions = _check_splits(splits)
    if not 0 < num_clips < MAX_GENERATED_CLIPS:
        raise ValueError(f"num_clips must be in [1, {MAX_GENERATED_CLIPS}), got {num_clips}")
    if not 0 <= seed < 2**30:
        raise ValueError(f"seed must be in [0, 2**30), got {seed}")
    names = CLASS_NAMES if classes is None else tuple(get_action(c).name for c in classes)
    base = seed * 2**32
    plan: list[dict[str, object]] = []
    group_counter = 0
    for label, name in enumerate(names):
        count = num_clips // len(names) + (label < num_clips % len(names))
        if count == 0:
            continue
        num_groups = min(count, MAX_GROUPS)
        group_sizes = [count // num_groups + (g < count % num_groups) for g in range(num_groups)]
        split_groups = _allocate(num_groups, fractions)
        group_split = [s for s, n in zip(SPLIT_NAMES, split_groups, strict=True) for _ in range(n)]
        camel = get_action(name).camel_name
        for group, (size, split) in enumerate(zip(group_sizes, group_split, strict=True), 1):
            appearance_seed = base + 2**31 + group_counter
            group_counter += 1
            for clip in range(1, size + 1):
                relative = f"videos/{camel}/v_{camel}_g{group:02d}_c{clip:02d}.mp4"
                plan.append(
                    {
                        "path": relative,
                        "class_name": camel,
                        "action": name,
                        "label": label,
                        "seed": base + len(plan),
                        "appearance_seed": appearance_seed,
                        "group": group,
                        "clip": clip,
                        "split": split,
                    }
                )
    return plan


def generate_dataset(
    out_dir: str | os.PathLike[str],
    *,
    num_clips: int,
    seed: int = 0,
    num_frames: int = 16,
    size: int = 64,
    fps: float = DEFAULT_FPS,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    classes: Sequence[str | int] | None = None,
    progress: bool = True,
) -> Path:
    """Render ``num_clips`` clips to MP4 files in UCF101's layout under ``out_dir``; return it.

    Deterministic: the same arguments give the same clips (the MP4 encoding is lossy, so read
    back they match :func:`render_clip` only approximately). Labels in the manifest are 0-based;
    the split lists use UCF101's 1-based class indices. Re-running into the same folder
    rewrites every listed file; files of an earlier, larger run that are not listed stay.
    """
    from tqdm.auto import tqdm

    from hartutor.video import write_video

    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"size must be an int (square frames), got {size!r}")
    plan = plan_dataset(num_clips, seed=seed, splits=splits, classes=classes)
    names = CLASS_NAMES if classes is None else tuple(get_action(c).name for c in classes)
    out = Path(out_dir)
    # Validate the render settings before touching the folder.
    render_clip(names[0], 0, num_frames=num_frames, size=size, fps=fps, noise=False)
    out.mkdir(parents=True, exist_ok=True)
    splits_dir = out / "splits"
    stale = [out / MANIFEST, *(splits_dir / f for f in SPLIT_FILES.values())]
    for path in stale:  # never leave an old manifest describing half-rewritten files
        path.unlink(missing_ok=True)

    rows = []
    with tqdm(plan, desc=f"synthetic clips -> {out}", unit="clip", disable=not progress) as bar:
        for item in bar:
            clip = render_clip(
                str(item["action"]),
                int(item["seed"]),  # type: ignore[call-overload]
                num_frames=num_frames,
                size=size,
                fps=fps,
                appearance_seed=int(item["appearance_seed"]),  # type: ignore[call-overload]
            )
            write_video(out / str(item["path"]), clip.frames, fps)
            rows.append({**item, "frames": num_frames, "size": size, "fps": fps})

    camel = [get_action(n).camel_name for n in names]
    atomic_write_text(
        splits_dir / "classInd.txt", "".join(f"{i + 1} {c}\n" for i, c in enumerate(camel))
    )
    for split, filename in SPLIT_FILES.items():
        lines = []
        for row in rows:
            if row["split"] != split:
                continue
            in_videos = str(row["path"]).removeprefix("videos/")
            lines.append(in_videos if split == "test" else f"{in_videos} {int(row['label']) + 1}")
        atomic_write_text(splits_dir / filename, "".join(line + "\n" for line in lines))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / MANIFEST, buffer.getvalue())
    return out


def load_manifest(
    root: str | os.PathLike[str], *, split: str | None = None, check_files: bool = True
) -> list[ManifestEntry]:
    """Read ``root/manifest.csv`` written by :func:`generate_dataset`.

    ``split`` keeps one of ``train``/``val``/``test``. The file is treated as untrusted: its
    size is bounded, every field is validated, and paths must stay inside ``root``. With
    ``check_files`` a missing video is an error. Raises :class:`~hartutor.errors.DataError`.
    """
    root = Path(root)
    manifest = root / MANIFEST
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; use one of {SPLIT_NAMES}")
    if not manifest.is_file():
        raise DataError(
            f"no {MANIFEST} in {root}: generate the dataset first "
            f"(hartutor synth --out {root} --clips N), or check the folder"
        )
    if manifest.stat().st_size > MAX_MANIFEST_BYTES:
        raise DataError(f"{manifest} is larger than {MAX_MANIFEST_BYTES} bytes; is it a manifest?")
    text = manifest.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing_columns = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
    if missing_columns:
        raise DataError(
            f"{manifest} lacks columns {sorted(missing_columns)}; regenerate it with hartutor synth"
        )
    resolved_root = root.resolve()
    entries = []
    for line, row in enumerate(reader, start=2):
        try:
            relative = row["path"]
            target = (root / relative).resolve()
            if Path(relative).is_absolute() or not target.is_relative_to(resolved_root):
                raise ValueError(f"path {relative!r} points outside the dataset folder")
            entry = ManifestEntry(
                path=root / relative,
                relative_path=relative,
                class_name=row["class_name"],
                action=get_action(row["action"]).name,
                label=int(row["label"]),
                seed=int(row["seed"]),
                appearance_seed=int(row["appearance_seed"]),
                group=int(row["group"]),
                clip=int(row["clip"]),
                split=row["split"],
                frames=int(row["frames"]),
                size=int(row["size"]),
                fps=float(row["fps"]),
            )
            if entry.split not in SPLIT_NAMES:
                raise ValueError(f"unknown split {entry.split!r}")
        except (TypeError, ValueError, KeyError) as err:
            raise DataError(f"{manifest}, line {line}: {err}") from err
        if split is None or entry.split == split:
            entries.append(entry)
    if check_files:
        missing = [e for e in entries if not e.path.is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} video(s) listed in {manifest} are missing, e.g. "
                f"{missing[0].path}; regenerate the dataset"
            )
    return entries
