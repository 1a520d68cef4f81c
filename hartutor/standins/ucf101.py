"""A miniature UCF101 in the official layout, formats and archive names, rendered synthetically.

Everything a user's UCF101 has except its size and its pictures: the folders
``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` with the real class names, MPEG-4 Part 2 video
labelled ``XVID`` at 320x240 and 25 fps in AVI, ``ucfTrainTestlist/`` with the official
``classInd.txt`` (all 101 classes, so label indices are the real ones) and the three
train/test lists in their official line formats, groups 1-7 / 8-14 / 15-21 held out as the
official splits hold them out (one actor's clips never straddle train and test). The poster's
five Table 1 videos are always included under their real names.

:func:`pack_ucf101` packs it as the two archives UCF distributes, under their real names.
The splits archive is a real ZIP. RAR cannot be written with free tools, so the video
archive is a ZIP file named ``UCF101.rar``: bsdtar, 7z and unar recognise the format from the
bytes, not the name, so ``hartutor ucf101 prepare`` unpacks it through its real RAR path.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from hartutor.errors import DataError

#: The poster's Table 1 videos (Bose, "A general overview of SpatioTemporal Fusion Techniques
#: for Human Activity Recognition"): class, group, clip.
POSTER_TABLE1_VIDEOS: tuple[tuple[str, int, int], ...] = (
    ("Bowling", 22, 4),
    ("CricketBowling", 2, 1),
    ("BabyCrawling", 18, 6),
    ("HammerThrow", 23, 5),
    ("BrushingTeeth", 17, 2),
)
#: The synthetic action drawn for each stand-in class (any action would do: values are stand-ins).
DEFAULT_ACTIONS: Mapping[str, str] = {
    "Bowling": "bend_down",
    "CricketBowling": "punch",
    "BabyCrawling": "sit_down",
    "HammerThrow": "raise_arms",
    "BrushingTeeth": "wave",
}
#: One test group in each official split (1-7, 8-14, 15-21) and one training-only group.
DEFAULT_GROUPS: tuple[int, ...] = (2, 9, 17, 22)
WIDTH, HEIGHT, FPS = 320, 240, 25
VIDEO_ARCHIVE = "UCF101.rar"
SPLITS_ARCHIVE = "UCF101TrainTestSplits-RecognitionTask.zip"


def _test_split_of(group: int) -> int | None:
    """The official split whose test set holds ``group`` (1-7: 1, 8-14: 2, 15-21: 3), or None."""
    return (group - 1) // 7 + 1 if 1 <= group <= 21 else None


def _videos(
    actions: Mapping[str, str], groups: Sequence[int], clips_per_group: int
) -> list[tuple[str, int, int]]:
    wanted = {(c, g, k) for c in actions for g in groups for k in range(1, clips_per_group + 1)}
    wanted |= {v for v in POSTER_TABLE1_VIDEOS if v[0] in actions}
    return sorted(wanted)


def make_ucf101(
    root: str | os.PathLike[str],
    *,
    actions: Mapping[str, str] = DEFAULT_ACTIONS,
    groups: Sequence[int] = DEFAULT_GROUPS,
    clips_per_group: int = 1,
    num_frames: int = 64,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a miniature UCF101 (``UCF-101/`` and ``ucfTrainTestlist/``) under ``root``.

    ``actions`` maps real UCF101 class names to the synthetic action drawn for them. Each class
    gets ``clips_per_group`` clips for each of ``groups``, plus the poster's Table 1 video of
    that class. A group shares its figure and scene across its clips, as UCF101's groups share
    an actor and a place. Refuses a ``root`` that already holds a dataset unless ``overwrite``.
    """
    from hartutor._fileio import atomic_write_text
    from hartutor.labels import ucf101 as ucf101_classes
    from hartutor.synth import render_clip
    from hartutor.video import write_video

    names = ucf101_classes()
    unknown = [c for c in actions if c not in names]
    if unknown:
        raise DataError(f"not UCF101 class names: {', '.join(unknown)}")
    if clips_per_group < 1 or not groups or any(not 1 <= g <= 25 for g in groups):
        raise DataError("groups must be numbers 1-25 and clips_per_group at least 1")
    root = Path(root)
    for folder in ("UCF-101", "ucfTrainTestlist"):
        if (root / folder).exists() and not overwrite:
            raise DataError(f"{root / folder} exists; pass overwrite=True to replace it")
        shutil.rmtree(root / folder, ignore_errors=True)
    splits = {s: {"train": [], "test": []} for s in (1, 2, 3)}
    for index, (cls, group, clip) in enumerate(_videos(actions, groups, clips_per_group)):
        relpath = f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"
        rendered = render_clip(
            actions[cls],
            seed * 100_003 + index,
            num_frames=num_frames,
            size=(HEIGHT, WIDTH),
            fps=FPS,
            noise=False,
            appearance_seed=seed * 101 + group,
        )
        target = root / "UCF-101" / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        write_video(target, rendered.frames, FPS, fourcc="XVID")
        for split, lists in splits.items():
            if _test_split_of(group) == split:
                lists["test"].append(relpath)
            else:
                lists["train"].append(f"{relpath} {names.index(cls) + 1}")
    lists_dir = root / "ucfTrainTestlist"
    # The official files end their lines with CRLF.
    atomic_write_text(
        lists_dir / "classInd.txt", "".join(f"{i} {n}\r\n" for i, n in enumerate(names, 1))
    )
    for split, lists in splits.items():
        for subset, lines in lists.items():
            text = "".join(f"{line}\r\n" for line in lines)
            atomic_write_text(lists_dir / f"{subset}list0{split}.txt", text)
    return root


def zip_folder(archive: Path, root: Path, members: Iterable[Path], *, compress: bool) -> None:
    """Write ``members`` (paths inside ``root``) to a ZIP ``archive``, atomically."""
    from hartutor._fileio import atomic_path

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(archive) as tmp, zipfile.ZipFile(tmp, "w", method) as bundle:
        for path in sorted(members):
            bundle.write(path, path.relative_to(root).as_posix())


def pack_ucf101(root: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Pack ``root``'s miniature as UCF's two archives in ``out_dir``; return their paths."""
    root, out = Path(root), Path(out_dir)
    if not (root / "UCF-101").is_dir() or not (root / "ucfTrainTestlist").is_dir():
        raise DataError(f"{root} holds no UCF-101/ and ucfTrainTestlist/: run make_ucf101 first")
    out.mkdir(parents=True, exist_ok=True)
    videos = out / VIDEO_ARCHIVE
    splits = out / SPLITS_ARCHIVE
    tree = [p for p in (root / "UCF-101").rglob("*")]
    zip_folder(videos, root, tree, compress=False)  # video does not compress further
    zip_folder(splits, root, (root / "ucfTrainTestlist").rglob("*"), compress=True)
    return {"videos": videos, "splits": splits}
