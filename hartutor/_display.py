"""Show matplotlib figures as pictures in any IPython kernel, whatever the backend.

hartutor builds its figures with matplotlib's object API (:class:`matplotlib.figure.Figure`),
which IPython shows as ``<Figure size ... with N Axes>`` unless an inline backend registered a
PNG formatter (``%matplotlib inline`` does; ``MPLBACKEND=Agg`` or a plain console kernel does
not). :func:`register_figure_formatter` registers one, so a cell that ends with a hartutor
figure shows the picture in Jupyter, VS Code or Binder without any magic.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure_png(fig: Figure) -> bytes | None:
    """The figure as PNG bytes, cropped to its content (what ``%matplotlib inline`` shows)."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, fmt="png", bbox_inches="tight")


def register_figure_formatter() -> bool:
    """Register a PNG display formatter for matplotlib figures in the running IPython shell.

    Registered by class name, so matplotlib is not imported until a figure is shown. Does
    nothing (returns False) outside IPython; a formatter already registered for ``Figure``
    (by ``%matplotlib inline``) is kept, since IPython looks up types registered by class first.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return False
    formatters["image/png"].for_type_by_name("matplotlib.figure", "Figure", figure_png)
    return True
