"""Where hartutor keeps downloads and data, and how many CPU threads it uses.

Environment variables (all optional):

- ``HARTUTOR_CACHE``: cache for downloaded weights and computed features. Default:
  ``$TORCH_HOME/hartutor`` if ``TORCH_HOME`` is set, else ``~/.cache/hartutor``
  (``$XDG_CACHE_HOME/hartutor`` when that is set).
- ``HARTUTOR_DATA``: where datasets live (UCF101, generated synthetic sets).
  Default: ``<cache>/data``.
- ``HARTUTOR_THREADS``: torch intra-op threads (default: torch's own choice).

:func:`keep_freed_memory` tunes glibc's allocator for large activations (the CLI calls it);
:func:`return_freed_memory` gives freed memory back, after every cell of a Jupyter kernel
(``import hartutor`` arranges it: Binder gives a kernel 1 GiB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import sys
from pathlib import Path
from typing import Any

#: How much freed memory :func:`keep_freed_memory` lets a process keep by default (MiB).
KEEP_FREED_MB = 1024

#: Set to ``0`` to keep glibc's defaults in a notebook kernel (see :func:`kernel_memory_setup`).
RETURN_FREED_VARIABLE = "HARTUTOR_RETURN_FREED_MEMORY"

# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def cache_dir() -> Path:
    """Root of hartutor's cache (not created here)."""
    if os.environ.get("HARTUTOR_CACHE"):
        return Path(os.environ["HARTUTOR_CACHE"]).expanduser()
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hartutor"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hartutor"


def weights_dir() -> Path:
    """Where downloaded checkpoints are stored."""
    return cache_dir() / "weights"


def data_dir() -> Path:
    """Root of datasets (``HARTUTOR_DATA`` or ``<cache>/data``)."""
    if os.environ.get("HARTUTOR_DATA"):
        return Path(os.environ["HARTUTOR_DATA"]).expanduser()
    return cache_dir() / "data"


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count from the argument or ``HARTUTOR_THREADS``.

    Returns the count in force afterwards.
    """
    import torch

    if num_threads is None and os.environ.get("HARTUTOR_THREADS"):
        try:
            num_threads = int(os.environ["HARTUTOR_THREADS"])
        except ValueError as err:
            raise ValueError(
                f"HARTUTOR_THREADS={os.environ['HARTUTOR_THREADS']!r} is not an integer"
            ) from err
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"thread count must be >= 1, got {num_threads}")
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


@functools.cache
def _libc() -> Any | None:
    """glibc, or None where the C library is not glibc (looked up once: every notebook cell
    asks, through :func:`return_freed_memory`)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def return_freed_memory() -> bool:
    """Give the memory glibc holds freed back to the system now (``malloc_trim``); True if
    some was given back, False if none was or there is no glibc.

    glibc raises its mmap threshold to the size of each mapped block freed (up to 32 MiB),
    so once a large tensor is freed, later ones come from its heap, and what is freed there
    stays in the process (only the heap's top is trimmed). A notebook kernel that trains,
    evaluates and builds models cell after cell then holds hundreds of MiB it no longer uses,
    and its next peak stacks on them (notebooks 01 and 07 came near or over Binder's 1 GiB
    so). Trimming after each cell (:func:`kernel_memory_setup`) costs milliseconds; fixing the
    threshold low instead (``mallopt``) kept peaks lower still but faulted every large block
    in again, for tens of per cent more CPU time. Figures: the hand-written notes of
    ``docs/benchmarks.md``.
    """
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def kernel_memory_setup() -> bool:
    """In a Jupyter kernel, run :func:`return_freed_memory` after every cell (unless
    ``HARTUTOR_RETURN_FREED_MEMORY`` is ``0``); True if registered. Run by ``import hartutor``,
    once per kernel."""
    if "ipykernel" not in sys.modules or os.environ.get(RETURN_FREED_VARIABLE, "1") == "0":
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or _libc() is None:
        return False
    if _trim_after_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", _trim_after_cell)
    return True


def _trim_after_cell(*_: object) -> None:
    return_freed_memory()


def keep_freed_memory(limit_mb: float = KEEP_FREED_MB) -> bool:
    """Let glibc keep up to ``limit_mb`` MiB of freed memory for reuse instead of returning it
    to the kernel; True if glibc took the setting, False where there is no glibc (macOS,
    Windows, musl), which changes nothing.

    By default glibc serves each block above its mmap threshold (at most 32 MiB) with its
    own ``mmap``, unmaps it when it is freed, and trims the top of its heap once more than
    twice that threshold lies free there. A network with large activations then faults
    their pages in again on every forward pass, 4 KiB at a time, each zeroed by the kernel:
    full-size I3D on a 64x224x224 clip faults in hundreds of MB a call, and runs measurably
    faster with this setting, which leaves none (figures: ``docs/benchmarks.md``).
    The price: a process's RSS no longer falls after its peak, so a long-lived process that
    needs memory back (several notebook kernels on a small machine) should not call it.
    It sets glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` for the whole process, as
    the environment variable ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=N:``
    ``glibc.malloc.trim_threshold=N`` (N in bytes) does for a process started with it.
    """
    if not (math.isfinite(limit_mb) and 32 <= limit_mb < 2048):
        # mallopt() takes a C int of bytes; under glibc's own 32 MiB it would change nothing
        raise ValueError(f"limit_mb must be at least 32 and under 2048 MiB, got {limit_mb}")
    libc = _libc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    limit = int(limit_mb * 2**20)
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
