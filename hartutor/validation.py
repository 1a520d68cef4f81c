"""One set of rules for the values a user gives, shared by the CLI's parser and the library.

Each rule is a small callable: ``EPOCHS(0)`` raises :class:`~hartutor.errors.ArgumentError`
(a ``ValueError``) naming the value and the accepted range, and returns the value otherwise.
:func:`cli_type` turns a rule into an ``argparse`` type, so ``hartutor train --epochs 0`` is a
usage error (exit 2) with the same words that ``TrainConfig(epochs=0)`` raises in a notebook.
"""

from __future__ import annotations

import argparse
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from hartutor.errors import ArgumentError

T = TypeVar("T")

#: Largest classifier a checkpoint or the CLI may ask for (ImageNet-21k has 21,841 classes).
MAX_CLASSES = 25_000
#: Seeds index the synthetic set's clip streams (``hartutor.synth.dataset.MAX_SEED``).
MAX_SEED = 2**29
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_WORKERS = 256
MAX_THREADS = 4096
MAX_CLIPS = 2**31


@dataclass(frozen=True)
class Rule(Generic[T]):
    """A named check of one value: ``rule(value, name)`` returns it or raises ArgumentError."""

    what: str  # the value's name in messages, e.g. "epochs"
    parse: Callable[[str], T]  # text -> value, for the CLI
    check: Callable[[T], str | None]  # None when fine, else what is wrong ("must be >= 1")

    def __call__(self, value: T, name: str | None = None) -> T:
        problem = self.check(value)
        if problem is not None:
            shown = repr(str(value)) if isinstance(value, Path) else repr(value)
            raise ArgumentError(f"{name or self.what} {problem}, got {shown}")
        return value


def _int_check(low: int | None, high: int | None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            return "must be an integer"  # numpy integers are accepted, floats and bools not
        value = operator.index(value)
        if low is not None and value < low:
            return f"must be >= {low}" if high is None else f"must be in [{low}, {high}]"
        if high is not None and value > high:
            return f"must be <= {high}" if low is None else f"must be in [{low}, {high}]"
        return None

    return check


def int_rule(what: str, low: int | None = None, high: int | None = None) -> Rule[int]:
    """An integer in ``[low, high]`` (either bound optional)."""
    return Rule(what, _parse_int, _int_check(low, high))


def float_rule(
    what: str, low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Rule[float]:
    """A finite number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        if not math.isfinite(value):
            return "must be a finite number"
        if low is not None and (value <= low if low_open else value < low):
            return f"must be {'>' if low_open else '>='} {low:g}"
        if high is not None and value > high:
            return f"must be <= {high:g}"
        return None

    return Rule(what, _parse_float, check)


def choice_rule(what: str, choices: Sequence[str]) -> Rule[str]:
    """One of ``choices``."""

    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return Rule(what, str, check)


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ArgumentError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ArgumentError(f"expected a number, got {text!r}") from None


EPOCHS = int_rule("epochs", 1, MAX_EPOCHS)
BATCH_SIZE = int_rule("batch_size", 1, MAX_BATCH_SIZE)
LEARNING_RATE = float_rule("learning rate", 0.0, 10.0, low_open=True)
WEIGHT_DECAY = float_rule("weight_decay", 0.0, 10.0)
WARMUP_EPOCHS = float_rule("warmup_epochs", 0.0, float(MAX_EPOCHS))
SEED = int_rule("seed", 0, MAX_SEED - 1)
NUM_WORKERS = int_rule("num_workers", 0, MAX_WORKERS)
NUM_THREADS = int_rule("thread count", 1, MAX_THREADS)
NUM_CLASSES = int_rule("num_classes", 1, MAX_CLASSES)
NUM_CLIPS = int_rule("number of clips", 1, MAX_CLIPS)
#: Synthetic frames: ``hartutor.synth.render`` draws 8 to 1024 pixels and 1 to 1024 frames.
FRAME_SIZE = int_rule("frame size", 8, 1024)
NUM_FRAMES = int_rule("number of frames", 1, 1024)
PRESET = choice_rule("preset", ("paper", "tiny"))
#: The demo renders and draws every clip: a figure of more would not be read.
DEMO_CLIPS = int_rule("num_clips", 1, 256)

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


def _check_device(value: Any) -> str | None:
    if not isinstance(value, str) or not _DEVICE.match(value):
        return "must be auto, cpu, cuda, cuda:N or mps"
    if value.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return "asks for CUDA, but torch finds no CUDA device here (use auto or cpu)"
        index = int(value.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return f"names GPU {index}, but torch finds {torch.cuda.device_count()}"
    if value == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return "asks for MPS, but torch finds no MPS device here (use auto or cpu)"
    return None


DEVICE = Rule("device", str, _check_device)


def _check_model(value: Any) -> str | None:
    from hartutor.models import list_models

    if not isinstance(value, str):
        return "must be a model name"
    names = list_models()
    if value in names:
        return None
    import difflib

    close = difflib.get_close_matches(value, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"is not a hartutor model{hint}; known: {', '.join(names)}"


MODEL_NAME = Rule("model", str, _check_model)


def is_fusion(name: str) -> bool:
    """Whether registry model ``name`` is a late fusion (it has named ``streams``)."""
    import torch

    from hartutor.models import build_model

    with torch.device("meta"):
        model = build_model(name, preset="tiny")
    return isinstance(getattr(model, "streams", None), torch.nn.ModuleDict)


def _check_fusion(value: Any) -> str | None:
    problem = _check_model(value)
    if problem is not None:
        return problem
    if not _fusion_name_cached(value):
        from hartutor.models import list_models

        fusions = [n for n in list_models() if _fusion_name_cached(n)]
        return f"is not a late fusion; fusions: {', '.join(fusions)}"
    return None


_FUSIONS: dict[str, bool] = {}


def _fusion_name_cached(name: str) -> bool:
    if name not in _FUSIONS:
        try:
            _FUSIONS[name] = is_fusion(name)
        except Exception:  # a builder that cannot run on the meta device is not a fusion here
            _FUSIONS[name] = False
    return _FUSIONS[name]


FUSION_MODEL = Rule("fusion model", str, _check_fusion)


def figure_suffixes() -> list[str]:
    """File suffixes matplotlib can save a figure as (png, pdf, svg, ...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return sorted(FigureCanvasAgg(Figure()).get_supported_filetypes())


def _check_figure_path(value: Any) -> str | None:
    suffix = Path(value).suffix.lower().lstrip(".")
    known = figure_suffixes()
    if suffix not in known:
        return f"must end in a figure format ({', '.join('.' + s for s in known)})"
    return None


FIGURE_PATH = Rule("figure file", Path, _check_figure_path)


def cli_type(rule: Rule[T]) -> Callable[[str], T]:
    """``rule`` as an argparse ``type``: a bad value is a usage error (exit 2) in its words."""

    def convert(text: str) -> T:
        try:
            return rule(rule.parse(text))
        except ArgumentError as err:
            message = str(err)
            prefix = f"{rule.what} "
            raise argparse.ArgumentTypeError(
                message[len(prefix) :] if message.startswith(prefix) else message
            ) from None

    convert.__name__ = rule.what
    return convert
