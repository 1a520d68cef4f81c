"""What every benchmark shares: timing, peak memory, child processes, the machine, tables.

Benchmarks that report peak memory run each measurement in a fresh Python process (a *worker*)
so that one model's peak never hides inside another's: the parent calls :func:`run_worker`, the
child does its work and prints one JSON line with :func:`emit`. Peak resident memory is the
child's ``ru_maxrss`` (the kernel's high-water mark of its RSS), which counts everything torch
allocates, unlike ``tracemalloc``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Binder's memory limit; the course's notebooks and the fusion's inference must fit in it.
BINDER_LIMIT_MB = 2048.0


def ensure_repo_on_path() -> None:
    """Let ``python benchmarks/bench_x.py`` import ``benchmarks._common`` like ``-m`` does."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls (warm-up calls excluded)."""

    seconds: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_call(
    fn: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock read, so asynchronous
    GPU work is counted where it happens.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        seconds.append(time.perf_counter() - start)
    return Timing(tuple(seconds))


def gflops_per_second(flops: float, seconds: float) -> float:
    """Achieved GFLOP/s: ``flops`` floating-point operations done in ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    return flops / seconds / 1e9


def matmul_gflops(
    *, size: int = 4096, repeats: int = 5, dtype: Any = None, device: str = "cpu"
) -> float:
    """The machine's dense-arithmetic peak: :func:`hartutor.edge.matmul_gflops` on a large
    (4096) product, so the figure is not held down by the product's own overheads."""
    import torch

    from hartutor.edge import matmul_gflops as measure

    return measure(size=size, repeats=repeats, dtype=dtype or torch.float32, device=device)


# --------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own
    memory. Not ``ru_maxrss``: Linux carries the parent's resident size at ``fork`` over
    ``exec`` into it, so a worker started by a parent holding 500 MiB would report at least
    500 MiB. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, MiB (Linux ``/proc``; else the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- other load


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes (and the hypervisor's steal) have used since boot."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class LoadMonitor:
    """How many cores *other* processes kept busy, on average, while the block ran.

    Busy CPU time of the whole machine (``/proc/stat``, steal included) minus this process's
    own and its children's: on a shared machine, the figure says how far timings were slowed
    by others. ``others_cores`` is None where ``/proc/stat`` is unavailable.
    """

    def __enter__(self) -> LoadMonitor:
        self._start = (time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds())
        self.others_cores: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        wall, busy = time.perf_counter() - wall0, _busy_cpu_seconds()
        if busy is None or busy0 is None or wall <= 0:
            return
        others = (busy - busy0) - (_own_cpu_seconds() - own0)
        self.others_cores = max(0.0, others / wall)


def others_load(seconds: float = 2.0) -> float | None:
    """Cores kept busy by other processes over the next ``seconds`` (this one idles)."""
    with LoadMonitor() as load:
        time.sleep(seconds)
    return load.others_cores


def wait_until_quiet(
    max_wait: float, *, threshold: float = 0.25, window: float = 2.0
) -> float | None:
    """Wait (at most ``max_wait`` s) until others keep under ``threshold`` cores busy.

    Returns the last load seen. Use before timing on a shared machine.
    """
    deadline = time.monotonic() + max_wait
    load = others_load(window)
    while load is not None and load > threshold and time.monotonic() < deadline:
        load = others_load(window)
    return load


# --------------------------------------------------------------------------- workers


def emit(result: Mapping[str, Any]) -> None:
    """Print a worker's result as the last line of its output (read by :func:`run_worker`)."""
    print(json.dumps(result), flush=True)


def run_worker(
    module: str,
    payload: Mapping[str, Any],
    *,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``python -m module --worker JSON`` in a fresh process; its JSON result or an error.

    ``threads`` sets ``OMP_NUM_THREADS`` and friends before the child imports numpy or torch.
    A failure returns ``{"error": ...}`` (:func:`error_line`) instead of raising, so one
    broken row does not lose a whole table.
    """
    child_env = {**os.environ, **(env or {})}
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            child_env[name] = str(threads)
    command = [sys.executable, "-m", module, "--worker", json.dumps(dict(payload))]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=child_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": error_line(done.stderr, done.returncode)[:300]}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"no JSON result: {lines[-1][:200]}"}


def error_line(stderr: str, returncode: int) -> str:
    """The line of a failed worker's ``stderr`` that says what went wrong: the last exception
    line (``package.SomeError: message``), not the hints PyTorch prints after it."""
    lines = stderr.strip().splitlines()
    exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
    if exceptions:
        return exceptions[-1]
    return lines[-1] if lines else f"exit status {returncode}"


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*: \S")

Runner = Callable[..., dict[str, Any]]


def free_cores_threshold(threads: int | None, cores: int | None = None) -> float:
    """How many cores others may keep busy before ``threads`` of ours must share one."""
    cores = cores or available_cores()
    return max(0.25, cores - (threads or cores) + 0.25)


def measure_rows(
    module: str,
    payloads: Iterable[dict[str, Any]],
    *,
    keep: Sequence[str],
    runner: Runner | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One fresh worker process of ``module`` per payload (its ``threads`` threads).

    Each row is the payload's ``keep`` keys followed by the worker's figures (or its
    ``error``); ``on_row`` sees each row as it arrives, to print progress.
    """
    run = runner or run_worker
    rows = []
    for payload in payloads:
        result = run(module, payload, threads=payload["threads"])
        rows.append({**{key: payload[key] for key in keep}, **result})
        if on_row is not None:
            on_row(rows[-1])
    return rows


def quiet_runner(max_wait: float, *, retries: int = 1) -> Runner:
    """A :func:`run_worker` that first waits for a quiet machine and re-runs a noisy result.

    Before each run it waits up to ``max_wait`` s until other processes leave the worker's
    ``threads`` a core each (:func:`free_cores_threshold`); a result whose ``others_cores``
    exceeds that is run again (``retries`` times at most) and the least disturbed run kept.
    """

    def run(module: str, payload: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        threshold = free_cores_threshold(kwargs.get("threads"))
        best: dict[str, Any] | None = None
        for _ in range(retries + 1):
            if max_wait > 0:
                wait_until_quiet(max_wait, threshold=threshold)
            result = run_worker(module, payload, **kwargs)
            if "error" in result:
                return result
            load = result.get("others_cores")
            if best is None or (load or 0.0) < (best.get("others_cores") or 0.0):
                best = result
            if load is None or load <= threshold:
                break
        assert best is not None
        return best

    return run


def worker_payload(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The JSON payload when this process was started by :func:`run_worker`, else None."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--worker":
        return json.loads(args[1])
    return None


def serve_worker(
    argv: Sequence[str] | None, worker: Callable[[dict[str, Any]], Mapping[str, Any]]
) -> bool:
    """If started by :func:`run_worker`: run ``worker`` on the payload, emit its result and
    return True (the caller then exits); otherwise False."""
    payload = worker_payload(argv)
    if payload is None:
        return False
    emit(worker(payload))
    return True


# --------------------------------------------------------------------------- the machine


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15-minute load averages (zeros where the OS has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def memory_total_gb() -> float | None:
    """Physical memory in GiB (``/proc/meminfo``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return None


@dataclass
class Machine:
    """What the figures were measured on."""

    cpu: str
    cores: int
    threads: int
    memory_gb: float | None
    python: str
    torch: str
    gpu: str | None
    date: str
    vector_units: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        memory = f"{self.memory_gb:.0f} GiB RAM" if self.memory_gb else "RAM unknown"
        units = f" ({', '.join(self.vector_units)})" if self.vector_units else ""
        gpu = self.gpu or "none (torch.cuda.is_available() is False)"
        return "\n".join(
            [
                f"- CPU: {self.cpu}{units}, {self.cores} cores available, {memory}",
                f"- torch threads used: {self.threads} (unless a table says otherwise)",
                f"- GPU: {gpu}",
                f"- Python {self.python}, torch {self.torch}",
                f"- date: {self.date}",
            ]
        )


def describe_machine(threads: int) -> Machine:
    """The machine this process runs on, with ``threads`` torch threads."""
    import torch

    flags = cpu_flags()
    units = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Machine(
        cpu=cpu_model(),
        cores=available_cores(),
        threads=threads,
        memory_gb=memory_total_gb(),
        python=platform.python_version(),
        torch=torch.__version__,
        gpu=gpu,
        date=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        vector_units=units,
    )


# --------------------------------------------------------------------------- tables


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (hartutor's one writer)."""
    from hartutor._markdown import markdown_table as _table

    return _table(header, rows)


def fmt(value: float | None, digits: int = 1, *, suffix: str = "") -> str:
    """A number for a table cell; ``None`` (not measured) as an em dash."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{suffix}"
