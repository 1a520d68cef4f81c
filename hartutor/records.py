"""Measured results kept as files: what ``hartutor evaluate --json`` wrote, read back.

A course table that quotes an accuracy (Table 2's "tiny preset on the synthetic set" column,
for instance) reads it from one of these records rather than from a number typed into code.
Each record says what was measured and how: the model and its builder arguments, the
checkpoint's SHA-256, the data, clip count and seed, the command, the date, the machine and
the torch build, so anyone can rerun the command and compare.

The records hartutor ships live in ``hartutor/assets/results/`` (:data:`RESULTS_DIR`), one
file per measured model, named by the caller (``c3d_tiny.json``).
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from hartutor._fileio import atomic_write_text, read_small_json
from hartutor.errors import DataError

__all__ = ["RESULTS_DIR", "EvaluationRecord", "read_record", "read_records", "write_record"]

RESULTS_DIR = Path(__file__).resolve().parent / "assets" / "results"
_MAX_RECORD_BYTES = 1_000_000  # a record is a few kB; anything larger is not one


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation of one checkpoint, with what is needed to repeat it."""

    model: str
    kwargs: dict[str, Any]
    checkpoint: str
    checkpoint_sha256: str
    data: str
    clips: int
    seed: int
    top1: float
    top5: float
    per_class: dict[str, float]
    # Top-1 on time-reversed and frame-shuffled clips, when measured (``--diagnostics``).
    diagnostics: dict[str, float] = field(default_factory=dict)
    command: str = ""
    measured: str = ""
    machine: str = ""
    torch: str = ""

    @property
    def parameters_text(self) -> str:
        """``"tiny"`` or ``"tiny, fusion=slow"``: the preset and any other builder argument."""
        extra = [f"{k}={v}" for k, v in self.kwargs.items() if k not in ("preset", "num_classes")]
        return ", ".join([str(self.kwargs.get("preset", "?")), *extra])


def machine_description() -> str:
    """A short description of this machine: processor and logical cores."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}"


def write_record(path: str | Path, record: EvaluationRecord) -> Path:
    """Write ``record`` as indented JSON, atomically (a reader never sees half a file)."""
    return atomic_write_text(path, json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")


def new_record(**values: Any) -> EvaluationRecord:
    """An :class:`EvaluationRecord` stamped with today's date, this machine and torch build."""
    values.setdefault("measured", datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    values.setdefault("machine", machine_description())
    values.setdefault("torch", torch.__version__)
    return EvaluationRecord(**values)


def read_record(path: str | Path) -> EvaluationRecord:
    """Read one record, checking every field's type; a bad file is named in one line."""
    path = Path(path)
    payload = read_small_json(path, what="result record", max_bytes=_MAX_RECORD_BYTES)
    if not isinstance(payload, Mapping):
        raise DataError(f"result record {str(path)!r} is not a JSON object")
    known = EvaluationRecord.__dataclass_fields__
    unknown = sorted(set(payload) - set(known))
    missing = sorted(k for k, f in known.items() if _required(f) and k not in payload)
    if unknown or missing:
        raise DataError(
            f"result record {str(path)!r}: unknown fields {unknown}, missing fields {missing}; "
            "rewrite it with 'hartutor evaluate CHECKPOINT --json FILE'"
        )
    _check_types(path, payload)
    return EvaluationRecord(**payload)


def read_records(folder: str | Path = RESULTS_DIR) -> dict[str, EvaluationRecord]:
    """Every ``*.json`` record of ``folder``, keyed by file name without ``.json``."""
    folder = Path(folder)
    return {p.stem: read_record(p) for p in sorted(folder.glob("*.json"))}


def _required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


_NUMBER_FIELDS = ("top1", "top5")
_INT_FIELDS = ("clips", "seed")
_TEXT_FIELDS = ("model", "checkpoint", "checkpoint_sha256", "data", "command", "measured")


def _check_types(path: Path, payload: Mapping[str, Any]) -> None:
    def bad(key: str, want: str) -> DataError:
        return DataError(f"result record {str(path)!r}: {key} should be {want}")

    for key in _NUMBER_FIELDS:
        value = payload[key]
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise bad(key, "a fraction between 0 and 1")
    for key in _INT_FIELDS:
        if not isinstance(payload[key], int) or payload[key] < 0:
            raise bad(key, "a non-negative integer")
    for key in _TEXT_FIELDS:
        if not isinstance(payload.get(key, ""), str):
            raise bad(key, "a string")
    for key in ("per_class", "diagnostics"):
        table = payload.get(key, {})
        if not isinstance(table, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and (math.isnan(v) or 0 <= v <= 1)
            for k, v in table.items()
        ):
            raise bad(key, "a mapping of names to fractions")
    if not isinstance(payload["kwargs"], Mapping):
        raise bad("kwargs", "a mapping of builder arguments")
