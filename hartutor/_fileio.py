"""Atomic file writes: a reader never sees a half-written checkpoint, video or download."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    The temporary file lives in the same directory (so ``os.replace`` is atomic on POSIX and
    Windows) and keeps ``target``'s suffix unless ``suffix`` is given (encoders pick the format
    from it). On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.tmp-",
        suffix=target.suffix if suffix is None else suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would have
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (fsync'ed before the rename)."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically."""
    return atomic_write_bytes(target, text.encode(encoding))


def unsafe_load_reason(err: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line.

    PyTorch's own message for a file holding arbitrary Python objects runs to many lines and
    suggests ``weights_only=False``, which would run code from the file: that advice is never
    passed on to users.
    """
    import pickle

    if isinstance(err, pickle.UnpicklingError):
        if "Unsupported global" in str(err):
            return (
                "it holds Python objects other than tensors, which a safe load "
                "(weights_only=True) refuses; load it only if you trust where it came from"
            )
        return "UnpicklingError: its bytes are not a pickle of tensors"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
