"""Where hartutor keeps downloads and data, and how many CPU threads it uses.

Environment variables (all optional):

- ``HARTUTOR_CACHE``: cache for downloaded weights and computed features. Default:
  ``$TORCH_HOME/hartutor`` if ``TORCH_HOME`` is set, else ``~/.cache/hartutor``
  (``$XDG_CACHE_HOME/hartutor`` when that is set).
- ``HARTUTOR_DATA``: where datasets live (UCF101, generated synthetic sets).
  Default: ``<cache>/data``.
- ``HARTUTOR_THREADS``: torch intra-op threads (default: torch's own choice).

:func:`keep_freed_memory` tunes glibc's allocator for large activations (the CLI calls it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
from pathlib import Path

#: How much freed memory :func:`keep_freed_memory` lets a process keep by default (MiB).
KEEP_FREED_MB = 1024

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
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    limit = int(limit_mb * 2**20)
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
