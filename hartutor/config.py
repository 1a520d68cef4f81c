"""Where hartutor keeps downloads and data, and how many CPU threads it uses.

Environment variables (all optional):

- ``HARTUTOR_CACHE``: cache for downloaded weights and computed features. Default:
  ``$TORCH_HOME/hartutor`` if ``TORCH_HOME`` is set, else ``~/.cache/hartutor``
  (``$XDG_CACHE_HOME/hartutor`` when that is set).
- ``HARTUTOR_DATA``: where datasets live (UCF101, generated synthetic sets).
  Default: ``<cache>/data``.
- ``HARTUTOR_THREADS``: torch intra-op threads (default: torch's own choice).
"""

from __future__ import annotations

import os
from pathlib import Path


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
