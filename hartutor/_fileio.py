"""Atomic file writes (a reader never sees a half-written checkpoint, video or download), and
bounded reads of the small JSON files hartutor writes."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: A temporary file older than this, for the same target, is left from a killed write.
STALE_TMP_SECONDS = 3600.0


def _tmp_prefix(target: Path) -> str:
    return f".{target.stem}.tmp-"


def _writer_alive(path: Path, prefix: str) -> bool:
    """Whether the process whose id the temporary's name carries still runs (same host)."""
    pid_text = path.name[len(prefix) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return True  # written by an older hartutor: only its age tells
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # a write of this process (another thread) may be in progress
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def remove_stale_temporaries(
    target: str | os.PathLike[str], *, older_than: float | None = None, suffix: str | None = None
) -> list[Path]:
    """Delete ``.NAME.tmp-*`` files a killed write to ``target`` left beside it; return them.

    Only files with ``target``'s prefix and suffix, and either written by a process that no
    longer runs (the id is in the name) or older than ``older_than`` seconds (default
    :data:`STALE_TMP_SECONDS`), so a write in progress in another process is never touched.
    """
    target = Path(target)
    age = STALE_TMP_SECONDS if older_than is None else older_than
    now = time.time()
    removed = []
    prefix = _tmp_prefix(target)
    try:
        candidates = list(target.parent.glob(glob.escape(prefix) + "*"))
    except OSError:
        return []
    for path in candidates:
        if not path.name.endswith(target.suffix if suffix is None else suffix):
            continue
        with contextlib.suppress(OSError):
            if not path.is_file() or path.is_symlink():
                continue
            if not _writer_alive(path, prefix) or now - path.stat().st_mtime >= age:
                path.unlink()
                removed.append(path)
    return removed


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's bytes to disk before it is renamed over its target."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    The temporary file lives in the same directory (so ``os.replace`` is atomic on POSIX and
    Windows) and keeps ``target``'s suffix unless ``suffix`` is given (encoders pick the format
    from it). On any exception the temporary file is removed and ``target`` is left untouched.
    The file is fsync'ed before the rename and the folder after it, so a power cut leaves the
    old file or the new one, never an empty one; temporaries left by a killed earlier write to
    the same target (older than :data:`STALE_TMP_SECONDS`) are removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target, suffix=suffix)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{_tmp_prefix(target)}{os.getpid()}-",
        suffix=target.suffix if suffix is None else suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would have
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_directory(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(
    path: str | os.PathLike[str], *, folder: bool = False, what: str = "output"
) -> Path:
    """Refuse, before any work starts, an output path that cannot be written.

    ``path`` is a file to write (``folder=False``) or a folder to fill. Raises
    :class:`~hartutor.errors.OutputError` naming the path when it is a folder where a file is
    wanted (or the reverse), when a parent is a file, or when the nearest existing folder
    cannot be written (permissions, a read-only mount). A full disk shows only when writing.
    """
    from hartutor.errors import OutputError

    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a file, not a folder; choose a folder path")
    if not folder and path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a folder; give a file name inside it")
    parent = path if folder else path.parent
    existing = parent
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"cannot write {what} {str(path)!r}: {str(existing)!r} is a file, not a folder"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".hartutor-write-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(
            f"cannot write {what} {str(path)!r}: {describe_os_error(err)}; choose another path"
        ) from err
    return path


def describe_os_error(err: OSError) -> str:
    """An OSError in a few words a user can act on (full disk, read-only, permissions)."""
    hints = {
        errno.ENOSPC: "the disk is full (free some space or write elsewhere)",
        errno.EDQUOT: "the disk quota is exceeded (free some space or write elsewhere)",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EISDIR: "it is a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "no such file or folder",
        errno.ENAMETOOLONG: "the name is too long",
    }
    text = hints.get(err.errno or -1) or (err.strerror or type(err).__name__)
    name = err.filename
    return f"{text} ({name})" if name else text


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
    if "weights_only" in first:  # torch's advice to load unsafely: never repeated
        return f"{type(err).__name__}: it cannot be loaded as plain tensors (weights_only=True)"
    return f"{type(err).__name__}: {first[:300]}" if first else type(err).__name__


def check_archive_size(path: str | os.PathLike[str], limit: int, *, what: str = "file") -> int:
    """Refuse a ``torch.save`` zip archive whose entries would expand past ``limit`` bytes.

    ``torch.save`` stores its entries uncompressed, so their total is about the file's size; a
    file whose entries claim far more (a deflated run of zeros: a few MB that load as GB) is a
    compression bomb and is refused before ``torch.load`` allocates anything. Files that are not
    zip archives (PyTorch's legacy format) are bounded by their size on disk. Returns the
    total the entries claim (the file size for a non-zip file).
    """
    import zipfile

    from hartutor.errors import WeightsError

    path = Path(path)
    on_disk = path.stat().st_size
    if on_disk > limit:
        raise WeightsError(
            f"{what} {str(path)!r} is {on_disk:,} bytes, more than any hartutor model needs "
            f"({limit:,}); refused"
        )
    if not zipfile.is_zipfile(path):
        return on_disk
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise WeightsError(f"{what} {str(path)!r} is a damaged zip archive ({err})") from err
    total = sum(max(info.file_size, 0) for info in entries)
    plausible = 2 * on_disk + 16 * 1024**2
    if total > limit or total > plausible:
        raise WeightsError(
            f"{what} {str(path)!r} would expand to {total:,} bytes from {on_disk:,} on disk "
            f"(compressed entries; torch.save never writes those) and is refused: it is not a "
            "checkpoint hartutor wrote, or it was tampered with"
        )
    return total


def read_small_json(
    path: str | os.PathLike[str], *, what: str, max_bytes: int = 1_000_000
) -> object:
    """The JSON value in ``path``, a file hartutor writes (a record of a few kB): a file over
    ``max_bytes`` is refused before it is read, and any unreadable file raises
    :class:`~hartutor.errors.DataError` in one line naming it as ``what``."""
    from hartutor.errors import DataError

    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise DataError(
                f"{what} {str(path)!r} is over {max_bytes:,} bytes: not a hartutor record"
            )
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {what} {str(path)!r}: {err}") from None
