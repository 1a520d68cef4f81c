"""The course's sample files: real clips, label lists and a checkpoint index, fetchable anywhere.

The real-video sections of the notebooks read a few public files (UCF101 and Kinetics clips,
DeepMind's I3D sample inputs and label maps). Each is listed here with its public source URL,
size and SHA-256, and fetched into hartutor's cache (``<cache>/samples``, laid out like the
course's ``shared/fixtures`` folder) by the same download code the weights use: atomic,
resumable, verified, with a clear error offline. ``hartutor samples fetch`` does it from the
command line (Binder's ``postBuild`` runs it); ``--from DIR`` copies verified files from a local
folder instead, which is how the tests fill the cache without a network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hartutor.config import cache_dir
from hartutor.errors import DataError, WeightsError
from hartutor.weights.download import RemoteFile, fetch, verify_file

__all__ = ["SAMPLES", "Sample", "fetch_samples", "sample_file", "samples_dir", "samples_markdown"]

#: Environment variable naming the samples cache (default ``<hartutor cache>/samples``).
SAMPLES_VARIABLE = "HARTUTOR_SAMPLES"

_C3D = "https://raw.githubusercontent.com/facebookarchive/C3D/master/C3D-v1.0/examples/c3d_feature_extraction/input/avi/"
_I3D = "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/"
_MMACTION = "https://raw.githubusercontent.com/open-mmlab/mmaction2/main/demo/"


@dataclass(frozen=True)
class Sample:
    """One sample file: its place in the samples folder and where it comes from."""

    name: str  # path in the samples folder, e.g. "videos/v_BaseballPitch_g01_c01.avi"
    url: str
    size: int
    sha256: str
    licence: str
    what: str

    @property
    def remote(self) -> RemoteFile:
        folder, _, filename = self.name.rpartition("/")
        return RemoteFile(self.url, filename, sha256=self.sha256, size=self.size, subdir=folder)


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "videos/v_ApplyEyeMakeup_g01_c01.avi",
            _C3D + "v_ApplyEyeMakeup_g01_c01.avi",
            294566,
            "cc3ebb11e80d2900071ff929633b7476a33ee1698ac9a91206e2ba64c1c28920",
            "CC BY-NC 3.0",
            "UCF101 clip, ApplyEyeMakeup (Xvid AVI 320x240, 25 fps)",
        ),
        Sample(
            "videos/v_BaseballPitch_g01_c01.avi",
            _C3D + "v_BaseballPitch_g01_c01.avi",
            318098,
            "276195be9df1b8c34e06e07631d4bce2cfe9a3e4a47f7944678d65649d181a41",
            "CC BY-NC 3.0",
            "UCF101 clip, BaseballPitch (Xvid AVI 320x240, 29.97 fps)",
        ),
        Sample(
            "videos/v_CricketShot_g04_c01_rgb.gif",
            _I3D + "v_CricketShot_g04_c01_rgb.gif",
            2450717,
            "26502e0daa557579befad05035d4f37c8ee59a7f963e9e06be32477303a23f89",
            "Apache-2.0",
            "DeepMind's I3D sample input, UCF101 CricketShot, 79 RGB frames 224x224",
        ),
        Sample(
            "videos/v_CricketShot_g04_c01_flow.gif",
            _I3D + "v_CricketShot_g04_c01_flow.gif",
            433975,
            "26ed79904ed0b937aaa321150b19ab08507a4ab47be0305a0a40e613384f2381",
            "Apache-2.0",
            "the same clip's TV-L1 flow, (flow + 1) / 2 in red and green",
        ),
        Sample(
            "videos/kinetics_arm_wrestling.mp4",
            _MMACTION + "demo.mp4",
            635539,
            "071e60535eaf0aed475ddac06269ee0cdfc4740158f22d9ccd2c3b93b42aa344",
            "Apache-2.0",
            "Kinetics-400 clip, arm wrestling (H.264 MP4 426x256, 28 fps)",
        ),
        Sample(
            "labels/kinetics400.txt",
            _I3D + "label_map.txt",
            5956,
            "e9f2806fe9109b851a80a74841244f6f8c9d10917fa0229cd82bab67f2f8e28f",
            "Apache-2.0",
            "Kinetics-400 class names in the order of DeepMind's I3D logits",
        ),
        Sample(
            "labels/kinetics600.txt",
            _I3D + "label_map_600.txt",
            9209,
            "8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf",
            "Apache-2.0",
            "Kinetics-600 class names, likewise",
        ),
        Sample(
            "checkpoints/rgb_imagenet.index",
            _I3D + "checkpoints/rgb_imagenet/model.ckpt.index",
            10953,
            "f4bfd6f4af485f276c68333d3eca3697b691bb647f0167a03fe021147ca7f8eb",
            "Apache-2.0",
            "index of DeepMind's I3D RGB Kinetics-400 TensorFlow checkpoint (no data shard)",
        ),
    )
}


def samples_dir() -> Path:
    """Where fetched samples live: ``$HARTUTOR_SAMPLES``, else ``<hartutor cache>/samples``."""
    if os.environ.get(SAMPLES_VARIABLE):
        return Path(os.environ[SAMPLES_VARIABLE]).expanduser()
    return cache_dir() / "samples"


def _chosen(names: Iterable[str] | None) -> list[Sample]:
    if names is None:
        return list(SAMPLES.values())
    chosen = []
    for name in names:
        matches = [s for s in SAMPLES.values() if name in (s.name, Path(s.name).name)]
        if not matches:
            raise DataError(f"no sample {name!r}: run 'hartutor samples list' for the names")
        chosen.extend(matches)
    return chosen


def sample_file(name: str, *, download: bool = False, progress: bool = False) -> Path:
    """The verified path of sample ``name`` (its path or file name) in the samples folder.

    ``download=False`` (default) never touches the network: a missing file raises
    :class:`~hartutor.errors.WeightsError` saying how to fetch it.
    """
    [sample] = _chosen([name])
    return fetch(sample.remote, root=samples_dir(), download=download, progress=progress)


def fetch_samples(
    names: Iterable[str] | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Put the samples (default: all) in the samples folder, verified; return their paths.

    ``source``: a local folder laid out like ``shared/fixtures`` (``videos/``, ``labels/``...);
    a file found there is checked against its size and SHA-256 and copied, atomically, without
    any network access. The others are downloaded from their URLs unless ``download=False``.
    """
    root = samples_dir()
    paths = []
    for sample in _chosen(names):
        dest = sample.remote.cache_path(root)
        local = Path(source) / sample.name if source is not None else None
        if not dest.exists() and local is not None and local.is_file():
            verify_file(local, sha256=sample.sha256, size=sample.size, source=str(local))
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(local, part)
            os.replace(part, dest)
        try:
            paths.append(fetch(sample.remote, root=root, download=download, progress=progress))
        except WeightsError as err:
            raise WeightsError(f"sample {sample.name}: {err}") from err
    return paths


def samples_markdown() -> str:
    """A Markdown table of the samples: name, size, licence, whether fetched, source URL."""
    from hartutor._markdown import markdown_table

    root = samples_dir()
    rows = [
        (
            f"`{s.name}`",
            f"{s.size:,}",
            s.licence,
            "yes" if s.remote.cache_path(root).is_file() else "no",
            s.url,
        )
        for s in SAMPLES.values()
    ]
    return markdown_table(("sample", "bytes", "licence", "fetched", "source"), rows)
