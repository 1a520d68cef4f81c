"""UCF101 over its official layout: the three splits, random training clips, multi-clip testing.

Expected layout (what unpacking the two official archives gives)::

    ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi          13,320 videos in 101 folders
    ROOT/ucfTrainTestlist/classInd.txt                  "1 ApplyEyeMakeup" ... "101 YoYo"
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt         "ApplyEyeMakeup/v_..._g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt          "ApplyEyeMakeup/v_..._g01_c01.avi"

The class of a video is the folder its split line names (note ``HandstandPushups/`` holds files
named ``v_HandStandPushups_...``). Groups ``gXX`` 1-7 are the test set of split 1, 8-14 of
split 2, 15-21 of split 3, so clips of one actor never straddle train and test.

:class:`UCF101` is a map-style dataset yielding pytorchvideo-style dicts; for pytorchvideo's own
iterable ``LabeledVideoDataset``, pass :func:`labeled_video_paths` to it with ``decoder="pyav"``.
The synthetic dataset written by ``hartutor synth`` uses the same layout and split-file formats,
so everything here also reads it (``videos/`` instead of ``UCF-101/``, ``splits/`` instead of
``ucfTrainTestlist/``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from hartutor.errors import DataError
from hartutor.metrics import video_level_scores  # noqa: F401  (moved there; old name kept)

#: Official sizes of UCF101, used by :func:`check_layout` (Soomro et al. 2012, the split files).
NUM_VIDEOS = 13_320
NUM_CLASSES = 101
SPLIT_SIZES = {1: (9_537, 3_783), 2: (9_586, 3_734), 3: (9_624, 3_696)}

URLS = {
    "videos": "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar",
    "splits": "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip",
}

_VIDEO_DIRS = ("UCF-101", "videos")
_SPLIT_DIRS = ("ucfTrainTestlist", "splits")
_NAME = re.compile(r"^v_(?P<cls>[A-Za-z]+)_g(?P<group>\d+)_c(?P<clip>\d+)\.\w+$")

Subset = Literal["train", "val", "test"]


@dataclass(frozen=True)
class VideoEntry:
    """One video of a split: its path relative to the video folder, class index and group."""

    relpath: str
    label: int
    group: int


@dataclass(frozen=True)
class Layout:
    """Where a UCF101-style dataset's videos and split files are."""

    root: Path
    videos: Path
    splits: Path

    @classmethod
    def find(cls, root: str | Path) -> Layout:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DataError(f"dataset folder {root} does not exist; see datasets/ucf101/README.md")
        videos = next((root / d for d in _VIDEO_DIRS if (root / d).is_dir()), None)
        splits = next((root / d for d in _SPLIT_DIRS if (root / d).is_dir()), None)
        if videos is None or splits is None:
            raise DataError(
                f"{root} is not a UCF101-style folder: expected {' or '.join(_VIDEO_DIRS)}/ and "
                f"{' or '.join(_SPLIT_DIRS)}/ inside it (see datasets/ucf101/README.md)"
            )
        return cls(root, videos, splits)


def read_class_index(path: str | Path) -> list[str]:
    """Class names from a ``classInd.txt`` ("1 ApplyEyeMakeup" lines), in label order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class index {path} is missing")
    names: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{number}: expected '<index> <ClassName>', got {line!r}")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DataError(f"{path}: class indices must run 1..N without gaps")
    return [names[i] for i in range(1, len(names) + 1)]


def _split_file(layout: Layout, split: int, subset: Subset) -> Path:
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 has splits 1, 2 and 3, not {split!r}")
    return layout.splits / f"{subset}list0{split}.txt"


def read_split(root: str | Path, split: int = 1, subset: Subset = "train") -> list[VideoEntry]:
    """The videos of one split and subset, with 0-based labels from ``classInd.txt``."""
    layout = Layout.find(root)
    classes = read_class_index(layout.splits / "classInd.txt")
    label_of = {name: index for index, name in enumerate(classes)}
    path = _split_file(layout, split, subset)
    if not path.is_file():
        raise DataError(f"split file {path} is missing")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        relpath = parts[0]
        folder, _, filename = relpath.rpartition("/")
        match = _NAME.match(filename)
        if folder not in label_of or match is None:
            raise DataError(f"{path}:{number}: cannot parse {line!r}")
        label = label_of[folder]
        if len(parts) > 1 and int(parts[1]) - 1 != label:
            raise DataError(f"{path}:{number}: label {parts[1]} disagrees with folder {folder}")
        entries.append(VideoEntry(relpath, label, int(match["group"])))
    return entries


def labeled_video_paths(
    root: str | Path, split: int = 1, subset: Subset = "train"
) -> list[tuple[str, dict[str, Any]]]:
    """``(path, {"label": int})`` pairs, the input of pytorchvideo's ``LabeledVideoDataset``."""
    layout = Layout.find(root)
    return [
        (str(layout.videos / e.relpath), {"label": e.label})
        for e in read_split(root, split, subset)
    ]


@dataclass
class LayoutReport:
    """What :func:`check_layout` found."""

    num_classes: int
    num_videos: int
    split_sizes: dict[int, tuple[int, int]]
    missing: list[str]
    problems: list[str]
    standin: bool = False  # unpacked from stand-in archives: counts not checked

    @property
    def ok(self) -> bool:
        return not self.problems


def check_layout(
    root: str | Path, *, expect_full: bool = True, open_videos: bool = True, progress: bool = False
) -> LayoutReport:
    """Verify an unpacked UCF101: its split files, that every listed video exists and opens
    (its first frame decodes; ``open_videos=False`` checks existence and size only) and, with
    ``expect_full``, the official counts. With ``expect_full=False`` (a subset or the synthetic
    set) only consistency is checked, but at least one split must be there.
    """
    from hartutor.errors import VideoDecodeError
    from hartutor.video import check_opens

    layout = Layout.find(root)
    problems: list[str] = []
    try:
        classes = read_class_index(layout.splits / "classInd.txt")
    except DataError as err:
        return LayoutReport(0, 0, {}, [], [str(err)])
    videos = [p for p in layout.videos.rglob("*") if p.is_file() and _NAME.match(p.name)]
    missing: list[str] = []
    broken: list[str] = []
    sizes: dict[int, tuple[int, int]] = {}
    listed: dict[str, None] = {}
    for split in (1, 2, 3):
        files = [_split_file(layout, split, subset) for subset in ("train", "test")]
        present = [f.is_file() for f in files]
        if not any(present):
            if expect_full:
                problems.append(f"split {split}: {files[0].name} and {files[1].name} are missing")
            continue
        if not all(present):
            lost = [f.name for f, ok in zip(files, present, strict=True) if not ok]
            problems.append(f"split {split}: {', '.join(lost)} is missing from {layout.splits}")
            continue
        try:
            train = read_split(root, split, "train")
            test = read_split(root, split, "test")
        except DataError as err:
            problems.append(str(err))
            continue
        sizes[split] = (len(train), len(test))
        listed.update(dict.fromkeys(e.relpath for e in (*train, *test)))
        overlap = {e.group for e in train} & {e.group for e in test}
        if overlap:
            problems.append(f"split {split}: groups {sorted(overlap)} are in train and test")
        if expect_full and sizes[split] != SPLIT_SIZES[split]:
            problems.append(f"split {split}: {sizes[split]} videos, expected {SPLIT_SIZES[split]}")
    if not sizes and not problems:
        problems.append(f"no split files in {layout.splits} (trainlist0N.txt and testlist0N.txt)")
    from tqdm.auto import tqdm

    for relpath in tqdm(listed, desc="opening listed videos", unit="video", disable=not progress):
        path = layout.videos / relpath
        if not path.is_file():
            missing.append(relpath)
            continue
        try:
            if open_videos:
                check_opens(path)
            elif path.stat().st_size == 0:
                raise VideoDecodeError(path, "the file is empty (0 bytes)")
        except VideoDecodeError as err:
            broken.append(f"{relpath} ({err.reason})")
    if missing:
        problems.append(f"{len(missing)} listed videos are missing, e.g. {missing[:3]}")
    if broken:
        problems.append(f"{len(broken)} listed videos do not open, e.g. {broken[:3]}")
    if expect_full:
        if len(classes) != NUM_CLASSES:
            problems.append(f"{len(classes)} classes, expected {NUM_CLASSES}")
        if len(videos) != NUM_VIDEOS:
            problems.append(f"{len(videos)} videos, expected {NUM_VIDEOS}")
    return LayoutReport(len(classes), len(videos), sizes, missing, problems)


def clip_starts(
    num_available: int,
    span: int,
    clips: int,
    *,
    mode: Literal["uniform", "random"],
    generator: torch.Generator | None = None,
) -> list[int]:
    """First-frame indices of ``clips`` windows of ``span`` frames in a video.

    ``uniform``: evenly spread from the first to the last possible start (multi-clip testing);
    ``random``: drawn uniformly (training). Videos shorter than ``span`` start at 0 (the reader
    then pads by looping, see :class:`UCF101`).
    """
    last = max(0, num_available - span)
    if mode == "random":
        return [int(torch.randint(last + 1, (1,), generator=generator)) for _ in range(clips)]
    if clips == 1:
        return [last // 2]
    return [round(k * last / (clips - 1)) for k in range(clips)]


class UCF101(Dataset):
    """Clips of UCF101 (or any dataset in its layout) as ``{"video", "label", ...}`` dicts.

    Training (``clip_sampling="random"``): one window of ``num_frames`` frames, every
    ``frame_stride``-th frame, at a random position per access. Testing
    (``"uniform"``): ``clips_per_video`` windows evenly spread over each video, each an item
    (``"video_index"`` says which video, to average the scores of a video's clips), times
    ``crops_per_clip`` square crops (1: the centre; 3: both ends and the centre of the longer
    side, the three-crop test of I3D's and SlowFast's protocols; ``"crop_index"`` says which).
    ``with_flow`` adds ``flow`` (2, T-1, H, W) in pixels, estimated on the sampled frames
    (``flow_method``: ``"tvl1"`` as the papers, or the faster ``"dis"``/``"farneback"``).
    ``video`` is float32 (C, T, H, W) in [0, 1] after resizing (``size``: short side, or an
    exact (H, W)) and an optional square ``crop_size`` crop (random position for training,
    centre for testing), before ``transform``, which receives and returns the whole dict.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: int = 1,
        subset: Subset = "train",
        num_frames: int = 16,
        frame_stride: int = 1,
        size: int | tuple[int, int] | None = 128,
        crop_size: int | None = None,
        clip_sampling: Literal["random", "uniform"] | None = None,
        clips_per_video: int = 1,
        crops_per_clip: int = 1,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        classes: Sequence[str] | None = None,
        with_flow: bool = False,
        flow_method: str = "tvl1",
    ):
        self.layout, self.class_names, self.entries = self._index(root, split, subset)
        if classes is not None:
            keep = set(classes)
            self.entries = [e for e in self.entries if self.class_names[e.label] in keep]
        if not self.entries:
            raise DataError(f"no videos in split {split} {subset} of {self.layout.root}")
        self.num_frames, self.frame_stride, self.size = num_frames, frame_stride, size
        self.crop_size = crop_size
        self.clip_sampling = clip_sampling or ("random" if subset == "train" else "uniform")
        self.clips_per_video = clips_per_video if self.clip_sampling == "uniform" else 1
        if crops_per_clip not in (1, 3):
            raise DataError(f"crops_per_clip must be 1 or 3, got {crops_per_clip!r}")
        if crops_per_clip == 3 and crop_size is None:
            raise DataError("crops_per_clip=3 needs a crop_size (the side of each square crop)")
        self.crops_per_clip = crops_per_clip if self.clip_sampling == "uniform" else 1
        self.transform = transform
        self.with_flow, self.flow_method = with_flow, flow_method
        self._lengths: dict[int, int] = {}

    @staticmethod
    def _index(
        root: str | Path, split: int, subset: Subset
    ) -> tuple[Layout, list[str], list[VideoEntry]]:
        """The dataset's layout, class names and the entries of one split (its file formats)."""
        layout = Layout.find(root)
        classes = read_class_index(layout.splits / "classInd.txt")
        return layout, classes, read_split(root, split, subset)

    def __len__(self) -> int:
        return len(self.entries) * self.clips_per_video * self.crops_per_clip

    def _length(self, index: int, path: Path) -> int:
        if index not in self._lengths:
            from hartutor.video import probe_video

            self._lengths[index] = probe_video(path).num_frames
        return self._lengths[index]

    def _crop(self, frames: torch.Tensor, path: Path, position: int = 1) -> torch.Tensor:
        """Square crop: random position when training; when testing, the centre (``position``
        1) or either end of the longer side (0 and 2), as the papers' test protocols."""
        side = int(self.crop_size)  # type: ignore[arg-type]
        height, width = frames.shape[1:3]
        if side > min(height, width):
            raise DataError(f"crop_size {side} exceeds the frames of {path} ({height}x{width})")
        if self.clip_sampling == "random":
            top = int(torch.randint(height - side + 1, (1,)))
            left = int(torch.randint(width - side + 1, (1,)))
        else:
            top, left = (height - side) // 2, (width - side) // 2
            if width >= height:
                left = (width - side) * position // 2
            else:
                top = (height - side) * position // 2
        return frames[:, top : top + side, left : left + side]

    def __getitem__(self, item: int) -> dict[str, Any]:
        from hartutor.video import read_video

        video_index, rest = divmod(item, self.clips_per_video * self.crops_per_clip)
        clip_index, crop_index = divmod(rest, self.crops_per_clip)
        entry = self.entries[video_index]
        path = self.layout.videos / entry.relpath
        span = (self.num_frames - 1) * self.frame_stride + 1
        length = self._length(video_index, path)
        starts = clip_starts(length, span, self.clips_per_video, mode=self.clip_sampling)
        start = starts[clip_index]
        indices = [(start + k * self.frame_stride) % length for k in range(self.num_frames)]
        frames = read_video(path, indices=indices, size=self.size).frames
        if self.crop_size is not None:
            frames = self._crop(frames, path, crop_index if self.crops_per_clip == 3 else 1)
        sample: dict[str, Any] = {
            "video": frames.permute(3, 0, 1, 2).float().div_(255),
            "label": entry.label,
            "video_index": video_index,
            "clip_index": clip_index,
            "crop_index": crop_index,
            "video_name": entry.relpath,
        }
        if self.with_flow:
            from hartutor.flow import estimate_flow

            sample["flow"] = torch.from_numpy(estimate_flow(frames.numpy(), self.flow_method))
        return self.transform(sample) if self.transform else sample


def split_summary(root: str | Path) -> Mapping[str, Any]:
    """Counts per split and subset, for notebooks and ``hartutor ucf101 check``."""
    report = check_layout(root, expect_full=False)
    return {
        "classes": report.num_classes,
        "videos": report.num_videos,
        "splits": report.split_sizes,
    }


# --- obtaining the dataset ------------------------------------------------------------------

ARCHIVES = {"videos": "UCF101.rar", "splits": "UCF101TrainTestSplits-RecognitionTask.zip"}
_RAR_TOOLS = (  # (program, arguments before the archive, arguments before the output folder)
    ("bsdtar", ["-x", "-f"], ["-C"]),
    ("7z", ["x", "-y"], ["-o"]),
    ("unrar", ["x", "-o+"], []),
    ("unar", ["-f"], ["-o"]),
)


def download(root: str | Path, *, progress: bool = True) -> dict[str, Path]:
    """Download both official archives into ``root/archives`` (resumable; about 6.5 GB).

    UCF's server publishes no checksums, so none can be verified; the sha256 of what arrived is
    written to ``root/archives/SHA256SUMS`` for you to compare with others'. Offline, the error
    names the URL and the exact path to place the file by hand.
    """
    from hartutor.weights.download import download_url, sha256sum

    folder = Path(root) / "archives"
    paths = {}
    for key, name in ARCHIVES.items():
        paths[key] = download_url(
            URLS[key], folder / name, progress=progress, max_bytes=16 * 1024**3
        )
    sums = "".join(f"{sha256sum(p)}  {p.name}\n" for p in paths.values())
    from hartutor._fileio import atomic_write_text

    atomic_write_text(folder / "SHA256SUMS", sums)
    return paths


#: The official splits archive unpacks to about 1 MB; more is not that archive.
MAX_SPLITS_ARCHIVE_BYTES = 64 * 1024**2


def _safe_extract_zip(archive: Path, target: Path) -> None:
    """Unpack the splits archive: regular files and folders only, inside ``target``, bounded."""
    import stat
    import zipfile

    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            total = 0
            for info in members:
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
                    raise DataError(
                        f"{archive}: member {info.filename!r} is {what}; refused (the official "
                        "splits archive holds text files only: download it again)"
                    )
                resolved = (target / info.filename).resolve()
                if not resolved.is_relative_to(target.resolve()):
                    raise DataError(
                        f"{archive}: member {info.filename!r} would be written outside {target}"
                    )
                total += info.file_size
            if total > MAX_SPLITS_ARCHIVE_BYTES:
                raise DataError(
                    f"{archive} would unpack to {total:,} bytes, not the splits archive "
                    f"(about 1 MB); download it again"
                )
            bundle.extractall(target)
    except zipfile.BadZipFile as err:
        raise DataError(f"{archive} is not a valid zip archive ({err}); download it again") from err
    except OSError as err:
        raise DataError(f"cannot unpack {archive} into {target}: {err}") from err


def extract_rar(archive: Path, target: Path) -> str:
    """Unpack a RAR archive into ``target`` with the first extractor found; return its name."""
    import shutil
    import subprocess

    for program, before, out_flag in _RAR_TOOLS:
        exe = shutil.which(program)
        if exe is None:
            continue
        if program == "7z":
            command = [exe, *before, f"-o{target}", str(archive)]
        elif program == "unrar":
            command = [exe, *before, str(archive), f"{target}/"]
        else:
            command = [exe, *before, str(archive), *out_flag, str(target)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise DataError(f"{program} could not unpack {archive}: {result.stderr.strip()[-500:]}")
        return program
    raise DataError(
        f"no RAR extractor found to unpack {archive}: install one of "
        f"{', '.join(t[0] for t in _RAR_TOOLS)} (Debian/Ubuntu: apt install libarchive-tools; "
        "macOS: brew install libarchive), or unpack it by hand into "
        f"{target} so that {target / 'UCF-101'} holds the class folders"
    )


def extract(root: str | Path) -> Layout:
    """Unpack the archives in ``root/archives`` into ``root`` (UCF-101/ and ucfTrainTestlist/)."""
    root = Path(root)
    archives = {key: root / "archives" / name for key, name in ARCHIVES.items()}
    for key, path in archives.items():
        if not path.is_file():
            raise DataError(
                f"{path} is missing: download it from {URLS[key]} (or run "
                f"'hartutor ucf101 prepare {root}') and place it there"
            )
    if not (root / "ucfTrainTestlist").is_dir():
        _safe_extract_zip(archives["splits"], root)
    if not (root / "UCF-101").is_dir():
        extract_rar(archives["videos"], root)
    return Layout.find(root)


def prepare_from_archives(
    root: str | Path,
    *,
    archives: Mapping[str, str],
    folders: Sequence[str],
    download: Callable[..., Any],
    extract: Callable[[Path], Any],
    check: Callable[..., LayoutReport],
    download_archives: bool = True,
    progress: bool = True,
) -> LayoutReport:
    """The prepare step of a dataset distributed as archives (UCF101, HMDB51).

    Downloads the ``archives`` into ``root/archives`` unless they or the unpacked ``folders``
    are there, unpacks them, and checks the layout. Archives from a stand-in mirror
    (:mod:`hartutor.standins`, ``HARTUTOR_MIRROR``) hold a miniature: its layout is checked for
    consistency, not against the official counts, and the report says so.
    """
    from hartutor.weights.download import is_standin

    root = Path(root)
    missing = [n for n in archives.values() if not (root / "archives" / n).is_file()]
    unpacked = all((root / folder).is_dir() for folder in folders)
    if missing and not unpacked:
        if not download_archives:
            raise DataError(f"{', '.join(missing)} not found in {root / 'archives'}")
        download(root, progress=progress)
    if not unpacked:
        extract(root)
    standin = any(is_standin(root / "archives" / n) for n in archives.values())
    report = check(root, expect_full=not standin)
    return dataclasses.replace(report, standin=standin)


def prepare(
    root: str | Path, *, download_archives: bool = True, progress: bool = True
) -> LayoutReport:
    """Download (unless the archives are already there), unpack and check UCF101 in ``root``."""
    return prepare_from_archives(
        root,
        archives=ARCHIVES,
        folders=("UCF-101", "ucfTrainTestlist"),
        download=download,
        extract=extract,
        check=check_layout,
        download_archives=download_archives,
        progress=progress,
    )
