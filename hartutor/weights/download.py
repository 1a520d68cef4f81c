"""The weights cache and a careful downloader (standard library ``urllib`` only).

Guarantees, because students run this on flaky Wi-Fi and in parallel notebooks:

- A file appears under its final name only complete and verified (size, SHA-256 or a
  torch-hub style hash prefix): bytes go to ``NAME.part`` beside it, then ``os.replace``.
- A broken transfer resumes from the ``.part`` file with an HTTP ``Range`` request; if the
  server ignores ``Range`` (answers 200) the download restarts cleanly from byte 0.
- Two processes fetching the same file do not interleave: the whole fetch happens under
  an OS file lock (``NAME.lock``, released by the OS if a process dies); the second one
  waits and then finds the finished file.
- Offline, or on any failure, :class:`~hartutor.errors.WeightsError` names the file, the
  URL and the exact path where a copy obtained elsewhere can be put; after that, loading
  works with no network at all.
- ``HARTUTOR_MIRROR`` fetches every file from a mirror instead (:mod:`hartutor.weights.mirror`).
  A file from a stand-in mirror gets a ``NAME.standin`` note beside it (its digest and size),
  so that it is verified, and reported as a stand-in, every time it is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hartutor import config
from hartutor.errors import WeightsError

__all__ = [
    "RemoteFile",
    "download_url",
    "fetch",
    "file_lock",
    "hash_prefix_from_filename",
    "is_standin",
    "sha256sum",
    "verify_file",
]

USER_AGENT = "hartutor (+https://github.com/hartutor/hartutor)"
CHUNK_BYTES = 1 << 20
# When the expected size is unknown, refuse to write more than this many bytes.
DEFAULT_MAX_BYTES = 4 * 1024**3
_TORCH_HUB_HASH = re.compile(r"-([a-f0-9]{6,64})\.")
_STANDIN_SUFFIX = ".standin"


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: where it comes from and how to recognise the right bytes.

    ``sha256`` is the full hex digest where it is known; ``hash_prefix`` the leading hex
    digits of it (torch hub puts these in file names, e.g. ``xception-43020ad28.pth``);
    ``size`` in bytes where known. ``subdir`` is the folder under the weights cache.
    """

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    hash_prefix: str | None = None
    subdir: str = ""

    def __post_init__(self) -> None:
        for label, digest in (("sha256", self.sha256), ("hash_prefix", self.hash_prefix)):
            if digest is not None and not re.fullmatch(r"[0-9a-f]{1,64}", digest):
                raise ValueError(f"{label} of {self.filename!r} must be lowercase hex: {digest!r}")
        if self.sha256 is not None and len(self.sha256) != 64:
            raise ValueError(f"sha256 of {self.filename!r} must have 64 hex digits")
        if Path(self.filename).name != self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"filename must be a plain file name, got {self.filename!r}")

    def cache_path(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Where this file lives in the cache (``weights_dir()`` unless ``root`` is given)."""
        base = Path(root) if root is not None else config.weights_dir()
        return base / self.subdir / self.filename if self.subdir else base / self.filename


def hash_prefix_from_filename(filename: str) -> str | None:
    """The torch-hub hash prefix in ``name-<hex>.ext`` file names, if any."""
    match = _TORCH_HUB_HASH.search(filename)
    return match.group(1) if match else None


def sha256sum(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    hash_prefix: str | None = None,
    source: str = "",
) -> None:
    """Raise :class:`WeightsError` unless the file has the expected size and hash."""
    path = Path(path)
    actual_size = path.stat().st_size
    where = f" (from {source})" if source else ""
    if size is not None and actual_size != size:
        raise WeightsError(
            f"{str(path)!r}{where} is {actual_size} bytes, expected {size}: the file is "
            "truncated or a different file; delete it and download it again"
        )
    if sha256 is None and hash_prefix is None:
        return
    digest = sha256sum(path)
    if sha256 is not None and digest != sha256:
        raise WeightsError(
            f"{str(path)!r}{where} has SHA-256 {digest}, expected {sha256}: the file is "
            "corrupt or a different version; delete it and download it again"
        )
    if hash_prefix is not None and not digest.startswith(hash_prefix):
        raise WeightsError(
            f"{str(path)!r}{where} has SHA-256 {digest}, which does not start with "
            f"{hash_prefix}: the file is corrupt or a different version; delete it and "
            "download it again"
        )


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], poll_seconds: float = 0.1) -> Iterator[None]:
    """Hold an exclusive OS lock on ``path`` (created if needed) for the ``with`` block.

    ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows; the OS drops the lock when the
    holder dies, so a crashed download never blocks the next one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
    try:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                    break
                except OSError:
                    time.sleep(poll_seconds)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _manual_hint(filename: str, url: str, dest: Path, sha256: str | None) -> str:
    check = f" (SHA-256 {sha256})" if sha256 else ""
    return (
        f"Without network: download {url} elsewhere and put the file{check} at exactly "
        f"{dest} ; it is then used with no network access."
    )


class _Transient(Exception):
    """A transfer broke off after making progress: worth resuming."""


def _parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None)."""
    if not value:
        return None
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _transfer(
    url: str,
    part: Path,
    *,
    size: int | None,
    timeout: float,
    progress: bool,
    max_bytes: int,
    desc: str,
) -> None:
    """One HTTP request appending to (or restarting) ``part``; raises on failure."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # complete already; verification decides whether it is right
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the part may be complete
            if size is None or have == size:
                return
            part.unlink()
            raise _Transient(f"server refused to resume at byte {have}") from err
        raise
    with response:
        status = response.status
        if status is None and url.startswith("file:"):  # a mirror folder: no HTTP status
            status = 200
        if status == 206:
            content_range = _parse_content_range(response.headers.get("Content-Range"))
            if content_range is None or content_range[0] != have:
                # A range we did not ask for: do not splice it in; start over.
                part.unlink(missing_ok=True)
                raise _Transient(f"server answered with range {content_range}, not {have}-")
            mode = "ab"
        elif status == 200:
            mode, have = "wb", 0  # server ignored Range (or none was sent): from scratch
        else:
            raise urllib.error.HTTPError(url, status, f"unexpected status {status}", {}, None)  # type: ignore[arg-type]
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise WeightsError(
                f"{url} serves {total} bytes but {desc!r} should be {size} bytes; the URL "
                "now points to a different file"
            )
        limit = size if size is not None else max_bytes
        from tqdm.auto import tqdm

        received = have
        with (
            open(part, mode) as out,
            tqdm(
                total=total or size,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise WeightsError(
                            f"{url} sent more than {limit} bytes for {desc!r}; refusing to "
                            "write more (wrong URL?)"
                        )
                    out.write(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as err:
                out.flush()
                raise _Transient(f"connection broke after {received} bytes: {err}") from err
        if total is not None and received < total:
            raise _Transient(f"connection closed after {received} of {total} bytes")


def download_url(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    hash_prefix: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 5,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download ``url`` to ``dest`` atomically, resuming and verifying; return ``dest``.

    A transfer that breaks after receiving bytes is resumed up to ``retries`` times; a
    failure before any byte arrives (offline, refused, 404) raises at once. The final
    file is verified (``size``, ``sha256``, ``hash_prefix``) before it gets its name.
    """
    from hartutor.weights import mirror

    expected = mirror.resolve(url, sha256=sha256, size=size, hash_prefix=hash_prefix)
    url, sha256, size, hash_prefix = (
        expected.url,
        expected.sha256,
        expected.size,
        expected.hash_prefix,
    )
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.exists():  # another process finished it while we waited for the lock
            verify_file(dest, sha256=sha256, size=size, hash_prefix=hash_prefix, source=url)
            return dest
        attempts = 0
        while True:
            before = part.stat().st_size if part.exists() else 0
            try:
                _transfer(
                    url,
                    part,
                    size=size,
                    timeout=timeout,
                    progress=progress,
                    max_bytes=max_bytes,
                    desc=dest.name,
                )
                break
            except _Transient as err:
                attempts += 1
                after = part.stat().st_size if part.exists() else 0
                if attempts > retries or (after <= before and attempts > 1):
                    raise WeightsError(
                        f"downloading {dest.name!r} from {url} failed: {err}. The partial "
                        f"file {part} is kept; run again to resume. "
                        + _manual_hint(dest.name, url, dest, sha256)
                    ) from err
            except urllib.error.HTTPError as err:
                raise WeightsError(
                    f"cannot download {dest.name!r}: {url} answered HTTP {err.code} "
                    f"({err.reason}). " + _manual_hint(dest.name, url, dest, sha256)
                ) from err
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                reason = getattr(err, "reason", err)
                raise WeightsError(
                    f"cannot download {dest.name!r} from {url} (offline? {reason}). "
                    + _manual_hint(dest.name, url, dest, sha256)
                ) from err
        try:
            verify_file(part, sha256=sha256, size=size, hash_prefix=hash_prefix, source=url)
        except WeightsError:
            part.unlink(missing_ok=True)
            raise
        from hartutor._fileio import fsync_directory, fsync_file

        fsync_file(part)  # a power cut must not leave an empty file under the final name
        _write_standin_note(dest, expected.standin, sha256, size, url)
        os.replace(part, dest)
        fsync_directory(dest.parent)
    return dest


def _standin_note_path(path: Path) -> Path:
    return path.with_name(path.name + _STANDIN_SUFFIX)


def _write_standin_note(
    dest: Path, standin: bool, sha256: str | None, size: int | None, url: str
) -> None:
    """Record (or clear) that ``dest`` is a stand-in, before the file gets its final name."""
    from hartutor._fileio import atomic_write_text

    note = _standin_note_path(dest)
    if standin:
        atomic_write_text(note, json.dumps({"sha256": sha256, "size": size, "url": url}))
    else:
        note.unlink(missing_ok=True)


def _standin_note(path: Path) -> dict[str, object] | None:
    note = _standin_note_path(path)
    if not note.is_file() or note.stat().st_size > 4096:
        return None
    try:
        data = json.loads(note.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
    return data if isinstance(data, dict) else None


def is_standin(path: str | os.PathLike[str]) -> bool:
    """Whether a cached file came from a stand-in mirror (real format, random values)."""
    return _standin_note(Path(path)) is not None


def fetch(
    remote: RemoteFile,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    check_hash: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Path of ``remote`` in the cache, downloading it first if needed and allowed.

    A file already in the cache (downloaded before, or put there by hand) is verified
    and used without any network access. ``check_hash=False`` skips the SHA-256 check of
    a cached file (its size is still checked).
    """
    dest = remote.cache_path(root)
    note = _standin_note(dest) if dest.exists() else None
    if note is not None:  # a stand-in: its own digest, recorded when it was downloaded
        digest, length = note.get("sha256"), note.get("size")
        verify_file(
            dest,
            sha256=digest if check_hash and isinstance(digest, str) else None,
            size=length if isinstance(length, int) else None,
            source=str(note.get("url", remote.url)),
        )
        return dest
    if dest.exists():
        verify_file(
            dest,
            sha256=remote.sha256 if check_hash else None,
            size=remote.size,
            hash_prefix=remote.hash_prefix if check_hash else None,
            source=remote.url,
        )
        return dest
    if not download:
        raise WeightsError(
            f"{remote.filename!r} is not in the cache and download=False. "
            + _manual_hint(remote.filename, remote.url, dest, remote.sha256)
        )
    return download_url(
        remote.url,
        dest,
        sha256=remote.sha256,
        size=remote.size,
        hash_prefix=remote.hash_prefix,
        progress=progress,
        timeout=timeout,
    )
