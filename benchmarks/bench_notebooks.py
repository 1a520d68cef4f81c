"""Wall time and peak memory of every tutorial notebook, in fast mode, on one CPU core.

The course promises each notebook runs in under 5 minutes and 1 GiB on one core (a Binder
session), and the whole course in under 30 minutes. Each measurement is recorded, with its
date, machine, load and commit, in ``hartutor/assets/benchmarks/notebooks.json``
(:data:`hartutor.course.NOTEBOOK_TIMES`), which the index notebook reads; a run of some
notebooks replaces only their rows. It is not a test.

    python benchmarks/bench_notebooks.py            # all notebooks, pinned to core 0
    python benchmarks/bench_notebooks.py 00 03      # only those whose names start so

``python -m benchmarks`` runs it too (section ``notebooks`` of ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
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

from benchmarks._common import REPO, LoadMonitor, available_cores, cpu_model

TUTORIALS = REPO / "tutorials"
TORCH_THREADS = 1  # OMP_NUM_THREADS=1 in the kernel: one core, as on Binder

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
print(json.dumps({"wall_s": wall, "kernel_peak_mib": kernel_kb / 1024}))
"""


def run(path: Path, core: int | None) -> dict[str, float]:
    """One notebook in a fresh kernel: its wall time (s) and the kernel's peak RSS (MiB)."""
    command = [sys.executable, "-c", _RUNNER, str(path), str(TUTORIALS)]
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    env = {
        **os.environ,
        "HARTUTOR_MODE": "fast",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": str(TORCH_THREADS),
    }
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine_name() -> str:
    """The CPU and how many cores this process may use (what a row was measured on)."""
    return f"{cpu_model()}, {available_cores()} cores"


def commit() -> str:
    """The checkout's short commit, with ``+changes`` when the notebooks or library differ
    from it; ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "hartutor", "tutorials"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if changed else "")


def pretrained_state() -> str:
    """Whether the pretrained weights notebooks 05, 07 and 08 use were in the cache:
    ``real``, ``stand-ins`` (same size, random values) or ``absent``."""
    from hartutor.pretrained_explain import PRETRAINED_STREAMS, missing_weights
    from hartutor.weights import standin_weights

    if missing_weights():
        return "absent"
    return "stand-ins" if any(map(standin_weights, PRETRAINED_STREAMS.values())) else "real"


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def measure(
    notebooks: Sequence[Path], core: int | None, progress: Callable[[str], None] | None = None
) -> list[Any]:
    """One :class:`~hartutor.course.NotebookTime` per notebook, each with its own date and
    the load other processes added while it ran."""
    from hartutor.course import NotebookTime

    shared = {
        "machine": machine_name(),
        "torch_threads": TORCH_THREADS,
        "pretrained": pretrained_state(),
        "commit": commit(),
    }
    rows = []
    for path in notebooks:
        measured = utc_now()
        with LoadMonitor() as load:
            figures = run(path, core)
        rows.append(
            NotebookTime(
                notebook=path.name,
                wall_s=round(figures["wall_s"], 2),
                kernel_peak_mib=round(figures["kernel_peak_mib"], 1),
                measured=measured,
                others_cores=None if load.others_cores is None else round(load.others_cores, 2),
                **shared,
            )
        )
        if progress:
            progress(table(rows[-1:]).splitlines()[-1])
    return rows


def table(rows: Sequence[Any]) -> str:
    """Markdown: each notebook's figures, its verdict, date, load and pretrained weights."""
    from hartutor.course import notebook_times_table

    return notebook_times_table(rows)


def target_texts(rows: Sequence[Any], *, whole: str) -> list[tuple[bool, str]]:
    """The two verdicts (each notebook; the course's total) over ``rows``, as (met, text)."""
    from hartutor.course import COURSE_LIMIT_S, NOTEBOOK_LIMIT_MIB, NOTEBOOK_LIMIT_S, course_total_s

    largest = max(rows, key=lambda row: row.kernel_peak_mib)
    slowest = max(rows, key=lambda row: row.wall_s)
    total = course_total_s(rows)
    each = f"each of {whole}" if whole != "the whole course" else "every notebook"
    return [
        (
            all(row.within_limits for row in rows),
            f"(the course's own) {each} under {NOTEBOOK_LIMIT_S / 60:.0f} minutes and "
            f"{NOTEBOOK_LIMIT_MIB / 1024:.0f} GiB on one core: slowest "
            f"{slowest.notebook} {slowest.wall_s:.0f} s, largest {largest.notebook} "
            f"{largest.kernel_peak_mib:.0f} MiB.",
        ),
        (
            total <= COURSE_LIMIT_S,
            f"(the course's own) {whole} under {COURSE_LIMIT_S / 60:.0f} minutes: {total:.0f} s.",
        ),
    ]


def record_scope(record: Sequence[Any]) -> str:
    """``the whole course`` when the record has a row for every notebook, else which it has."""
    names = {row.notebook for row in record}
    if all(path.name in names for path in select()):
        return "the whole course"
    return f"these {len(record)} notebooks"


def section(
    record: Sequence[Any], measured: Sequence[Any], *, how: str = "", record_path: Path | None
) -> Any:
    """Section ``notebooks`` of ``docs/benchmarks.md``, rendered from the whole ``record``
    (each row with its own date and load); ``measured`` are the rows this run measured,
    ``how`` the option that chose them (empty: every notebook)."""
    from benchmarks import report
    from hartutor.course import notebook_times_summary

    names = {row.notebook for row in measured}
    older = [row.notebook for row in record if row.notebook not in names]
    scope = ""
    if how or older:
        scope = f" The last run measured {', '.join(row.notebook for row in measured)}"
        scope += f" ({how})" if how else ""
        scope += (
            "; the other rows are kept from earlier runs, each with its own date and load."
            if older
            else "."
        )
    where = (
        f"`{record_path.resolve().relative_to(REPO)}`, which the index notebook reads"
        if record_path is not None and record_path.resolve().is_relative_to(REPO)
        else f"`{record_path}`"
        if record_path is not None
        else "of this run only (not recorded)"
    )
    lines = [
        f"_Each row was measured at its own date (column *measured*). "
        f"{notebook_times_summary(record)}_",
        "",
        "`benchmarks/bench_notebooks.py`: each notebook executed in fast mode by `nbclient` in a "
        "fresh kernel, pinned to one core (`taskset -c 0`, `OMP_NUM_THREADS=1`: a Binder "
        "session); *kernel peak* is the kernel process's maximum resident memory, in MiB "
        "(mybinder.org guarantees 1G, which JupyterHub reads as 1 GiB); *others' load* the "
        "cores other processes kept busy while the row ran (or, for rows converted from an "
        "older run's log, that run's average), so a row measured under load is slower than "
        "on a quiet machine; *pretrained weights*: whether notebooks 05, 07 and 08 "
        "found the pretrained I3D and Xception in the cache (Binder downloads the real ones). "
        f"The table is the record {where}." + scope,
        "",
        table(record),
        "",
        *(
            report.target_line(met, text)
            for met, text in target_texts(record, whole=record_scope(record))
        ),
    ]
    return report.Section("notebooks", "Tutorial notebooks", "\n".join(lines))


def select(prefixes: Sequence[str] = ()) -> list[Path]:
    """The tutorial notebooks, or those whose names start with one of ``prefixes``."""
    notebooks = sorted(TUTORIALS.glob("*.ipynb"))
    if prefixes:
        notebooks = [p for p in notebooks if p.name.startswith(tuple(prefixes))]
    return notebooks


def main(argv: Sequence[str] | None = None) -> None:
    from hartutor.course import NOTEBOOK_TIMES, update_notebook_times

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: none)")
    parser.add_argument(
        "--record",
        type=Path,
        default=NOTEBOOK_TIMES,
        help="the record to update (default: the one hartutor ships)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs" / "benchmarks.md",
        help="results file whose notebooks section is rendered from the record",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print only: no record, no results file"
    )
    args = parser.parse_args(argv)
    notebooks = select(args.prefixes)
    if not notebooks:
        raise SystemExit(f"no tutorial notebook starts with {' or '.join(args.prefixes)}")
    core = None if args.core < 0 else args.core
    pinned = f"taskset -c {core}" if core is not None else "unpinned"
    print(f"# Notebooks in fast mode, one core ({pinned})\n", flush=True)
    start = time.perf_counter()
    rows = measure(notebooks, core, progress=print)
    print(f"\nthis run ({time.perf_counter() - start:.0f} s with kernel start-up):\n")
    print(table(rows))
    record = rows
    if not args.no_record:
        from benchmarks import report

        record = update_notebook_times(rows, args.record)
        how = " ".join(args.prefixes)
        rendered = section(record, rows, how=f"`{how}`" if how else "", record_path=args.record)
        report.write(args.out, [rendered])
        print(f"\nrecorded in {args.record}; section notebooks of {args.out}:\n")
        print(rendered.body)
    else:
        print()
        for met, text in target_texts(record, whole=record_scope(record)):
            print(f"{'within' if met else 'OVER'}: {text}")


if __name__ == "__main__":
    main()
