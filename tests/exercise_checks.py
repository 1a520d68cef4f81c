"""What every exercise-checker test asks of a checker: refuse a wrong answer and say why, or
accept the right one quietly (tests/test_exercises*.py)."""

from __future__ import annotations

import pytest

import hartutor  # noqa: F401  (first: torchvision and timm import cleanly after it)
from hartutor.course import check


def refused(capsys: pytest.CaptureFixture[str], exercise_id: str, answer: object, **context) -> str:
    """Check that ``answer`` is refused; return the explanation printed."""
    assert check(exercise_id, answer, **context) is False
    out = capsys.readouterr().out
    assert f"Exercise {exercise_id}: not yet." in out, out
    return out.split("not yet.", 1)[1].strip()


def accepted(exercise_id: str, answer: object, **context) -> None:
    """Check that ``answer`` passes without a word."""
    assert check(exercise_id, answer, quiet=True, **context) is True
