"""Downloads from a mirror instead of the original hosts (``HARTUTOR_MIRROR``).

A mirror is a folder or web server that holds each file under ``<host>/<path>`` of its
original URL, with a ``SHA256SUMS`` manifest at its root (lines ``DIGEST  SIZE  host/path``)::

    HARTUTOR_MIRROR=http://127.0.0.1:8000      # or file:///srv/hartutor-mirror
    https://github.com/deepmind/kinetics-i3d/raw/master/data/checkpoints/rgb_scratch/...
      -> http://127.0.0.1:8000/github.com/deepmind/kinetics-i3d/raw/master/data/checkpoints/...

Uses: a teaching room's local copy of the weights and UCF101 (one download for a whole class),
and the stand-ins of :mod:`hartutor.standins`, which rehearse every download, unpacking and
loading step with files in the real formats but random values.

The registry's own checksums still protect the real files: a mirror may only give the expected
digest and size of a file whose real digest the registry does not know, unless its manifest's
first line is ``# hartutor stand-ins`` (files that are *meant* to differ from the originals).
Then every file it serves is reported as a stand-in, once per process, on standard error.
"""

from __future__ import annotations

import functools
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from hartutor.errors import WeightsError

#: Environment variable naming the mirror's base URL (``http(s)://`` or ``file://``).
MIRROR_VARIABLE = "HARTUTOR_MIRROR"
#: The manifest at the mirror's root.
MANIFEST_NAME = "SHA256SUMS"
#: First line of a stand-in mirror's manifest.
STANDIN_HEADER = "# hartutor stand-ins"
# A manifest lists a few dozen files; refuse anything much larger than that could be.
_MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class Expected:
    """Where to fetch a file from and what its bytes must be."""

    url: str
    sha256: str | None
    size: int | None
    hash_prefix: str | None
    standin: bool = False


def mirror_base() -> str | None:
    """The mirror's base URL without a trailing slash, or None when no mirror is set."""
    value = os.environ.get(MIRROR_VARIABLE, "").strip()
    if not value:
        return None
    if urllib.parse.urlsplit(value).scheme not in ("http", "https", "file"):
        raise WeightsError(
            f"{MIRROR_VARIABLE}={value!r} is not an http(s):// or file:// URL; "
            f"unset it to download from the original hosts"
        )
    return value.rstrip("/")


def mirror_path(url: str) -> str:
    """``host/path`` of an original URL: where a mirror keeps that file."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def _read_manifest_text(base: str) -> str:
    url = f"{base}/{MANIFEST_NAME}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read(_MAX_MANIFEST_BYTES + 1)
    except (urllib.error.URLError, OSError) as err:
        raise WeightsError(
            f"cannot read the mirror's manifest {url} ({getattr(err, 'reason', err)}); check "
            f"{MIRROR_VARIABLE}, or unset it to download from the original hosts"
        ) from err
    if len(data) > _MAX_MANIFEST_BYTES:
        raise WeightsError(f"{url} is larger than {_MAX_MANIFEST_BYTES} bytes: not a manifest")
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Manifest:
    """A mirror's ``SHA256SUMS``: ``host/path -> (sha256, size)``; whether it holds stand-ins."""

    base: str
    files: dict[str, tuple[str, int]]
    standin: bool


def parse_manifest(text: str, base: str) -> Manifest:
    """Parse a manifest's lines ``DIGEST  SIZE  host/path``; raise naming the bad line."""
    lines = text.splitlines()
    standin = bool(lines) and lines[0].strip() == STANDIN_HEADER
    files: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        ok = (
            len(fields) == 3
            and len(fields[0]) == 64
            and all(c in "0123456789abcdef" for c in fields[0])
            and fields[1].isdigit()
        )
        if not ok:
            raise WeightsError(
                f"{base}/{MANIFEST_NAME}, line {number}: expected 'SHA256  SIZE  host/path', "
                f"got {line[:120]!r}"
            )
        files[fields[2]] = (fields[0], int(fields[1]))
    return Manifest(base, files, standin)


@functools.lru_cache(maxsize=4)
def _manifest(base: str) -> Manifest:
    return parse_manifest(_read_manifest_text(base), base)


_warned: set[str] = set()


def resolve(
    url: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    hash_prefix: str | None = None,
) -> Expected:
    """Where to fetch ``url`` and what its bytes must be, with ``HARTUTOR_MIRROR`` applied.

    Without a mirror this is the original URL and the registry's expectations. With one, the
    file comes from ``<mirror>/<host>/<path>`` and its digest and size from the mirror's
    manifest, which must list it.
    """
    base = mirror_base()
    if base is None:
        return Expected(url, sha256, size, hash_prefix)
    manifest = _manifest(base)
    key = mirror_path(url)
    if key not in manifest.files:
        raise WeightsError(
            f"the mirror {base} does not list {key} in its {MANIFEST_NAME}; add it there, or "
            f"unset {MIRROR_VARIABLE} to download from {url}"
        )
    digest, length = manifest.files[key]
    real_known = sha256 is not None or hash_prefix is not None
    real_differs = (sha256 is not None and sha256 != digest) or (
        hash_prefix is not None and not digest.startswith(hash_prefix)
    )
    if real_known and real_differs and not manifest.standin:
        raise WeightsError(
            f"the mirror {base} lists {key} with SHA-256 {digest}, but the real file's is "
            f"{sha256 or hash_prefix + '...'}: the mirror holds a different file; refusing it"
        )
    if manifest.standin and base not in _warned:
        _warned.add(base)
        print(
            f"hartutor: files from {base} are stand-ins (real formats, random values): "
            "for rehearsing downloads and loading, not for predictions",
            file=sys.stderr,
        )
    return Expected(f"{base}/{key}", digest, length, None, standin=manifest.standin)


def clear_cache() -> None:
    """Forget manifests already read (tests change ``HARTUTOR_MIRROR`` between cases)."""
    _manifest.cache_clear()
    _warned.clear()
