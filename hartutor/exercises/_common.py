"""Small helpers the checkers share: reading flags, numbers and mappings out of a student's
answer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def as_number(answer: object, what: str) -> float | str:
    """``answer`` as a finite float, or a sentence saying why it is not one."""
    if isinstance(answer, bool):
        return f"{what} should be a number, not {answer!r}."
    try:
        value = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{what} should be a number, got {type(answer).__name__} {answer!r}."
    if not math.isfinite(value):
        return f"{what} should be a finite number, got {value}."
    return value


def as_flag(answer: object, what: str) -> bool | str:
    """``answer`` as True or False (a Python, NumPy or one-element torch bool), or a sentence
    saying why it is not one."""
    if hasattr(answer, "item"):
        answer = answer.item()  # type: ignore[union-attr]
    if not isinstance(answer, bool):
        return f"{what} should be True or False, got {answer!r}."
    return answer


def as_numbers(answer: object, length: int, what: str) -> list[float] | str:
    """``answer`` as ``length`` finite floats, or a sentence saying why it is not."""
    if hasattr(answer, "tolist"):
        answer = answer.tolist()  # type: ignore[union-attr]
    if not isinstance(answer, Sequence) or isinstance(answer, str):
        return f"{what} should be a list of {length} numbers, got {type(answer).__name__}."
    if len(answer) != length:
        return f"{what} should have {length} values, one per frame; it has {len(answer)}."
    values = [as_number(v, what) for v in answer]
    problems = [v for v in values if isinstance(v, str)]
    return problems[0] if problems else values  # type: ignore[return-value]


def as_pair(answer: object, names: str) -> list[float] | str:
    """``answer`` as a pair of finite floats, or a sentence asking for the pair ``(names)``."""
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        return f"Give a pair ({names})."
    values = [as_number(v, "Each value") for v in answer]
    problems = [v for v in values if isinstance(v, str)]
    return problems[0] if problems else values  # type: ignore[return-value]


def as_mapping(answer: object, keys: Sequence[str], what: str) -> dict[str, float] | str:
    """``answer`` as ``{key: float}`` with exactly ``keys``, or a sentence saying why not."""
    if not isinstance(answer, Mapping):
        return f"{what} should be a dict with the keys {list(keys)}, got {type(answer).__name__}."
    missing = [k for k in keys if k not in answer]
    if missing:
        return f"{what} lacks the key(s) {missing}; expected {list(keys)}."
    values = {k: as_number(answer[k], f"{what}[{k!r}]") for k in keys}
    problems = [v for v in values.values() if isinstance(v, str)]
    return problems[0] if problems else values  # type: ignore[return-value]


def close(value: float, truth: float, *, rel: float = 1e-3, abs_: float = 1e-6) -> bool:
    """Whether ``value`` matches ``truth`` to the relative or absolute tolerance."""
    return math.isclose(value, truth, rel_tol=rel, abs_tol=abs_)
