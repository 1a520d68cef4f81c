"""A miniature HMDB51 in the official layout, split-file format and (nested) archive names.

``hmdb51_org/<class>/<video>.avi`` with real class names and HMDB-style file names (30 fps,
240 pixels high, as HMDB51's videos), ``testTrainMulti_7030_splits/<class>_test_split<k>.txt``
with the official ``<video>.avi <0|1|2>`` lines, each split choosing its own training and test
videos. :func:`pack_hmdb51` packs it as the official archives: ``hmdb51_org.rar`` holding one
archive per class, and ``test_train_splits.rar`` (ZIP bytes under the RAR names, as
:mod:`hartutor.standins.ucf101` explains).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from hartutor import hmdb51
from hartutor.errors import DataError
from hartutor.standins.ucf101 import zip_folder

DEFAULT_ACTIONS: Mapping[str, str] = {"brush_hair": "wave", "sit": "sit_down", "stand": "stand_up"}
WIDTH, HEIGHT, FPS = 320, 240, 30


def make_hmdb51(
    root: str | os.PathLike[str],
    *,
    actions: Mapping[str, str] = DEFAULT_ACTIONS,
    videos_per_class: int = 5,
    num_frames: int = 48,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a miniature HMDB51 under ``root``; each split holds out a different 2 in 5 videos."""
    from hartutor._fileio import atomic_write_text
    from hartutor.synth import render_clip
    from hartutor.video import write_video

    unknown = [c for c in actions if c not in hmdb51.CLASSES]
    if unknown:
        raise DataError(f"not HMDB51 class names: {', '.join(unknown)}")
    if videos_per_class < 3:
        raise DataError("videos_per_class must be at least 3 (training, test and unused)")
    root = Path(root)
    for folder in (hmdb51.VIDEO_DIR, hmdb51.SPLIT_DIR):
        if (root / folder).exists() and not overwrite:
            raise DataError(f"{root / folder} exists; pass overwrite=True to replace it")
        shutil.rmtree(root / folder, ignore_errors=True)
    for number, cls in enumerate(sorted(actions)):
        names = [f"Stand-in_{cls}_f_cm_np1_fr_med_{k}.avi" for k in range(videos_per_class)]
        for k, name in enumerate(names):
            clip = render_clip(
                actions[cls],
                seed * 100_003 + number * 1000 + k,
                num_frames=num_frames,
                size=(HEIGHT, WIDTH),
                fps=FPS,
                noise=False,
            )
            target = root / hmdb51.VIDEO_DIR / cls / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_video(target, clip.frames, FPS, fourcc="XVID")
        for split in (1, 2, 3):
            tags = []
            for k, name in enumerate(names):
                turn = (k + split) % 5  # each split holds out different videos
                tag = "2" if turn < 2 else ("0" if turn == 4 and videos_per_class > 3 else "1")
                tags.append(f"{name} {tag} \n")  # the official lines end with a space
            path = root / hmdb51.SPLIT_DIR / f"{cls}_test_split{split}.txt"
            atomic_write_text(path, "".join(tags))
    return root


def pack_hmdb51(root: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Pack ``root``'s miniature as HMDB51's two archives in ``out_dir``; return their paths."""
    root, out = Path(root), Path(out_dir)
    hmdb51.find_layout(root)
    out.mkdir(parents=True, exist_ok=True)
    inner = out / ".per_class"
    inner.mkdir(exist_ok=True)
    videos = root / hmdb51.VIDEO_DIR
    for folder in sorted(p for p in videos.iterdir() if p.is_dir()):
        members = [folder, *folder.rglob("*")]
        zip_folder(inner / f"{folder.name}.rar", videos, members, compress=False)
    zip_folder(out / hmdb51.ARCHIVES["videos"], inner, inner.glob("*.rar"), compress=False)
    shutil.rmtree(inner)
    splits = root / hmdb51.SPLIT_DIR
    zip_folder(out / hmdb51.ARCHIVES["splits"], root, [splits, *splits.rglob("*")], compress=True)
    return {key: out / name for key, name in hmdb51.ARCHIVES.items()}
