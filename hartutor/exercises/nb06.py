"""Checkers of notebook 06 (Xception, and its pretraining on the transfer world's images)."""

from __future__ import annotations

from typing import Any

from hartutor.course import exercise


@exercise(
    "06-images-named",
    "Count the held-out images whose object the image-pretrained Xception names right "
    "(top-1), out of all of them.",
)
def _images_named(answer: Any, *, logits: Any = None, labels: Any = None) -> str | None:
    if logits is None or labels is None:
        return "run the cells of section 5 first: the check needs image_logits and images.labels."
    truth = int((logits.argmax(1) == labels).sum())
    value = float(answer)
    if value == truth:
        return None
    if abs(value - truth / len(labels)) < 1e-6:
        return "that is the fraction; give the number of images."
    if value == len(labels) - truth:
        return "that counts the images it gets wrong."
    return "compare image_logits.argmax(1) with images.labels and count the matches."
