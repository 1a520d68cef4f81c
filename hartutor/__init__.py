"""hartutor: a Jupyter-first teaching toolkit for video Human Activity Recognition.

Importing hartutor first applies the small compatibility shims in :mod:`hartutor._compat`
(inert where torchvision and pytorchvideo work as shipped), so that torchvision, timm and
pytorchvideo can be imported afterwards on a CPU-only torch.
"""

from __future__ import annotations

from hartutor import _compat

_compat.install()

from hartutor._display import register_figure_formatter  # noqa: E402
from hartutor.config import kernel_memory_setup  # noqa: E402
from hartutor.errors import (  # noqa: E402
    DataError,
    HartutorError,
    VideoDecodeError,
    VideoEncodeError,
    WeightsError,
)

__version__ = "0.1.0"

# In a notebook, hartutor's figures display as pictures even without %matplotlib inline,
# and freed tensors go back to the system (a Binder kernel has 1 GiB).
register_figure_formatter()
kernel_memory_setup()

__all__ = [
    "DataError",
    "HartutorError",
    "VideoDecodeError",
    "VideoEncodeError",
    "WeightsError",
    "__version__",
]
