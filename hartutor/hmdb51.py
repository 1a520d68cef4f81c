"""HMDB51 (Kuehne et al. 2011) in its official layout, through the same dataset API as UCF101.

HMDB51 is the second benchmark of the two-stream papers (Simonyan & Zisserman 2014 report both).
Expected layout (what unpacking the official archives gives)::

    ROOT/hmdb51_org/<class>/<video>.avi                         51 classes, 6,766 videos
    ROOT/testTrainMulti_7030_splits/<class>_test_split<k>.txt   "<video>.avi <tag>" lines

Tags: ``1`` training, ``2`` test, ``0`` in neither (each split keeps 70 training and 30 test
videos per class). The video archive ``hmdb51_org.rar`` holds one RAR per class, unpacked in
turn. Labels are the index of the class in :data:`CLASSES` (alphabetical, as the split files
sort). :class:`HMDB51` is :class:`~hartutor.ucf101.UCF101` with this index: the same clip
sampling, multi-clip testing, crops, flow and transforms.
"""

from __future__ import annotations

import re
from pathlib import Path

from hartutor.errors import DataError
from hartutor.ucf101 import UCF101, Layout, LayoutReport, Subset, VideoEntry

CLASSES: tuple[str, ...] = (
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive",
    "draw_sword", "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf",
    "handstand", "hit", "hug", "jump", "kick", "kick_ball", "kiss", "laugh", "pick", "pour",
    "pullup", "punch", "push", "pushup", "ride_bike", "ride_horse", "run", "shake_hands",
    "shoot_ball", "shoot_bow", "shoot_gun", "sit", "situp", "smile", "smoke", "somersault",
    "stand", "swing_baseball", "sword", "sword_exercise", "talk", "throw", "turn", "walk",
    "wave",
)  # fmt: skip
NUM_VIDEOS = 6_766
#: Per split: (training, test) videos: 70 and 30 per class.
SPLIT_SIZES = {k: (70 * len(CLASSES), 30 * len(CLASSES)) for k in (1, 2, 3)}
URLS = {
    "videos": "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/hmdb51_org.rar",
    "splits": "http://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/test_train_splits.rar",
}
ARCHIVES = {"videos": "hmdb51_org.rar", "splits": "test_train_splits.rar"}
VIDEO_DIR = "hmdb51_org"
SPLIT_DIR = "testTrainMulti_7030_splits"
_TAGS = {"train": "1", "test": "2"}
_SPLIT_NAME = re.compile(r"^(?P<cls>[a-z_]+)_test_split(?P<split>[123])\.txt$")


def find_layout(root: str | Path) -> Layout:
    """HMDB51's folders under ``root``, or a :class:`DataError` saying what is missing."""
    root = Path(root).expanduser()
    videos, splits = root / VIDEO_DIR, root / SPLIT_DIR
    if not videos.is_dir() or not splits.is_dir():
        raise DataError(
            f"{root} is not an HMDB51 folder: expected {VIDEO_DIR}/ and {SPLIT_DIR}/ inside it "
            f"(run hartutor.hmdb51.prepare({str(root)!r}))"
        )
    return Layout(root, videos, splits)


def read_split(root: str | Path, split: int = 1, subset: Subset = "train") -> list[VideoEntry]:
    """The videos of one split and subset (``train`` or ``test``), labels indexing CLASSES."""
    if split not in (1, 2, 3):
        raise DataError(f"HMDB51 has splits 1, 2 and 3, not {split!r}")
    if subset not in _TAGS:
        raise DataError(f"HMDB51's split files have train and test, not {subset!r}")
    layout = find_layout(root)
    files = sorted(layout.splits.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DataError(f"no {SPLIT_DIR}/*_test_split{split}.txt files in {layout.root}")
    entries = []
    for path in files:
        match = _SPLIT_NAME.match(path.name)
        if match is None or match["cls"] not in CLASSES:
            raise DataError(f"{path}: not an HMDB51 split file (unknown class name)")
        cls = match["cls"]
        for number, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == _TAGS[subset]:
                entries.append(VideoEntry(f"{cls}/{parts[0]}", CLASSES.index(cls), 0))
    return entries


def check_layout(root: str | Path, *, expect_full: bool = True) -> LayoutReport:
    """Every listed video exists (and, with ``expect_full``, the official counts hold)."""
    layout = find_layout(root)
    videos = [p for p in layout.videos.rglob("*.avi") if p.is_file()]
    problems: list[str] = []
    missing: list[str] = []
    sizes: dict[int, tuple[int, int]] = {}
    for split in (1, 2, 3):
        train, test = read_split(root, split, "train"), read_split(root, split, "test")
        sizes[split] = (len(train), len(test))
        missing += [e.relpath for e in (*train, *test) if not (layout.videos / e.relpath).is_file()]
        both = {e.relpath for e in train} & {e.relpath for e in test}
        if both:
            problems.append(f"split {split}: {len(both)} videos are in train and test")
        if expect_full and sizes[split] != SPLIT_SIZES[split]:
            problems.append(f"split {split}: {sizes[split]} videos, expected {SPLIT_SIZES[split]}")
    if missing:
        examples = sorted(set(missing))[:3]
        problems.append(f"{len(missing)} listed videos are missing, e.g. {examples}")
    classes = {p.name for p in layout.videos.iterdir() if p.is_dir()}
    if expect_full and len(videos) != NUM_VIDEOS:
        problems.append(f"{len(videos)} videos, expected {NUM_VIDEOS}")
    return LayoutReport(len(classes), len(videos), sizes, sorted(set(missing)), problems)


class HMDB51(UCF101):
    """Clips of HMDB51 as ``{"video", "label", ...}`` dicts; every option as :class:`UCF101`."""

    @staticmethod
    def _index(
        root: str | Path, split: int, subset: Subset
    ) -> tuple[Layout, list[str], list[VideoEntry]]:
        return find_layout(root), list(CLASSES), read_split(root, split, subset)


# --- obtaining the dataset ------------------------------------------------------------------


def download(root: str | Path, *, progress: bool = True) -> dict[str, Path]:
    """Download both official archives into ``root/archives`` (resumable; about 2 GB)."""
    from hartutor.weights.download import download_url

    folder = Path(root) / "archives"
    return {
        key: download_url(URLS[key], folder / name, progress=progress, max_bytes=4 * 1024**3)
        for key, name in ARCHIVES.items()
    }


def extract(root: str | Path) -> Layout:
    """Unpack ``root/archives``: the split lists, then each class's RAR inside the video RAR."""
    from hartutor.ucf101 import extract_rar

    root = Path(root)
    archives = {key: root / "archives" / name for key, name in ARCHIVES.items()}
    for key, path in archives.items():
        if not path.is_file():
            raise DataError(f"{path} is missing: download it from {URLS[key]} and place it there")
    if not (root / SPLIT_DIR).is_dir():
        extract_rar(archives["splits"], root)
    if not (root / VIDEO_DIR).is_dir():
        inner = root / "archives" / "per_class"
        inner.mkdir(exist_ok=True)
        extract_rar(archives["videos"], inner)
        staging = root / f".{VIDEO_DIR}.unpacking"
        staging.mkdir(exist_ok=True)
        for class_archive in sorted(inner.rglob("*.rar")):
            extract_rar(class_archive, staging)
        staging.rename(root / VIDEO_DIR)  # appears only once every class is unpacked
    return find_layout(root)


def prepare(
    root: str | Path, *, download_archives: bool = True, progress: bool = True
) -> LayoutReport:
    """Download (unless the archives are there), unpack and check HMDB51 in ``root``."""
    from hartutor.ucf101 import prepare_from_archives

    return prepare_from_archives(
        root,
        archives=ARCHIVES,
        folders=(VIDEO_DIR, SPLIT_DIR),
        download=download,
        extract=extract,
        check=check_layout,
        download_archives=download_archives,
        progress=progress,
    )
