"""Stand-ins for what cannot be downloaded here: UCF101 and the pretrained weights.

Each stand-in has every property of the real artefact except its size and its values (same
layout, file formats, names and URL paths), so that the real code paths (``hartutor weights
download``, ``hartutor ucf101 prepare``, loading DeepMind's and timm's files, full mode) run on
a machine without the downloads: in the test suite, and for a teacher rehearsing a course.

>>> from hartutor import standins
>>> root = standins.make_ucf101("mini")                     # doctest: +SKIP
>>> archives = standins.pack_ucf101(root, "archives")       # doctest: +SKIP
>>> standins.write_mirror("mirror", weights=["xception_imagenet1k_tf"])  # doctest: +SKIP
>>> with standins.serve("mirror") as server: ...           # doctest: +SKIP
...     # HARTUTOR_MIRROR=server.url hartutor weights download xception_imagenet1k_tf
"""

from __future__ import annotations

from hartutor.standins.hmdb51 import make_hmdb51, pack_hmdb51
from hartutor.standins.server import serve
from hartutor.standins.ucf101 import (
    POSTER_TABLE1_VIDEOS,
    make_ucf101,
    pack_ucf101,
)
from hartutor.standins.weights import randomised, source_model, write_entry, write_mirror

__all__ = [
    "POSTER_TABLE1_VIDEOS",
    "make_hmdb51",
    "make_ucf101",
    "pack_hmdb51",
    "pack_ucf101",
    "randomised",
    "serve",
    "source_model",
    "write_entry",
    "write_mirror",
]
