"""Helpers the tutorial notebooks share: the fast/full mode switch and finding sample clips."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hartutor.errors import WeightsError

if TYPE_CHECKING:
    from torch import nn

Mode = Literal["fast", "full"]

#: Environment variable that selects the notebooks' mode; the test suite sets it to "fast".
MODE_VARIABLE = "HARTUTOR_MODE"
#: Environment variable naming a folder of sample clips, labels and checkpoints.
FIXTURES_VARIABLE = "HARTUTOR_FIXTURES"


def course_mode(default: Mode = "fast") -> Mode:
    """The notebooks' mode: ``fast`` (CPU, synthetic data, tiny models) or ``full``.

    Read from ``HARTUTOR_MODE`` so that a whole class, or CI, can switch every notebook at once.
    """
    value = os.environ.get(MODE_VARIABLE, default).strip().lower()
    if value not in ("fast", "full"):
        raise ValueError(f"{MODE_VARIABLE}={value!r}: expected 'fast' or 'full'")
    return value  # type: ignore[return-value]


def fixtures_dir(start: Path | None = None) -> Path | None:
    """The folder of real sample clips (``shared/fixtures``), or None when it is absent.

    Looks at ``HARTUTOR_FIXTURES`` first, then for ``shared/fixtures`` beside each parent of
    ``start`` (default: the current directory), as laid out when this repository is cloned
    next to the course's ``shared`` folder.
    """
    if os.environ.get(FIXTURES_VARIABLE):
        path = Path(os.environ[FIXTURES_VARIABLE]).expanduser()
        return path if path.is_dir() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return None


def sample_clip(name: str, start: Path | None = None) -> Path | None:
    """Path of a sample clip such as ``v_BaseballPitch_g01_c01.avi``, or None if unavailable."""
    root = fixtures_dir(start)
    if root is None:
        return None
    path = root / "videos" / name
    return path if path.is_file() else None


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped in ``hartutor/assets/checkpoints`` (e.g. ``i3d_tiny.pt``)."""
    path = Path(str(resources.files("hartutor") / "assets" / "checkpoints" / name))
    if not path.is_file():
        raise WeightsError(
            f"shipped checkpoint {path} is missing: reinstall hartutor, or rebuild it with "
            "scripts/train_tiny_checkpoints.sh"
        )
    return path


def load_shipped(model: str) -> tuple[nn.Module, dict[str, Any]]:
    """The trained tiny preset of ``model`` shipped with hartutor: ``(model, metadata)``.

    ``load_shipped("i3d")`` loads ``i3d_tiny.pt``; the metadata holds ``class_names``.
    """
    from hartutor.train import load_checkpoint

    return load_checkpoint(shipped_checkpoint(f"{model}_tiny.pt"))


def require_full_mode(
    *, weights: tuple[str, ...] = (), ucf101: str | os.PathLike[str] | None = None
) -> None:
    """In full mode, fail early, listing every missing weights file or dataset and the fix.

    Notebooks call this in their parameters cell so that ``HARTUTOR_MODE=full`` without the
    downloads stops at the top with one clear message, not halfway through.
    """
    from hartutor.errors import DataError
    from hartutor.weights import weights_files

    problems = []
    for name in weights:
        try:
            weights_files(name, download=False, progress=False)
        except WeightsError:
            problems.append(f"weights {name!r}: run 'hartutor weights download {name}'")
    if ucf101 is not None:
        root = Path(ucf101).expanduser()
        if not (root / "UCF-101").is_dir() or not (root / "ucfTrainTestlist").is_dir():
            problems.append(
                f"UCF101 not found in {root}: run 'hartutor ucf101 prepare {root}' "
                "(see datasets/ucf101/README.md), or set HARTUTOR_DATA"
            )
    if problems:
        raise DataError(
            "full mode needs what is not here:\n- "
            + "\n- ".join(problems)
            + "\nOr run the notebook in fast mode (HARTUTOR_MODE=fast)."
        )


def ucf101_root() -> Path:
    """Where full mode looks for UCF101: ``$HARTUTOR_DATA/ucf101``."""
    from hartutor.config import data_dir

    return data_dir() / "ucf101"
