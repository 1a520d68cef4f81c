"""Checkers of notebook 05 (I3D, and its pretraining on the transfer world's video source)."""

from __future__ import annotations

from typing import Any

from hartutor.course import exercise


@exercise(
    "05-within-pair",
    "Of the held-out raise_to_face and lower_from_face clips that the source I3D puts in one "
    "of those two classes, give the fraction it puts in the right one.",
)
def _within_pair(
    answer: Any, *, predicted: Any = None, labels: Any = None, names: Any = None
) -> str | None:
    if predicted is None or labels is None or names is None:
        return "run the cells of section 7 first: the check needs predicted, the labels and names."
    pair = [list(names).index("raise_to_face"), list(names).index("lower_from_face")]
    in_pair = [(int(p), int(y)) for p, y in zip(predicted, labels, strict=True) if int(y) in pair]
    landed = [(p, y) for p, y in in_pair if p in pair]
    if not landed:
        return "no clip of the pair was predicted inside the pair; nothing to measure."
    truth = sum(p == y for p, y in landed) / len(landed)
    value = float(answer)
    if abs(value - truth) < 1e-6:
        return None
    if abs(value - 100 * truth) < 1e-4:
        return "give a fraction between 0 and 1, not a percentage."
    every = sum(p == y for p, y in in_pair) / len(in_pair)
    if abs(value - every) < 1e-6:
        return "keep only the clips predicted as one of the two classes before counting."
    return "keep the pair's clips predicted inside the pair, then the share predicted right."
