"""Checkers for notebook 00 (the data)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from hartutor.course import exercise
from hartutor.exercises._common import as_number, close


def _is_reversal(forward: str, backward: str, seed: int) -> bool:
    from hartutor.synth import render_clip

    a = render_clip(forward, seed=seed).frames
    b = render_clip(backward, seed=seed).frames
    return bool(np.array_equal(b, a[::-1]))


@exercise(
    "00-reversals",
    "For seed 123, say for each pair of REVERSAL_PAIRS and for ('walk', 'run') whether the "
    "second clip is exactly the first one reversed: a dict {(first, second): True/False}.",
)
def _reversals(answer: object, *, seed: int = 123) -> str | None:
    from hartutor.synth import REVERSAL_PAIRS

    if not isinstance(answer, Mapping):
        return "Give a dict such as {('sit_down', 'stand_up'): True, ...}."
    pairs = [*REVERSAL_PAIRS, ("walk", "run")]
    missing = [pair for pair in pairs if tuple(pair) not in answer]
    if missing:
        return f"The dict lacks the pair(s) {missing}; use (first, second) tuples as keys."
    for pair in pairs:
        truth = _is_reversal(*pair, seed)
        if bool(answer[tuple(pair)]) != truth:
            return (
                f"{pair}: your answer says {bool(answer[tuple(pair)])}. Render both clips with "
                f"seed={seed} and compare the second one's frames with the first one's read "
                "backwards (frames[::-1]) with np.array_equal."
            )
    return None


@exercise(
    "00-clip-seconds",
    "How long, in seconds, is one synthetic clip at the default settings? Compute it from a "
    "rendered clip.",
)
def _clip_seconds(answer: object) -> str | None:
    from hartutor.synth import render_clip

    value = as_number(answer, "The duration")
    if isinstance(value, str):
        return value
    clip = render_clip("clap", seed=0)
    frames, fps = len(clip.frames), float(clip.params.fps)
    if close(value, frames / fps):
        return None
    if close(value, frames * fps):
        return "You multiplied the number of frames by the frame rate; a duration divides them."
    if close(value, frames):
        return "That is the number of frames; divide it by the frames per second (clip.params.fps)."
    return (
        "Not the duration of a rendered clip: count its frames (len(clip.frames)) and divide "
        "by its frame rate (clip.params.fps)."
    )


@exercise(
    "00-confusable",
    "Predict which classes a single-frame model will confuse: a set of class names.",
)
def _confusable(answer: object) -> str | None:
    from hartutor.synth import CLASS_NAMES, REVERSAL_PAIRS, TEMPO_PAIRS

    if isinstance(answer, str) or not isinstance(answer, Iterable):
        return "Give a set of class names, such as {'walk', 'run'}."
    names = {str(name) for name in answer}
    unknown = sorted(names - set(CLASS_NAMES))
    if unknown:
        return f"{unknown} are not classes of the synthetic set: see CLASS_NAMES."
    must = {name for pair in REVERSAL_PAIRS for name in pair}
    missed = sorted(must - names)
    if missed:
        return (
            f"You left out {missed}. Section 3 showed that some classes have exactly the same "
            "set of frames as another: which one can a model that averages frames not separate?"
        )
    allowed = must | {name for pair in TEMPO_PAIRS for name in pair}
    extra = sorted(names - allowed)
    if extra:
        return (
            f"{extra} have poses of their own (look at the one-frame sheet of section 2): "
            "a single frame is enough to name them."
        )
    return None
