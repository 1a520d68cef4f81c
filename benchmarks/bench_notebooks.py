"""Wall time and peak memory of every tutorial notebook, in fast mode, on one CPU core.

The course promises each notebook runs in under 5 minutes and 1 GB on one core (a Binder
session), and the whole course in under 30 minutes. This prints the figures; it is not a test.

    python benchmarks/bench_notebooks.py            # all notebooks, pinned to core 0
    python benchmarks/bench_notebooks.py 00 03      # only those whose names start so

``python -m benchmarks`` runs it too (section ``notebooks`` of ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import markdown_table

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
LIMIT_S, LIMIT_MB, COURSE_LIMIT_S = 300, 1024, 1800  # mybinder.org guarantees 1 GB

_RUNNER = """
import json, resource, sys, time
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=900, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
wall = time.perf_counter() - start
kernel_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": wall, "kernel_peak_mb": kernel_kb / 1024}))
"""


def run(path: Path, core: int | None) -> dict[str, float]:
    command = [sys.executable, "-c", _RUNNER, str(path), str(TUTORIALS)]
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    env = {**os.environ, "HARTUTOR_MODE": "fast", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    notebooks: Sequence[Path], core: int | None, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """One row per notebook: its name, wall time (s) and kernel peak RSS (MB)."""
    rows = []
    for path in notebooks:
        rows.append({"notebook": path.name, **run(path, core)})
        if progress:
            progress(table(rows[-1:]).splitlines()[-1])
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: each notebook's figures and whether it stays within 5 minutes and 1 GB."""
    body = [
        [
            f"`{row['notebook']}`",
            f"{row['wall_s']:.1f}",
            f"{row['kernel_peak_mb']:.0f}",
            "yes" if within_limits(row) else "**NO**",
        ]
        for row in rows
    ]
    header = ("notebook", "wall time (s)", "kernel peak RSS (MB)", "within 5 min and 1 GB")
    return markdown_table(header, body)


def within_limits(row: dict[str, Any]) -> bool:
    """A notebook's own promise: under 5 minutes and 1 GB."""
    return row["wall_s"] <= LIMIT_S and row["kernel_peak_mb"] <= LIMIT_MB


def course_total(rows: Sequence[dict[str, Any]]) -> float:
    """Seconds of notebook execution for the whole course (kernel start-up excluded)."""
    return sum(row["wall_s"] for row in rows)


def select(prefixes: Sequence[str] = ()) -> list[Path]:
    """The tutorial notebooks, or those whose names start with one of ``prefixes``."""
    notebooks = sorted(TUTORIALS.glob("*.ipynb"))
    if prefixes:
        notebooks = [p for p in notebooks if p.name.startswith(tuple(prefixes))]
    return notebooks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: none)")
    args = parser.parse_args()
    core = None if args.core < 0 else args.core
    pinned = f"taskset -c {core}" if core is not None else "unpinned"
    print(f"# Notebooks in fast mode, one core ({pinned})\n", flush=True)
    start = time.perf_counter()
    rows = measure(select(args.prefixes), core, progress=print)
    total = course_total(rows)
    print()
    print(table(rows))
    print()
    print(
        f"whole course: {total:.0f} s of notebook execution "
        f"({time.perf_counter() - start:.0f} s with kernel start-up); "
        f"limit {COURSE_LIMIT_S} s: {'within' if total <= COURSE_LIMIT_S else 'OVER'}"
    )


if __name__ == "__main__":
    main()
