"""Helpers the tutorial notebooks share: the fast/full mode switch and finding sample clips."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hartutor.errors import DataError, HartutorError, WeightsError

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


# --------------------------------------------------------------------------- notebook times

#: The course's promises for each notebook in fast mode on one core (a Binder session):
#: mybinder.org guarantees 1G of memory, which JupyterHub reads as 2**30 bytes.
NOTEBOOK_LIMIT_S = 300.0
NOTEBOOK_LIMIT_MIB = 1024.0
COURSE_LIMIT_S = 1800.0
#: Where ``benchmarks/bench_notebooks.py`` records what it measured (shipped with hartutor).
NOTEBOOK_TIMES = Path(__file__).resolve().parent / "assets" / "benchmarks" / "notebooks.json"
#: Environment variable naming another record for :func:`notebook_times` to read (tests).
NOTEBOOK_TIMES_VARIABLE = "HARTUTOR_NOTEBOOK_TIMES"
NOTEBOOK_TIMES_FORMAT = "hartutor notebook times 1"
PRETRAINED_STATES = ("real", "stand-ins", "absent")
_MAX_TIMES_BYTES = 1_000_000  # a record is a few kB; anything larger is not one
_RERUN = "rerun 'python benchmarks/bench_notebooks.py' to measure it again"


@dataclass(frozen=True)
class NotebookTime:
    """One notebook run in fast mode on one core, as ``benchmarks/bench_notebooks.py`` measured it.

    ``kernel_peak_mib`` is the kernel process's peak resident memory (``ru_maxrss``, MiB);
    ``others_cores`` how many cores other processes kept busy meanwhile (None: unknown), so a
    reader can tell a slow row from a busy machine; ``pretrained`` whether the pretrained
    weights were in the cache (``real``, ``stand-ins`` of the same size, or ``absent``), as
    notebooks 05, 07 and 08 run more when they are.
    """

    notebook: str
    wall_s: float
    kernel_peak_mib: float
    measured: str  # "2026-12-07 11:43 UTC"
    machine: str  # CPU model and cores
    torch_threads: int
    others_cores: float | None
    pretrained: str
    commit: str

    @property
    def minutes(self) -> int:
        """Whole minutes, rounded up: what a student should plan for."""
        return max(1, math.ceil(self.wall_s / 60))

    @property
    def within_limits(self) -> bool:
        """The notebook's own promise: under 5 minutes and 1 GiB."""
        return self.wall_s <= NOTEBOOK_LIMIT_S and self.kernel_peak_mib <= NOTEBOOK_LIMIT_MIB


def _field_error(path: Path, position: int, row: object, problem: str) -> DataError:
    name = row.get("notebook") if isinstance(row, dict) else None
    which = f"row {position}" + (f" ({name})" if isinstance(name, str) else "")
    return DataError(f"notebook times {str(path)!r}, {which}: {problem}; {_RERUN}")


def _notebook_time(path: Path, position: int, row: object) -> NotebookTime:
    """One row of the record, every field's type and range checked."""
    if not isinstance(row, dict):
        raise _field_error(path, position, row, "not a JSON object")
    known = list(NotebookTime.__dataclass_fields__)
    unknown, missing = sorted(set(row) - set(known)), [k for k in known if k not in row]
    if unknown or missing:
        raise _field_error(path, position, row, f"unknown fields {unknown}, missing {missing}")

    def number(key: str, *, low: float, none: bool = False) -> None:
        value = row[key]
        if none and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _field_error(path, position, row, f"{key} is {value!r}, not a number")
        if not (math.isfinite(value) and value >= low):
            raise _field_error(path, position, row, f"{key} is {value!r}, not a number >= {low}")

    for key in ("notebook", "measured", "machine", "pretrained", "commit"):
        if not isinstance(row[key], str) or not row[key]:
            raise _field_error(path, position, row, f"{key} is {row[key]!r}, not a text")
    if not row["notebook"].endswith(".ipynb") or "/" in row["notebook"]:
        raise _field_error(path, position, row, f"notebook {row['notebook']!r} is not a file name")
    number("wall_s", low=0.0)
    number("kernel_peak_mib", low=0.0)
    number("others_cores", low=0.0, none=True)
    if isinstance(row["torch_threads"], bool) or not isinstance(row["torch_threads"], int):
        raise _field_error(path, position, row, f"torch_threads is {row['torch_threads']!r}")
    number("torch_threads", low=1)
    if row["pretrained"] not in PRETRAINED_STATES:
        raise _field_error(
            path,
            position,
            row,
            f"pretrained is {row['pretrained']!r}, not one of {PRETRAINED_STATES}",
        )
    return NotebookTime(**row)


def notebook_times(path: str | Path | None = None) -> list[NotebookTime]:
    """The measured time and peak memory of each notebook, by notebook name.

    Read from ``path``, else ``HARTUTOR_NOTEBOOK_TIMES``, else :data:`NOTEBOOK_TIMES` (which
    ``benchmarks/bench_notebooks.py`` writes); every field is checked, and a malformed file
    raises :class:`~hartutor.errors.DataError` in one line naming it.
    """
    if path is None:
        path = os.environ.get(NOTEBOOK_TIMES_VARIABLE) or NOTEBOOK_TIMES
    from hartutor._fileio import read_small_json

    file = Path(path)
    try:
        payload = read_small_json(file, what="notebook times", max_bytes=_MAX_TIMES_BYTES)
    except DataError as err:
        raise DataError(f"{err}; {_RERUN}") from None
    if not isinstance(payload, dict) or payload.get("format") != NOTEBOOK_TIMES_FORMAT:
        raise DataError(
            f"notebook times {str(file)!r} is not a {NOTEBOOK_TIMES_FORMAT!r} record; {_RERUN}"
        )
    rows = payload.get("notebooks")
    if not isinstance(rows, list) or set(payload) != {"format", "notebooks"}:
        raise DataError(
            f"notebook times {str(file)!r} must hold exactly 'format' and a list 'notebooks'; "
            + _RERUN
        )
    times = [_notebook_time(file, i, row) for i, row in enumerate(rows)]
    names = [t.notebook for t in times]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise DataError(f"notebook times {str(file)!r} lists {doubled} twice; {_RERUN}")
    return sorted(times, key=lambda t: t.notebook)


def write_notebook_times(times: Sequence[NotebookTime], path: str | Path | None = None) -> Path:
    """Write ``times`` as the whole record, sorted by notebook, atomically."""
    from hartutor._fileio import atomic_write_text

    names = [t.notebook for t in times]
    if len(set(names)) != len(names):
        raise ValueError(f"notebooks measured twice: {sorted(names)}")
    payload = {
        "format": NOTEBOOK_TIMES_FORMAT,
        "notebooks": [asdict(t) for t in sorted(times, key=lambda t: t.notebook)],
    }
    file = Path(path) if path is not None else NOTEBOOK_TIMES
    return atomic_write_text(file, json.dumps(payload, indent=1) + "\n")


def update_notebook_times(
    measured: Sequence[NotebookTime], path: str | Path | None = None
) -> list[NotebookTime]:
    """Replace the rows of the notebooks in ``measured`` and keep every other row as it was
    (with its own date), so measuring two notebooks never drops the rest; the whole record."""
    file = Path(path) if path is not None else NOTEBOOK_TIMES
    kept = {t.notebook: t for t in notebook_times(file)} if file.exists() else {}
    kept.update({t.notebook: t for t in measured})
    write_notebook_times(list(kept.values()), file)
    return sorted(kept.values(), key=lambda t: t.notebook)


def course_total_s(times: Sequence[NotebookTime]) -> float:
    """Seconds of notebook execution for these notebooks (kernel start-up excluded)."""
    return sum(t.wall_s for t in times)


def notebook_times_table(times: Sequence[NotebookTime], *, links: bool = False) -> str:
    """Markdown: each notebook's time and peak, whether it keeps the course's promise, and
    when, under what load and with which pretrained weights it was measured."""
    from hartutor._markdown import markdown_table

    def name(t: NotebookTime) -> str:
        return (
            f"[{t.notebook.removesuffix('.ipynb')}]({t.notebook})" if links else f"`{t.notebook}`"
        )

    several = len({t.machine for t in times}) > 1
    header = [
        "notebook",
        "time (min, rounded up)",
        "wall time (s)",
        "kernel peak (MiB)",
        f"within {NOTEBOOK_LIMIT_S / 60:.0f} min and {NOTEBOOK_LIMIT_MIB / 1024:.0f} GiB",
        "measured",
        "others' load (cores)",
        "pretrained weights",
    ] + (["machine"] if several else [])
    body = [
        [
            name(t),
            str(t.minutes),
            f"{t.wall_s:.1f}",
            f"{t.kernel_peak_mib:.0f}",
            "yes" if t.within_limits else "**NO**",
            t.measured,
            "unknown" if t.others_cores is None else f"{t.others_cores:.2f}",
            t.pretrained,
        ]
        + ([t.machine] if several else [])
        for t in times
    ]
    return markdown_table(header, body)


def notebook_times_summary(times: Sequence[NotebookTime]) -> str:
    """One paragraph under the table: where it was measured, and the course's total."""
    total = course_total_s(times)
    machines = sorted({t.machine for t in times})
    threads = sorted({t.torch_threads for t in times})
    where = machines[0] if len(machines) == 1 else f"{len(machines)} machines (see the table)"
    return (
        f"Measured on {where}, {' or '.join(map(str, threads))} torch thread(s) pinned to one "
        f"core, commits {', '.join(sorted({t.commit for t in times}))}. The {len(times)} "
        f"notebooks take {total:.0f} s ({math.ceil(total / 60)} min) together; the course "
        f"promises under {COURSE_LIMIT_S / 60:.0f} minutes, and under "
        f"{NOTEBOOK_LIMIT_S / 60:.0f} minutes and {NOTEBOOK_LIMIT_MIB / 1024:.0f} GiB for each "
        "notebook."
    )
