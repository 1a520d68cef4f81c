"""Class-name lists of the label sets hartutor's models predict, and label-file loading.

- :func:`kinetics400`: DeepMind's ``label_map.txt`` order (the order of I3D's logits).
  torchvision ships the same 400 names in the same order, so no download is needed.
- :func:`kinetics600`: DeepMind's ``label_map_600.txt``, downloaded once into the weights
  cache (SHA-256 checked); offline, the error says where to put the file by hand.
- :func:`imagenet`: the 1000 ImageNet-1k classes (timm's ``ImageNetInfo``).
- :func:`ucf101`: the 101 UCF101 classes in ``classInd.txt`` order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from hartutor.errors import DataError
from hartutor.labels.ucf101 import (
    UCF101_CLASSES,
    UCF101_TO_KINETICS400,
    UCF101_TO_KINETICS600,
    KineticsTransferScore,
    kinetics_mapping,
    ucf101_topk_from_kinetics,
)
from hartutor.weights.download import RemoteFile, fetch

__all__ = [
    "LABEL_FILES",
    "LABEL_SETS",
    "UCF101_CLASSES",
    "UCF101_TO_KINETICS400",
    "UCF101_TO_KINETICS600",
    "KineticsTransferScore",
    "imagenet",
    "kinetics400",
    "kinetics600",
    "kinetics_mapping",
    "load_label_file",
    "load_label_set",
    "ucf101",
    "ucf101_topk_from_kinetics",
]

LABEL_SETS = ("kinetics400", "kinetics600", "imagenet", "ucf101")
MAX_LABEL_FILE_BYTES = 4 * 1024 * 1024
_INDEXED_LINE = re.compile(r"^\s*(\d+)\s+(\S.*?)\s*$")

#: DeepMind's label files, fetched through the weights cache (same SHA-256 check and offline
#: message as weights). Kinetics-400's is kept for checking :func:`kinetics400` against it.
LABEL_FILES: dict[str, RemoteFile] = {
    "kinetics400_label_map": RemoteFile(
        "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/label_map.txt",
        "label_map.txt",
        sha256="e9f2806fe9109b851a80a74841244f6f8c9d10917fa0229cd82bab67f2f8e28f",
        size=5956,
        subdir="kinetics-i3d",
    ),
    "kinetics600_label_map": RemoteFile(
        "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/label_map_600.txt",
        "label_map_600.txt",
        sha256="8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf",
        size=9209,
        subdir="kinetics-i3d",
    ),
}


def load_label_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a text file, in order.

    Two layouts are understood: one name per line (DeepMind's ``label_map.txt``), or
    ``INDEX NAME`` per line (UCF101's ``classInd.txt``, 1-based or 0-based), ordered by
    index. Blank lines are ignored; duplicates or index gaps raise :class:`DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_LABEL_FILE_BYTES:
        raise DataError(f"label file {str(path)!r} is larger than {MAX_LABEL_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"label file {str(path)!r} is not UTF-8 text: {err}") from err
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"label file {str(path)!r} is empty")
    matches = [_INDEXED_LINE.match(line) for line in lines]
    if all(matches):
        indexed = sorted((int(m.group(1)), m.group(2)) for m in matches)  # type: ignore[union-attr]
        start = indexed[0][0]
        if [i for i, _ in indexed] != list(range(start, start + len(indexed))) or start > 1:
            raise DataError(
                f"label file {str(path)!r}: indices must run 0..N-1 or 1..N without gaps"
            )
        names = [name for _, name in indexed]
    else:
        names = lines
    seen: set[str] = set()
    duplicates = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if duplicates:
        raise DataError(f"label file {str(path)!r} repeats class names: {duplicates[:5]}")
    return names


def kinetics400() -> list[str]:
    """The 400 Kinetics-400 class names in DeepMind's ``label_map.txt`` (logit) order.

    torchvision's Kinetics-400 weights carry the same names in the same order (their public
    ``meta["categories"]``, checked against the real file in the tests), so they are used
    directly: no download.
    """
    from torchvision.models.video import R3D_18_Weights

    return list(R3D_18_Weights.KINETICS400_V1.meta["categories"])


def kinetics600(*, download: bool = True, progress: bool = False) -> list[str]:
    """The 600 Kinetics-600 class names (DeepMind's ``label_map_600.txt``).

    Fetched once into ``hartutor.config.weights_dir()`` and verified by SHA-256; a copy
    put there by hand is used with no network. Raises :class:`~hartutor.errors.WeightsError`
    saying where the file goes when it is absent and cannot be downloaded.
    """
    return load_label_file(
        fetch(LABEL_FILES["kinetics600_label_map"], download=download, progress=progress)
    )


def imagenet(*, kind: Literal["description", "synset"] = "description") -> list[str]:
    """The 1000 ImageNet-1k classes in logit order: descriptions or WordNet synset ids."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    if kind == "synset":
        return [info.index_to_label_name(i) for i in range(info.num_classes())]
    if kind == "description":
        return [info.index_to_description(i) for i in range(info.num_classes())]
    raise ValueError(f"kind must be 'description' or 'synset', got {kind!r}")


def ucf101() -> list[str]:
    """The 101 UCF101 class names, ``classInd.txt`` order, CamelCase as in the dataset."""
    return list(UCF101_CLASSES)


#: Label sets whose class names come from a downloaded file (the others ship with torchvision,
#: timm or hartutor): ``hartutor weights download`` fetches it with the weights that need it.
DOWNLOADED_LABEL_SETS: dict[str, str] = {"kinetics600": "kinetics600_label_map"}


def fetch_label_set_files(
    name: str, *, download: bool = True, progress: bool = False
) -> list[Path]:
    """The local files of label set ``name``, fetched (or, with ``download=False``, found in
    the cache) when its names come from a download; empty when nothing is downloaded. Raises
    :class:`~hartutor.errors.WeightsError` saying where a missing file goes."""
    key = DOWNLOADED_LABEL_SETS.get(name)
    if key is None:
        return []
    return [fetch(LABEL_FILES[key], download=download, progress=progress)]


def load_label_set(name: str) -> list[str]:
    """Class names of a label set by name: one of :data:`LABEL_SETS`."""
    loaders = {
        "kinetics400": kinetics400,
        "kinetics600": kinetics600,
        "imagenet": imagenet,
        "ucf101": ucf101,
    }
    if name not in loaders:
        raise KeyError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}")
    return loaders[name]()
