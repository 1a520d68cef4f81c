"""Helpers the tutorial notebooks share: the fast/full mode switch and finding sample clips."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hartutor.errors import HartutorError, WeightsError

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
    next to the course's ``shared`` folder, then in the samples folder that
    ``hartutor samples fetch`` fills (:mod:`hartutor.samples`, the same layout).
    """
    if os.environ.get(FIXTURES_VARIABLE):
        path = Path(os.environ[FIXTURES_VARIABLE]).expanduser()
        return path if path.is_dir() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    from hartutor.samples import samples_dir

    fetched = samples_dir()  # 'hartutor samples fetch' (Binder's postBuild) puts them there
    return fetched if (fetched / "videos").is_dir() else None


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
    from hartutor.labels import fetch_label_set_files
    from hartutor.weights import get_weights

    for name in weights:
        try:
            weights_files(name, download=False, progress=False)
            fetch_label_set_files(get_weights(name).label_set, download=False)
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


# --- Full mode's scale -------------------------------------------------------------------------

Scale = Literal["paper", "smoke"]
#: Environment variable that selects full mode's scale: "paper" (default) or "smoke".
SCALE_VARIABLE = "HARTUTOR_SCALE"


@dataclass(frozen=True)
class FullRun:
    """How big a notebook's full-mode run is: the paper's scale, or a smoke run of the same code.

    ``paper`` is what the notebooks always did (paper-size models, 3 epochs, every clip, 8 data
    workers, on a GPU). ``smoke`` (``HARTUTOR_SCALE=smoke``) keeps every step of that path and
    shrinks what only costs time: a few clips per split, one epoch, batches of 2, no worker
    processes, and the tiny preset where a model is trained from scratch. Pretrained weights
    keep their real (paper-size) models, since loading them is part of the path rehearsed. The
    test suite runs every notebook in full mode at this scale against hartutor's stand-ins.
    """

    scale: Scale
    preset: Literal["paper", "tiny"]
    epochs: int
    batch_size: int
    num_workers: int
    max_clips: int | None  # clips kept per split (None: all)

    def config(self, **overrides: Any) -> Any:
        """A :class:`~hartutor.train.TrainConfig` at this scale; ``overrides`` (``lr=1e-4``)
        set the rest. At paper scale the overrides win; at smoke scale epochs, batch size
        and workers stay small whatever the notebook asks."""
        from hartutor.train import TrainConfig

        values = {"epochs": self.epochs, "batch_size": self.batch_size, "progress": False}
        values["num_workers"] = self.num_workers
        if self.scale == "paper":
            values.update(overrides)
        else:
            values.update({k: v for k, v in overrides.items() if k not in values})
        return TrainConfig(**values)

    def clips(self, dataset: Any) -> Any:
        """``dataset`` itself, or at smoke scale its first :attr:`max_clips` items, spread
        over the dataset so that several classes appear."""
        if self.max_clips is None or len(dataset) <= self.max_clips:
            return dataset
        from torch.utils.data import Subset

        step = len(dataset) / self.max_clips
        return Subset(dataset, [int(i * step) for i in range(self.max_clips)])


FULL_RUNS: dict[str, FullRun] = {
    "paper": FullRun("paper", "paper", epochs=3, batch_size=16, num_workers=8, max_clips=None),
    "smoke": FullRun("smoke", "tiny", epochs=1, batch_size=2, num_workers=0, max_clips=6),
}


def full_run(default: Scale = "paper") -> FullRun:
    """Full mode's scale, from ``HARTUTOR_SCALE`` (``paper`` unless set): see :class:`FullRun`."""
    value = os.environ.get(SCALE_VARIABLE, default).strip().lower()
    if value not in FULL_RUNS:
        raise HartutorError(f"{SCALE_VARIABLE}={value!r}: expected 'paper' or 'smoke'")
    return FULL_RUNS[value]


# --- Exercises ---------------------------------------------------------------------------------

#: A checker takes the student's answer (and named context such as a model) and returns None when
#: the answer is right, or one or two sentences saying what is wrong and where to look.
Checker = Callable[..., "str | None"]


@dataclass(frozen=True)
class Exercise:
    """One registered exercise: its id (``"05-fixed-point"``), checker and a one-line task."""

    id: str
    task: str
    checker: Checker


_EXERCISES: dict[str, Exercise] = {}


def exercise(exercise_id: str, task: str) -> Callable[[Checker], Checker]:
    """Register ``checker`` as the checker of ``exercise_id`` (used by ``hartutor.exercises``)."""

    def register(checker: Checker) -> Checker:
        known = _EXERCISES.get(exercise_id)
        if known is not None and known.checker is not checker:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        _EXERCISES[exercise_id] = Exercise(exercise_id, task, checker)
        return checker

    return register


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by id (the checker modules are imported first)."""
    from hartutor.exercises import load_all

    load_all()
    return dict(_EXERCISES)


def _unanswered(answer: object) -> bool:
    return answer is None or answer is Ellipsis


def check(exercise_id: str, answer: object, *, quiet: bool = False, **context: Any) -> bool:
    """Check a student's ``answer`` to exercise ``exercise_id``, say why if it is wrong.

    Prints one verdict (nothing when ``quiet`` and right) and returns True for a right answer.
    An answer still ``...`` or None counts as not answered yet, never as an error, so that
    "Run all" goes through a notebook whose exercises are still open. ``context`` passes what
    the checker needs from the notebook (a model, a clip) by name.
    """
    known = exercises()
    if exercise_id not in known:
        raise HartutorError(
            f"no exercise {exercise_id!r}: the known ones are {', '.join(sorted(known))}"
        )
    item = known[exercise_id]
    if _unanswered(answer):
        if not quiet:
            print(
                f"Exercise {exercise_id} is not answered yet: {item.task} "
                "Write your answer in the cell above (replace the ...), run it, then run this cell."
            )
        return False
    try:
        problem = item.checker(answer, **context)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as error:
        problem = f"the answer could not be checked ({type(error).__name__}: {error})."
    if problem is None:
        if not quiet:
            print(f"Exercise {exercise_id}: correct.")
        return True
    print(f"Exercise {exercise_id}: not yet. {problem}")
    return False
